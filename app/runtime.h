// What serve and apply share: the cache, state, object store and engine, built from settings.
#pragma once

#include <memory>
#include <string>

#include "audit/chain.h"
#include "config.h"
#include "core/engine.h"
#include "fs/posix_cache.h"
#include "s3/client.h"
#include "state/sqlite_state.h"

namespace ds::app {

struct CommonSettings {
  std::string cache, state, bucket, prefix, file_mode, dir_mode, owner, log_level;
  std::string fetch_attempts, resync_after_removal, audit_log, audit_hmac_key, subject_field,
      require_mount;
  // "wal" or "rollback" ("" = wal; the lambda command defaults it to rollback).
  std::string state_journal;
  void Register(Settings& s);
};

struct Runtime {
  std::unique_ptr<PosixCache> cache;
  std::unique_ptr<SqliteState> state;
  std::unique_ptr<S3Client> s3;  // null when no credentials and not required
  std::unique_ptr<AuditLog> audit;
  std::unique_ptr<Engine> engine;
};

// Sets the log level ("trace".."off"); logs go to stderr.
Status SetupLogging(const std::string& level);

// Opens everything; when `require_s3` the AWS variables must be set.
Result<Runtime> OpenRuntime(const CommonSettings& s, bool require_s3);

// Exit codes shared by the subcommands.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;  // some events failed / the run failed
inline constexpr int kExitUsage = 2;   // bad flags or settings

// Runs the journal's downloads with `workers` threads until none is waiting, sleeping
// until retries that are due later (for commands that end when their work is done).
void DrainAllJobs(Runtime& rt, int workers);

// Prints "delete-sync <command>: <message>" to stderr and returns `exit_code`.
int Fail(const char* command, const Status& s, int exit_code);

// A subcommand: registers its flags on `parent`, then runs when chosen.
class Command {
 public:
  virtual ~Command() = default;
  virtual CLI::App* Register(CLI::App& parent) = 0;
  virtual int Run() = 0;
};

std::unique_ptr<Command> MakeServeCommand();
std::unique_ptr<Command> MakeApplyCommand();
std::unique_ptr<Command> MakeStatusCommand();
std::unique_ptr<Command> MakeReconcileCommand();
std::unique_ptr<Command> MakeAuditCommand();
std::unique_ptr<Command> MakeEraseCommand();
std::unique_ptr<Command> MakeRouteCommand();
std::unique_ptr<Command> MakeSetupNotificationsCommand();
std::unique_ptr<Command> MakeLambdaCommand();

}  // namespace ds::app
