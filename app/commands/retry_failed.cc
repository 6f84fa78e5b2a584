// delete-sync retry-failed: makes the downloads kept as failed (retries exhausted, a conflict,
// access denied) due again, for a running `serve` (or the next one) to download.
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "command.h"
#include "runtime.h"

namespace ds::app {
namespace {

class RetryFailedCommand : public Command {
 public:
  CLI::App* Register(CLI::App& parent) override {
    cmd_ = parent.add_subcommand(
        "retry-failed",
        "Queue the failed downloads of a cache again (a running serve downloads them at once)");
    settings_ = std::make_unique<Settings>(cmd_);
    settings_->Add("cache", &cache_, "cache folder");
    settings_->Add("state", &state_, "state database [default: <cache>/.delete-sync/state.db]");
    settings_->AddFlag("json", &json_, "print the result as JSON");
    return cmd_;
  }

  Status Check() override {
    DS_RETURN_IF_ERROR(settings_->Resolve());
    if (Result<std::string> p = StatePathOf(cache_, state_); !p.ok()) return p.status();
    return Status::Ok();
  }

  Result<RunEnd> Run() override {
    Result<std::string> path = ExistingStatePath(cache_, state_);
    if (!path.ok()) return path.status();
    state_ = *path;
    Result<std::unique_ptr<SqliteState>> db = SqliteState::Open(state_);
    if (!db.ok()) return db.status();
    Result<int64_t> n = (*db)->RetryFailed(SystemClock().NowMillis());
    if (!n.ok()) return n.status();
    if (json_) {
      std::cout << nlohmann::json{{"state", state_}, {"requeued", *n}}.dump() << "\n";
    } else {
      std::cout << "re-queued " << *n
                << " failed download(s); a running `delete-sync serve` on this cache downloads "
                   "them now, otherwise its next start does\n";
    }
    return RunEnd::kOk;
  }

 private:
  CLI::App* cmd_ = nullptr;
  std::unique_ptr<Settings> settings_;
  std::string cache_, state_;
  bool json_ = false;
};

}  // namespace

std::unique_ptr<Command> MakeRetryFailedCommand() { return std::make_unique<RetryFailedCommand>(); }

}  // namespace ds::app
