// What the commands share: the common settings, and the cache, state, object store and engine
// opened from them (Runtime), in two phases (CheckCommonSettings, then OpenRuntime); the journal
// drain and state collection that commands which end run. The subcommand interface and exit
// codes are in command.h, the store-wait logger in store_wait_logger.h.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "audit/audit_log.h"
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

// The common settings checked and typed (CheckCommonSettings): what OpenRuntime opens.
struct RuntimeOptions {
  std::string cache;       // the cache folder
  std::string state_path;  // its state database
  StateJournal journal = StateJournal::kWal;
  int64_t claim_lease_ms = 0;
  bool require_mount = false;  // the cache folder must be a mount point
  PosixCacheOptions cache_options;
  std::optional<S3Config> s3;  // none: no credentials in the environment (allowed unless required)
  std::string no_s3_because;   // why there is none (logged when opening)
  std::string audit_path;      // "" when the audit log is off
  AuditOptions audit;
  EngineOptions engine;
};

// Phase 1 of a command (see Command): every common setting parsed and checked, the AWS
// variables read and the credential chain resolved (S3Config::FromEnvironment: it may read
// ~/.aws, run credential_process, call STS, the container endpoint or IMDS; required when
// `require_s3`), the audit HMAC key file read. Creates, opens and changes nothing on this host;
// any failure is a usage error.
Result<RuntimeOptions> CheckCommonSettings(const CommonSettings& s, bool require_s3);

// Phase 2: opens (creating what is missing) the cache, its state database and audit log, and
// builds the engine. Checks --require-mount first, so that nothing is created in a folder that
// is not the mount point. Any failure is a failure of the run, not of the settings.
Result<Runtime> OpenRuntime(const RuntimeOptions& o);

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
// <cache>/.delete-sync/state.db): kInvalidArgument when neither is given. Touches nothing.
Result<std::string> StatePathOf(const std::string& cache, const std::string& state);
// The same, which must exist: kNotFound when there is no database there.
Result<std::string> ExistingStatePath(const std::string& cache, const std::string& state);

// Runs the journal's downloads with `workers` threads until none is waiting, sleeping until
// retries that are due later (for commands that end when their work is done), for at most
// `max_wait`: downloads still waiting then (an outage, a job claimed by another process) stay in
// the journal for `serve` or the next run. Returns how many are still waiting (-1: the journal
// could not be read).
int64_t DrainAllJobs(Runtime& rt, int workers,
                     std::chrono::milliseconds max_wait = std::chrono::minutes(2));

}  // namespace ds::app
