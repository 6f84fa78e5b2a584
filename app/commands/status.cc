// delete-sync status: what the state database says (downloads waiting, failed downloads).
#include <iostream>
#include <nlohmann/json.hpp>

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
    return cmd_;
  }

  int Run() override {
    Status s = settings_->Resolve();
    if (!s.ok()) return Fail(s, kExitUsage);
    if (state_.empty()) {
      if (cache_.empty())
        return Fail(Status::Invalid("--cache or --state is required"), kExitUsage);
      state_ = cache_ + "/" + kReservedDir + "/state.db";
    }
    Result<std::unique_ptr<SqliteState>> db = SqliteState::Open(state_);
    if (!db.ok()) return Fail(db.status(), kExitFailed);
    auto counts = (*db)->JobCounts();
    auto failed = (*db)->FailedJobs(20);
    if (!counts.ok()) return Fail(counts.status(), kExitFailed);
    if (!failed.ok()) return Fail(failed.status(), kExitFailed);
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
                            {"failed", f}};
      std::cout << out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    } else {
      std::cout << "state: " << state_ << "\n"
                << "downloads waiting: " << counts->first << "\n"
                << "downloads failed: " << counts->second << "\n";
      for (const FetchJob& j : *failed) {
        std::cout << "  s3://" << j.bucket << "/" << PrintableKey(j.key) << " (" << j.attempts
                  << " attempt(s)): " << j.last_error << "\n";
      }
    }
    return kExitOk;
  }

 private:
  static int Fail(const Status& s, int code) { return app::Fail("status", s, code); }

  CLI::App* cmd_ = nullptr;
  std::unique_ptr<Settings> settings_;
  std::string cache_, state_;
  bool json_ = false;
};

}  // namespace

std::unique_ptr<Command> MakeStatusCommand() { return std::make_unique<StatusCommand>(); }

}  // namespace ds::app
