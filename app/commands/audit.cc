// delete-sync audit verify: checks the audit log's hash chain (and HMACs when a key is given).
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>

#include "audit/audit_log.h"
#include "audit/hmac_key.h"
#include "command.h"
#include "core/cache_layout.h"
#include "runtime.h"

namespace ds::app {
namespace {

class AuditCommand : public Command {
 public:
  CLI::App* Register(CLI::App& parent) override {
    cmd_ = parent.add_subcommand("audit",
                                 "Work with the audit log of removals (see "
                                 "docs/AUDIT_FORMAT.md)");
    cmd_->require_subcommand(1);
    verify_ = cmd_->add_subcommand(
        "verify",
        "Check the whole audit log: the hash chain across rotated files, and every HMAC when a "
        "key is given. Exit 0 when intact, 1 naming the first bad record");
    settings_ = std::make_unique<Settings>(verify_);
    settings_->Add("audit-log", &log_, "the audit log file");
    settings_->Add("cache", &cache_,
                   "the cache whose default audit log (<cache>/.delete-sync/audit.log) to check");
    settings_->Add("audit-hmac-key", &key_file_,
                   "file holding the HMAC-SHA-256 key the log was written with");
    settings_->AddFlag("json", &json_, "print the result as JSON");
    CLI::Option* log =
        verify_->add_option("--log", log_flag_, "the audit log file (as --audit-log)");
    log->excludes(verify_->get_option("--audit-log"));
    return cmd_;
  }

  Status Check() override {
    if (!verify_->parsed()) {
      std::cerr << cmd_->help();
      return Status::Invalid("choose what to do: verify");
    }
    DS_RETURN_IF_ERROR(settings_->Resolve());
    // Warnings (e.g. about the key file) go to stderr.
    DS_RETURN_IF_ERROR(SetupLogging("warn"));
    log_ = log_flag_.empty() ? log_ : log_flag_;
    if (log_.empty() && !cache_.empty()) log_ = CacheLayout(cache_).AuditLog();
    if (log_.empty()) {
      return Status::Invalid(
          "--log FILE is required (or --audit-log, DELETE_SYNC_AUDIT_LOG, audit-log = \"...\" in "
          "--config, or --cache for its default log)");
    }
    if (!key_file_.empty()) {
      Result<std::string> k = LoadHmacKey(key_file_);
      if (!k.ok()) return k.status();
      key_ = std::move(*k);
    }
    return Status::Ok();
  }

  Result<RunEnd> Run() override {
    const std::string& log = log_;
    Result<VerifyReport> r = AuditLog::Inspect(log, key_);
    if (!r.ok()) return r.status();
    const VerifyReport& rep = *r;
    if (json_) {
      nlohmann::json out = {{"log", log},
                            {"intact", !rep.failure.has_value()},
                            {"records", rep.records},
                            {"head_seq", rep.head_seq},
                            {"head_hash", rep.head_hash},
                            {"files", rep.files},
                            {"hmac_checked", rep.hmac_checked},
                            {"records_with_hmac", rep.records_with_hmac}};
      if (rep.failure) {
        out["failure"] = {{"file", rep.failure->file},
                          {"line", rep.failure->line},
                          {"seq", rep.failure->seq},
                          {"reason", rep.failure->reason}};
      }
      std::cout << out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    }
    if (rep.failure) {
      std::cerr << "audit log BROKEN at " << rep.failure->ToString() << "\n";
      return RunEnd::kFailed;
    }
    if (!json_) {
      std::cout << "audit log intact: " << rep.records << " records, head seq " << rep.head_seq
                << ", head hash " << rep.head_hash << "\n";
      std::cout << "files: " << rep.files.size() << " (";
      for (size_t i = 0; i < rep.files.size(); ++i) std::cout << (i ? ", " : "") << rep.files[i];
      std::cout << ")\n";
      if (rep.hmac_checked) {
        std::cout << "hmac: every record's HMAC matches the key\n";
      } else if (rep.records_with_hmac > 0) {
        std::cout << "hmac: not checked (" << rep.records_with_hmac
                  << " records carry one; give --audit-hmac-key to check them)\n";
      } else {
        std::cout << "hmac: none (the log was written without a key)\n";
      }
    }
    return RunEnd::kOk;
  }

 private:
  CLI::App* cmd_ = nullptr;
  CLI::App* verify_ = nullptr;
  std::unique_ptr<Settings> settings_;
  std::string cache_;
  std::string log_, log_flag_, key_file_;
  bool json_ = false;
  std::optional<std::string> key_;  // the HMAC key read by Check()
};

}  // namespace

std::unique_ptr<Command> MakeAuditCommand() { return std::make_unique<AuditCommand>(); }

}  // namespace ds::app
