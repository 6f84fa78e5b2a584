// delete-sync state check | rebuild: the state database's integrity, and the way out when it is
// damaged. `rebuild` keeps the damaged file (and its journal files) as evidence beside it,
// starts an empty database, and marks it so that the next `serve` start verifies the whole
// cache against the bucket (docs/OPERATIONS.md, "A damaged or lost state database").
#include <sqlite3.h>

#include <filesystem>
#include <iostream>
#include <optional>

#include "command.h"
#include "core/cache_layout.h"
#include "fs/run_marker.h"
#include "runtime.h"

namespace ds::app {
namespace {

class StateCommand : public Command {
 public:
  CLI::App* Register(CLI::App& parent) override {
    cmd_ = parent.add_subcommand("state", "Check the state database, or rebuild a damaged one");
    cmd_->require_subcommand(1);
    check_ = cmd_->add_subcommand("check", "Run SQLite's integrity check (exit 0 when sound)");
    rebuild_ = cmd_->add_subcommand(
        "rebuild",
        "Keep a damaged state database as evidence, start an empty one, and make the next "
        "serve start verify the whole cache against the bucket");
    for (CLI::App* sub : {check_, rebuild_}) {
      auto settings = std::make_unique<Settings>(sub);
      settings->Add("cache", &cache_, "cache folder");
      settings->Add("state", &state_, "state database [default: <cache>/.delete-sync/state.db]");
      settings->Add("state-journal", &journal_,
                    "journal mode of the new database: wal or rollback [default: that of the "
                    "damaged one when it can be read, else wal]");
      settings_.push_back(std::move(settings));
    }
    rebuild_->add_flag("--force", force_,
                       "rebuild even when run markers say a serve may still use the database");
    return cmd_;
  }

  Status Check() override {
    rebuild_chosen_ = rebuild_->parsed();
    DS_RETURN_IF_ERROR(settings_[rebuild_chosen_ ? 1 : 0]->Resolve());
    if (Result<std::string> p = StatePathOf(cache_, state_); !p.ok()) return p.status();
    if (!journal_.empty()) {
      Result<StateJournal> j = ParseStateJournal(journal_);
      if (!j.ok()) return j.status();
      journal_mode_ = *j;
    }
    return Status::Ok();
  }

  Result<RunEnd> Run() override {
    Result<std::string> path = ExistingStatePath(cache_, state_);
    if (!path.ok()) return path.status();
    state_ = *path;
    DS_RETURN_IF_ERROR(rebuild_chosen_ ? Rebuild() : CheckDatabase());
    return RunEnd::kOk;
  }

 private:
  Status CheckDatabase() {
    Result<std::unique_ptr<SqliteState>> db = SqliteState::Open(state_);
    DS_RETURN_IF_ERROR(db.ok() ? (*db)->CheckIntegrity() : db.status());
    std::cout << "state database " << state_ << ": ok\n";
    return Status::Ok();
  }

  Status Rebuild() {
    const std::string folder = std::filesystem::path(state_).parent_path().string();
    // A serve still running would keep writing to the damaged file. Its run marker says so:
    // markers of dead processes of this host are dropped by RunMarker::Create; those left are
    // of live processes here, or of other hosts (which cannot be judged from here: --force).
    std::error_code ec;
    const std::string marker_dir = CacheLayout::RunningDir(folder);
    if (!force_ && std::filesystem::exists(marker_dir)) {
      std::vector<UncleanRun> unclean;
      Result<std::unique_ptr<RunMarker>> probe = RunMarker::Create(marker_dir, "state", &unclean);
      if (!probe.ok()) return probe.status();
      if (Status rs = (*probe)->Release(); !rs.ok()) return rs;
      std::string live;
      for (const auto& e : std::filesystem::directory_iterator(marker_dir, ec)) {
        live += (live.empty() ? "" : ", ") + e.path().filename().string();
      }
      if (!live.empty()) {
        return Status::Conflict(
            "delete-sync serve is running on this state database (run "
            "markers in " +
            marker_dir + ": " + live +
            "): stop it first, or pass --force for a marker of "
            "another host that is down");
      }
    }
    StateJournal journal = StateJournal::kWal;
    if (journal_mode_.has_value()) {
      journal = *journal_mode_;
    } else if (ReadJournalMeta() == "rollback") {
      journal = StateJournal::kRollback;
    }
    const std::string stamp = FormatUtcMillis(SystemClock().NowMillis());
    std::string kept;
    for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
      const std::string from = state_ + suffix;
      if (!std::filesystem::exists(from)) continue;
      const std::string to = state_ + ".damaged-" + stamp + suffix;
      std::filesystem::rename(from, to, ec);
      if (ec) {
        return Status::Io("cannot move " + from + " to " + to + ": " + ec.message());
      }
      if (kept.empty()) kept = to;
    }
    Result<std::unique_ptr<SqliteState>> db = SqliteState::Open(state_, journal);
    if (!db.ok()) return db.status();
    Status s = (*db)->SetMeta(SqliteState::kVerifyCacheMeta, "state rebuilt at " + stamp);
    if (!s.ok()) return s;
    std::cout << "kept the damaged state database as " << kept << "\n"
              << "started an empty one at " << state_ << "\n"
              << "the next `delete-sync serve` start verifies the whole cache against the bucket "
                 "(files it cannot verify are downloaded again; pending and failed downloads "
                 "are found again by that pass)\n";
    return Status::Ok();
  }

  // The damaged database's journal mode, if its meta table can still be read.
  std::string ReadJournalMeta() {
    sqlite3* db = nullptr;
    std::string out;
    if (sqlite3_open_v2(state_.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
      sqlite3_stmt* q = nullptr;
      if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE name = 'state_journal'", -1, &q,
                             nullptr) == SQLITE_OK &&
          sqlite3_step(q) == SQLITE_ROW) {
        const unsigned char* v = sqlite3_column_text(q, 0);
        if (v != nullptr) out = reinterpret_cast<const char*>(v);
      }
      sqlite3_finalize(q);
    }
    sqlite3_close(db);
    return out;
  }

  CLI::App* cmd_ = nullptr;
  CLI::App* check_ = nullptr;
  CLI::App* rebuild_ = nullptr;
  std::vector<std::unique_ptr<Settings>> settings_;
  std::string cache_, state_, journal_;
  bool force_ = false;
  // Checked by Check().
  bool rebuild_chosen_ = false;
  std::optional<StateJournal> journal_mode_;
};

}  // namespace

std::unique_ptr<Command> MakeStateCommand() { return std::make_unique<StateCommand>(); }

}  // namespace ds::app
