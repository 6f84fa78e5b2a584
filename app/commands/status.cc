// delete-sync status: what the state database and the audit log say (downloads waiting and
// failed, recent removals and erasures): the summary of the service's status page.
#include <iostream>
#include <nlohmann/json.hpp>

#include "command.h"
#include "core/cache_layout.h"
#include "ops_status.h"
#include "runtime.h"

namespace ds::app {
namespace {

class StatusCommand : public Command {
 public:
  CLI::App* Register(CLI::App& parent) override {
    cmd_ = parent.add_subcommand("status", "Show downloads waiting and failed for a cache");
    settings_ = std::make_unique<Settings>(cmd_);
    settings_->Add("cache", &cache_, "cache folder");
    settings_->Add("state", &state_, "state database [default: <cache>/.delete-sync/state.db]");
    settings_->AddFlag("json", &json_, "print as JSON");
    settings_->Add("audit-log", &audit_log_,
                   "audit log to summarise [default: <cache>/.delete-sync/audit.log; 'off' skips]");
    settings_->Add("recent", &recent_, "how many recent removals and erasures to show", "10");
    return cmd_;
  }

  Status Check() override {
    DS_RETURN_IF_ERROR(settings_->Resolve());
    if (Result<std::string> p = StatePathOf(cache_, state_); !p.ok()) return p.status();
    Result<int64_t> recent = ParseInt("recent", recent_, 0, 1000);
    if (!recent.ok()) return recent.status();
    recent_count_ = static_cast<size_t>(*recent);
    return Status::Ok();
  }

  Result<RunEnd> Run() override {
    // Only an existing database is read: a mistyped --cache creates nothing.
    Result<std::string> path = ExistingStatePath(cache_, state_);
    if (!path.ok()) return path.status();
    state_ = *path;
    Result<std::unique_ptr<SqliteState>> db = SqliteState::Open(state_);
    if (!db.ok()) return db.status();
    auto counts = (*db)->JobCounts();
    auto failed = (*db)->FailedJobs(20);
    if (!counts.ok()) return counts.status();
    if (!failed.ok()) return failed.status();
    StatusSummary summary;
    if (audit_log_.empty() && !cache_.empty()) {
      audit_log_ = CacheLayout(cache_).AuditLog();
    }
    if (!audit_log_.empty() && audit_log_ != "off") {
      FillFromAuditLog(audit_log_, recent_count_, &summary);
    }
    if (json_) {
      nlohmann::json f = nlohmann::json::array();
      for (const FetchJob& j : *failed) {
        f.push_back({{"bucket", j.bucket},
                     {"key", PrintableKey(j.key)},
                     {"attempts", j.attempts},
                     {"error", j.last_error}});
      }
      nlohmann::json out = {{"state", state_},
                            {"downloads_waiting", counts->first},
                            {"downloads_failed", counts->second},
                            {"failed", f},
                            {"audit_records", summary.audit_records}};
      nlohmann::json removals = nlohmann::json::array();
      for (const auto& r : summary.removals) {
        removals.push_back({{"time", r.time},
                            {"bucket", r.bucket},
                            {"key", r.key},
                            {"cause", r.cause},
                            {"outcome", r.outcome},
                            {"event_id", r.event_id}});
      }
      out["recent_removals"] = removals;
      nlohmann::json erasures = nlohmann::json::array();
      for (const auto& e : summary.erasures) {
        erasures.push_back({{"time", e.time},
                            {"type", e.type},
                            {"request_id", e.request_id},
                            {"detail", e.detail}});
      }
      out["recent_erasures"] = erasures;
      if (!summary.audit_error.empty()) out["audit_error"] = summary.audit_error;
      std::cout << out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    } else {
      std::cout << "state: " << state_ << "\n"
                << "downloads waiting: " << counts->first << "\n"
                << "downloads failed: " << counts->second << "\n";
      for (const FetchJob& j : *failed) {
        std::cout << "  s3://" << j.bucket << "/" << PrintableKey(j.key) << " (" << j.attempts
                  << " attempt(s)): " << j.last_error << "\n";
      }
      if (audit_log_ != "off") {
        std::cout << "audit records: " << summary.audit_records << "\n";
        if (!summary.audit_error.empty()) std::cout << "audit log: " << summary.audit_error << "\n";
        std::cout << "recent removals:" << (summary.removals.empty() ? " none" : "") << "\n";
        for (const auto& r : summary.removals) {
          std::cout << "  " << r.time << " " << r.outcome << " s3://" << r.bucket << "/" << r.key
                    << " (" << r.cause << ") [" << r.event_id << "]\n";
        }
        std::cout << "erasures:" << (summary.erasures.empty() ? " none" : "") << "\n";
        for (const auto& e : summary.erasures) {
          std::cout << "  " << e.time << " " << e.type << " " << e.request_id << " " << e.detail
                    << "\n";
        }
      }
    }
    return RunEnd::kOk;
  }

 private:
  CLI::App* cmd_ = nullptr;
  std::unique_ptr<Settings> settings_;
  std::string cache_, state_, audit_log_, recent_;
  bool json_ = false;
  size_t recent_count_ = 10;
};

}  // namespace

std::unique_ptr<Command> MakeStatusCommand() { return std::make_unique<StatusCommand>(); }

}  // namespace ds::app
