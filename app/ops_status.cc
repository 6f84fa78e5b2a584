#include "ops_status.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <nlohmann/json.hpp>

#include "core/key_path.h"
#include "fs/posix.h"

namespace ds::app {

Status FillFromState(SqliteState& state, StatusSummary* out) {
  Result<std::pair<int64_t, int64_t>> counts = state.JobCounts();
  if (!counts.ok()) return counts.status();
  out->downloads_waiting = counts->first;
  out->downloads_failed = counts->second;
  Result<std::vector<FetchJob>> failed = state.FailedJobs(20);
  if (!failed.ok()) return failed.status();
  for (const FetchJob& j : *failed) {
    out->failed.push_back(
        {"s3://" + j.bucket + "/" + PrintableKey(j.key), j.last_error, j.attempts});
  }
  return Status::Ok();
}

void FillFromAuditLog(const std::string& path, size_t max_records, StatusSummary* out) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno != ENOENT) out->audit_error = "cannot open " + path + ": " + posix::ErrnoText(errno);
    return;
  }
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) {
    out->audit_error = "cannot stat " + path + ": " + posix::ErrnoText(errno);
    return;
  }
  const off_t kTail = 1 << 20;
  off_t start = st.st_size > kTail ? st.st_size - kTail : 0;
  std::string buf(static_cast<size_t>(st.st_size - start), '\0');
  ssize_t n = pread(fd.get(), buf.data(), buf.size(), start);
  if (n < 0) {
    out->audit_error = "cannot read " + path + ": " + posix::ErrnoText(errno);
    return;
  }
  fd.reset();
  buf.resize(static_cast<size_t>(n));
  // Complete lines only; when the read started mid-file, drop the first partial line.
  std::vector<std::string> lines;
  size_t pos = 0;
  if (start > 0) {
    pos = buf.find('\n');
    pos = pos == std::string::npos ? buf.size() : pos + 1;
  }
  while (pos < buf.size()) {
    size_t nl = buf.find('\n', pos);
    if (nl == std::string::npos) break;
    lines.push_back(buf.substr(pos, nl - pos));
    pos = nl + 1;
  }
  for (auto it = lines.rbegin(); it != lines.rend(); ++it) {
    nlohmann::json j = nlohmann::json::parse(*it, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) continue;
    if (out->audit_records == 0 && j.contains("seq") && j["seq"].is_number_integer()) {
      out->audit_records = j["seq"].get<int64_t>();
    }
    std::string type = j.value("type", "");
    std::string time = j.value("time", "");
    if (type == "removal" && out->removals.size() < max_records) {
      std::string key = j.value("key", "");
      if (!j.contains("key") && j.contains("key_b64")) {
        key = "(not UTF-8, base64 " + j.value("key_b64", "") + ")";
      }
      out->removals.push_back({time, j.value("bucket", ""), key, j.value("cause", ""),
                               j.value("outcome", ""), j.value("event_id", "")});
    } else if ((type == "erasure-request" || type == "verification") &&
               out->erasures.size() < max_records) {
      // erasure-request: {"request":{request_id, subject, keys, prefixes, ...}};
      // verification: {request_id, verified, summary, ...}.
      const nlohmann::json& body =
          type == "erasure-request" && j.contains("request") && j["request"].is_object()
              ? j["request"]
              : j;
      std::string detail;
      for (const char* field : {"subject", "keys", "prefixes", "verified", "summary"}) {
        if (!body.contains(field)) continue;
        std::string v =
            body[field].is_string()
                ? body[field].get<std::string>()
                : body[field].dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        if (v.size() > 200) v = v.substr(0, 200) + "...";
        detail += std::string(detail.empty() ? "" : "; ") + field + " " + v;
      }
      std::string request_id = body.contains("request_id") && body["request_id"].is_string()
                                   ? body["request_id"].get<std::string>()
                                   : "";
      out->erasures.push_back({time, type, request_id, detail});
    }
  }
}

}  // namespace ds::app
