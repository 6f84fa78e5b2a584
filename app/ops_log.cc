#include "ops_log.h"

#include <spdlog/details/log_msg.h>
#include <spdlog/formatter.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "fs/posix.h"

namespace ds::app {
namespace {

// Fields of the line being logged by this thread (LogWithFields), read by the JSON formatter.
thread_local const LogFields* tls_fields = nullptr;

std::string IsoTime(std::chrono::system_clock::time_point t) {
  int64_t ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  return FormatUtcMillis(ms);
}

class JsonFormatter : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    nlohmann::ordered_json j;
    j["time"] = IsoTime(msg.time);
    auto level = spdlog::level::to_string_view(msg.level);
    j["level"] = std::string(level.data(), level.size());
    j["msg"] = std::string(msg.payload.data(), msg.payload.size());
    if (tls_fields != nullptr) {
      for (const auto& [k, v] : *tls_fields) j[k] = v;
    }
    std::string line =
        j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
    dest.append(line.data(), line.data() + line.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

// A file appended to, flushed per line, reopened by ReopenLogFile.
class ReopenableFileSink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  static Result<std::shared_ptr<ReopenableFileSink>> Open(const std::string& path) {
    auto sink = std::shared_ptr<ReopenableFileSink>(new ReopenableFileSink(path));
    Status s = sink->Reopen();
    if (!s.ok()) return s;
    return sink;
  }
  ~ReopenableFileSink() override {
    if (file_ != nullptr) std::fclose(file_);
  }
  Status Reopen() {
    std::lock_guard<std::mutex> l(mutex_);
    std::FILE* f = std::fopen(path_.c_str(), "ae");
    if (f == nullptr) {
      return posix::IoError("cannot open the log file " + path_, errno);
    }
    if (file_ != nullptr) std::fclose(file_);
    file_ = f;
    return Status::Ok();
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t buf;
    formatter_->format(msg, buf);
    if (file_ != nullptr) {
      std::fwrite(buf.data(), 1, buf.size(), file_);
      std::fflush(file_);
    }
  }
  void flush_() override {
    if (file_ != nullptr) std::fflush(file_);
  }

 private:
  explicit ReopenableFileSink(std::string path) : path_(std::move(path)) {}
  std::string path_;
  std::FILE* file_ = nullptr;
};

std::shared_ptr<ReopenableFileSink>& FileSink() {
  static std::shared_ptr<ReopenableFileSink> sink;
  return sink;
}

bool json_format = false;

std::string TextValue(const std::string& v) {
  bool plain = !v.empty() && v.find_first_of(" \"=\\\t\n") == std::string::npos;
  if (plain) return v;
  return nlohmann::json(v).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

void LogSettings::Register(Settings& s) {
  s.Add("log-format", &format, "text or json (one JSON object per line)", "text");
  s.Add("log-file", &file,
        "write the log to this file instead of stderr; SIGHUP reopens it (logrotate)");
}

Status ApplyLogSettings(const LogSettings& s) {
  if (s.format != "text" && s.format != "json") {
    return Status::Invalid("--log-format must be text or json, not '" + s.format + "'");
  }
  std::shared_ptr<spdlog::logger> logger = spdlog::default_logger();
  if (!s.file.empty()) {
    Result<std::shared_ptr<ReopenableFileSink>> sink = ReopenableFileSink::Open(s.file);
    if (!sink.ok()) return sink.status();
    FileSink() = *sink;
    auto file_logger = std::make_shared<spdlog::logger>("delete-sync", *sink);
    file_logger->set_level(logger->level());
    spdlog::set_default_logger(file_logger);
    logger = file_logger;
  }
  json_format = s.format == "json";
  if (json_format) {
    logger->set_formatter(std::make_unique<JsonFormatter>());
  } else {
    logger->set_formatter(std::make_unique<spdlog::pattern_formatter>(
        "%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ %v", spdlog::pattern_time_type::utc));
  }
  return Status::Ok();
}

Status ReopenLogFile() {
  if (!FileSink()) return Status::Ok();
  return FileSink()->Reopen();
}

void LogWithFields(int spdlog_level, const std::string& msg, const LogFields& fields) {
  auto level = static_cast<spdlog::level::level_enum>(spdlog_level);
  if (!spdlog::should_log(level)) return;
  if (json_format) {
    tls_fields = &fields;
    spdlog::log(level, "{}", msg);
    tls_fields = nullptr;
    return;
  }
  std::string line = msg;
  for (const auto& [k, v] : fields) line += " " + k + "=" + TextValue(v);
  spdlog::log(level, "{}", line);
}

}  // namespace ds::app
