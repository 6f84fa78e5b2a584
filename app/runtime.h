// What serve and apply share: the cache, state, object store and engine, built from settings.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "audit/chain.h"
#include "config.h"
#include "core/engine.h"
#include "core/store_watch.h"
#include "fs/posix_cache.h"
#include "s3/client.h"
#include "state/sqlite_state.h"

namespace ds::app {

struct CommonSettings {
  std::string cache, state, bucket, prefix, file_mode, dir_mode, owner, log_level;
  std::string fetch_attempts, fetch_retry_for, resync_after_removal, audit_log, audit_hmac_key,
      subject_field, require_mount;
  // "wal" or "rollback" ("" = wal; the lambda command defaults it to rollback).
  std::string state_journal;
  // Timeouts of S3 requests (durations: "5s", "500ms"; S3Config's connect_timeout,
  // request_timeout, low_speed_time).
  std::string s3_connect_timeout, s3_request_timeout, s3_low_speed_timeout;
  // How long a download job's claim holds without renewal (a duration): a process or host that
  // dies holding claims delays those downloads by this much; temp files not written to for
  // this long are removed by any process.
  std::string claim_lease;
  // The state horizon (EngineOptions::state_horizon_ms): a duration of at least 1 day, or off.
  std::string state_horizon;
  void Register(Settings& s);
};

// The state-horizon setting in milliseconds (0: off). A usage error (kInvalidArgument) below
// kMinStateHorizonMs, unless the environment variable kShortHorizonTestEnv is "1": for tests
// and benchmarks only, it allows any positive duration (e.g. 2s).
inline constexpr int64_t kMinStateHorizonMs = int64_t{24} * 3600 * 1000;
inline constexpr const char* kShortHorizonTestEnv = "DS_TEST_ALLOW_SHORT_STATE_HORIZON";
Result<int64_t> ParseStateHorizonMs(const std::string& value);

struct Runtime {
  std::unique_ptr<PosixCache> cache;
  std::unique_ptr<SqliteState> state;
  std::unique_ptr<S3Client> s3;  // null when no credentials and not required
  // `s3` as the engine and reconcile passes use it: every request recorded in `store_watch`,
  // so that a wait on the store can be reported (StoreWaitLogger). Null without `s3`.
  std::unique_ptr<StoreWatch> store_watch;
  std::unique_ptr<WatchedStore> store;
  std::unique_ptr<AuditLog> audit;
  std::unique_ptr<Engine> engine;
};

// Removes temp files of downloads that are dead: of a process of this host that is gone, or not
// written to for a claim lease (their claim has expired, whichever host made them). Logs what
// it removed or why it could not. Run at start and every half lease by serve and Lambda mode.
void SweepStaleTemp(Runtime& rt);

// Sets the log level ("trace".."off"); logs go to stderr.
Status SetupLogging(const std::string& level);

// Opens everything; when `require_s3` the AWS variables must be set.
Result<Runtime> OpenRuntime(const CommonSettings& s, bool require_s3);

// Runs Engine::CollectState once; it logs what it did and a failure (commands that end: apply,
// reconcile).
void CollectStateOnce(Runtime& rt);

// Whether `bucket` can be listed under `prefix` with the store's credentials: one
// ListObjectsV2 with max-keys=1, one attempt, the store's connect timeout, at most
// kBucketCheckDeadline for the answer. OK when it answered 200; otherwise the Status of
// S3Client::CheckBucket: kNotFound (no such bucket), kPermissionDenied (credentials, naming
// the variable to check), kUnavailable (network, timeout, 5xx), kInvalidArgument (region,
// configuration, no bucket given). The message never holds a secret.
inline constexpr std::chrono::milliseconds kBucketCheckDeadline{10000};
Status CheckBucketReachable(const S3Client& s3, const std::string& bucket,
                            const std::string& prefix);

// At start: runs CheckBucketReachable for the runtime's store and settings and logs the
// outcome, an ERROR naming the cause when the bucket cannot be reached. Never fails: the
// service keeps running (removals need no store; creations stay journaled and are retried).
// Does nothing without a store or a bucket. Returns the check's Status.
Status LogBucketReachability(const Runtime& rt, const CommonSettings& s);

// The state database of a command given --cache and/or --state (the default is
// <cache>/.delete-sync/state.db), which must exist: kInvalidArgument when neither is given,
// kNotFound when there is no database there.
Result<std::string> ExistingStatePath(const std::string& cache, const std::string& state);

// While alive, logs a warning for each request to the store that has had no answer for
// kStoreWaitNoticeAfterMs, and again every kStoreWaitNoticeEveryMs while it still waits:
// "<context>: waiting on the store: ListObjectsV2 s3://b/ (...): no answer from <endpoint> for
// 15 s". Looks once a second. Does nothing for a null watch.
class StoreWaitLogger {
 public:
  StoreWaitLogger(StoreWatch* watch, std::string context);
  ~StoreWaitLogger();
  StoreWaitLogger(const StoreWaitLogger&) = delete;
  StoreWaitLogger& operator=(const StoreWaitLogger&) = delete;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

// Exit codes shared by the subcommands.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;  // some events failed / the run failed
inline constexpr int kExitUsage = 2;   // bad flags or settings

// Runs the journal's downloads with `workers` threads until none is waiting, sleeping until
// retries that are due later (for commands that end when their work is done), for at most
// `max_wait`: downloads still waiting then (an outage, a job claimed by another process) stay in
// the journal for `serve` or the next run. Returns how many are still waiting (-1: the journal
// could not be read).
int64_t DrainAllJobs(Runtime& rt, int workers,
                     std::chrono::milliseconds max_wait = std::chrono::minutes(2));

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
std::unique_ptr<Command> MakeRetryFailedCommand();
std::unique_ptr<Command> MakeStateCommand();
std::unique_ptr<Command> MakeStatusCommand();
std::unique_ptr<Command> MakeReconcileCommand();
std::unique_ptr<Command> MakeAuditCommand();
std::unique_ptr<Command> MakeEraseCommand();
std::unique_ptr<Command> MakeRouteCommand();
std::unique_ptr<Command> MakeSetupNotificationsCommand();
std::unique_ptr<Command> MakeLambdaCommand();

}  // namespace ds::app
