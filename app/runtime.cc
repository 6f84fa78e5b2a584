#include "runtime.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <thread>
#include <vector>

#include "audit/hmac_key.h"
#include "core/cache_layout.h"
#include "fs/posix.h"
#include "reconcile_pass.h"

namespace ds::app {

void CommonSettings::Register(Settings& s) {
  s.Add("cache", &cache, "cache folder: the copy of the bucket (created if missing)");
  s.Add("state", &state, "state database (SQLite) [default: <cache>/.delete-sync/state.db]");
  s.Add("state-journal", &state_journal,
        "how the state database commits: 'wal' (one host, several processes) or 'rollback' "
        "(a cache shared by several hosts over NFS/EFS) [default: wal; rollback in lambda mode]");
  s.Add("bucket", &bucket, "mirrored bucket; events for other buckets are ignored");
  s.Add("prefix", &prefix, "mirror only keys under this prefix", "");
  s.Add("file-mode", &file_mode, "mode of files in the cache (octal)", "0644");
  s.Add("dir-mode", &dir_mode, "mode of folders in the cache (octal)", "0755");
  s.Add("owner", &owner, "UID[:GID] owning new files and folders (e.g. 1001:1001)", "");
  s.Add("fetch-attempts", &fetch_attempts,
        "attempts per download before it is kept as failed; 'unlimited': only fetch-retry-for "
        "ends the retries",
        "unlimited");
  s.Add("fetch-retry-for", &fetch_retry_for,
        "how long a download that fails with transient errors (the store unreachable, 5xx, "
        "timeouts) is retried before it is kept as failed (e.g. 30m, 1h, 1d)",
        "1h");
  s.Add("claim-lease", &claim_lease,
        "how long a download's claim holds without renewal (renewed every quarter of it while "
        "the data flows): a process or host that dies holding downloads delays them by this "
        "much; a temp file not written to for this long is removed by any process (5s to 1h)",
        "2m");
  s.Add("require-mount", &require_mount,
        "refuse to start unless the cache folder is a mount point (true/false): an EFS/NFS "
        "volume that failed to mount must not turn into a cache on the local disk",
        "false");
  s.Add("resync-after-removal", &resync_after_removal,
        "after an unordered removal, check the store again (true/false)", "true");
  s.Add("audit-log", &audit_log,
        "append-only, hash-chained record of every removal [default: "
        "<cache>/.delete-sync/audit.log; 'off' disables]");
  s.Add("audit-hmac-key", &audit_hmac_key,
        "file holding a secret key: each audit record gets an HMAC-SHA-256");
  s.Add("subject-field", &subject_field,
        "user-metadata field naming a key's data subject (indexed for erase --subject; 'off' "
        "disables)",
        "x-amz-meta-data-subject");
  s.Add("log-level", &log_level, "trace, debug, info, warn, error or off", "info");
  s.Add("s3-connect-timeout", &s3_connect_timeout,
        "longest wait for a connection to the S3 endpoint (e.g. 5s, 500ms)", "5s");
  s.Add("s3-request-timeout", &s3_request_timeout,
        "deadline of one attempt of an S3 request other than a download (listings, HEAD, "
        "deletions); 'off' for none",
        "30s");
  s.Add("state-horizon", &state_horizon,
        "the state of a key without a copy (a tombstone) is kept this long after its last "
        "change, then collected; a download of an event older than this is checked against the "
        "bucket (HEAD) before it is published. At least 1d (SNS retries for 23 days, SQS keeps "
        "messages 14), or off to keep every row for ever",
        "45d");
  s.Add("s3-low-speed-timeout", &s3_low_speed_timeout,
        "abort an S3 transfer (downloads included) that moves less than 1 KiB/s for this long; "
        "'off' for never",
        "30s");
}

namespace {

// Applies the s3-* timeout settings to `c`.
Status ApplyS3Timeouts(const CommonSettings& s, S3Config* c) {
  Result<int64_t> connect = ParseDurationMs("s3-connect-timeout", s.s3_connect_timeout);
  if (!connect.ok()) return connect.status();
  if (*connect <= 0) return Status::Invalid("--s3-connect-timeout must be more than 0");
  Result<int64_t> request = ParseDurationMs("s3-request-timeout", s.s3_request_timeout);
  if (!request.ok()) return request.status();
  Result<int64_t> low_speed = ParseDurationMs("s3-low-speed-timeout", s.s3_low_speed_timeout);
  if (!low_speed.ok()) return low_speed.status();
  c->connect_timeout = std::chrono::milliseconds(*connect);
  c->request_timeout = std::chrono::milliseconds(*request);
  // curl counts the low-speed time in whole seconds: round up.
  c->low_speed_time = std::chrono::seconds((*low_speed + 999) / 1000);
  c->low_speed_limit = 1024;
  return Status::Ok();
}

}  // namespace

Status CheckBucketReachable(const S3Client& s3, const std::string& bucket,
                            const std::string& prefix) {
  if (bucket.empty()) return Status::Invalid("no --bucket to check");
  S3Config c = s3.config();
  c.max_attempts = 1;
  if (c.request_timeout.count() <= 0 || c.request_timeout > kBucketCheckDeadline) {
    c.request_timeout = kBucketCheckDeadline;
  }
  S3Client probe(c);
  return probe.CheckBucket(bucket, prefix);
}

Status LogBucketReachability(const Runtime& rt, const CommonSettings& s) {
  if (rt.s3 == nullptr || s.bucket.empty()) return Status::Ok();
  Status st = CheckBucketReachable(*rt.s3, s.bucket, s.prefix);
  if (st.ok()) {
    spdlog::info("object store: bucket '{}' answers (prefix '{}')", s.bucket, s.prefix);
  } else {
    spdlog::error(
        "object store: {} - removals are still applied; creations stay journaled until the "
        "store answers, and /readyz reports s3 not ready",
        st.message());
  }
  return st;
}

int64_t DrainAllJobs(Runtime& rt, int workers, std::chrono::milliseconds max_wait) {
  const auto start = std::chrono::steady_clock::now();
  auto last_note = start;
  while (true) {
    std::vector<std::thread> threads;
    for (int i = 0; i < workers; ++i) threads.emplace_back([&] { rt.engine->DrainJobs(); });
    for (std::thread& t : threads) t.join();
    Result<std::pair<int64_t, int64_t>> counts = rt.state->JobCounts();
    if (!counts.ok()) {
      spdlog::error("cannot count the downloads waiting: {}", counts.status().ToString());
      return -1;
    }
    if (counts->first == 0) return 0;
    const auto now = std::chrono::steady_clock::now();
    if (now - start >= max_wait) {
      spdlog::warn(
          "{} download(s) still waiting after {} s (retried later, or claimed by another "
          "process): they stay in the journal; a running `delete-sync serve` on this cache, or "
          "the next run, downloads them",
          counts->first, std::chrono::duration_cast<std::chrono::seconds>(now - start).count());
      return counts->first;
    }
    if (now - last_note >= std::chrono::seconds(10)) {
      last_note = now;
      spdlog::info("waiting for {} download(s) (retries are due later)", counts->first);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

Result<int64_t> ParseStateHorizonMs(const std::string& value) {
  Result<int64_t> ms = ParseDurationMs("state-horizon", value);
  if (!ms.ok()) return ms.status();
  if (*ms == 0) return ms;  // off
  const char* test = std::getenv(kShortHorizonTestEnv);
  if (test != nullptr && std::string(test) == "1") {
    spdlog::warn("{}=1: --state-horizon {} is allowed below 1d (for tests only)",
                 kShortHorizonTestEnv, value);
    return ms;
  }
  if (*ms < kMinStateHorizonMs) {
    return Status::Invalid(
        "--state-horizon must be at least 1d (or off), not '" + value +
        "': a tombstone must outlive every late delivery of the events it orders (SNS retries "
        "for up to 23 days, SQS keeps messages up to 14); the default is 45d");
  }
  return ms;
}

void CollectStateOnce(Runtime& rt) {
  // Engine::CollectState logs what it did, and its failure.
  (void)rt.engine->CollectState();
}

Result<std::string> StatePathOf(const std::string& cache, const std::string& state) {
  if (state.empty() && cache.empty()) return Status::Invalid("--cache or --state is required");
  return state.empty() ? CacheLayout(cache).StateDb() : state;
}

Result<std::string> ExistingStatePath(const std::string& cache, const std::string& state) {
  Result<std::string> named = StatePathOf(cache, state);
  if (!named.ok()) return named.status();
  const std::string& path = *named;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return Status::NotFound("no state database at " + path + " (wrong --cache?)");
  }
  return path;
}

Status SetupLogging(const std::string& level) {
  static const std::set<std::string> kLevels = {"trace",   "debug", "info",     "warn",
                                                "warning", "error", "critical", "off"};
  if (!kLevels.count(level)) {
    return Status::Invalid(
        "--log-level must be one of trace, debug, info, warn, error, off; not '" + level + "'");
  }
  auto logger = spdlog::stderr_logger_mt("delete-sync");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ %v", spdlog::pattern_time_type::utc);
  spdlog::set_level(spdlog::level::from_str(level == "warning" ? "warn" : level));
  return Status::Ok();
}

void SweepStaleTemp(Runtime& rt) {
  Result<size_t> cleaned = rt.cache->CleanTemp();
  if (!cleaned.ok()) {
    spdlog::warn("cannot clean the cache's temp files: {}", cleaned.status().message());
  } else if (*cleaned > 0) {
    spdlog::info(
        "removed {} temp file(s) of downloads that died (a process gone, or nothing written for "
        "a claim lease)",
        *cleaned);
  }
}

Result<RuntimeOptions> CheckCommonSettings(const CommonSettings& s, bool require_s3) {
  if (s.cache.empty()) {
    return Status::Invalid(
        "--cache is required (or DELETE_SYNC_CACHE, or cache = \"...\" in --config)");
  }
  RuntimeOptions o;
  o.cache = s.cache;
  PosixCacheOptions& copts = o.cache_options;
  Result<uint32_t> fm = ParseMode("file-mode", s.file_mode);
  if (!fm.ok()) return fm.status();
  Result<uint32_t> dm = ParseMode("dir-mode", s.dir_mode);
  if (!dm.ok()) return dm.status();
  copts.file_mode = static_cast<mode_t>(*fm);
  copts.dir_mode = static_cast<mode_t>(*dm);
  DS_RETURN_IF_ERROR(ParseOwner(s.owner, &copts.uid, &copts.gid));
  Result<int64_t> attempts = s.fetch_attempts == "unlimited"
                                 ? Result<int64_t>(0)
                                 : ParseInt("fetch-attempts", s.fetch_attempts, 1, 1000000);
  if (!attempts.ok()) return attempts.status();
  Result<int64_t> retry_for = ParseDurationMs("fetch-retry-for", s.fetch_retry_for);
  if (!retry_for.ok()) return retry_for.status();
  if (*retry_for <= 0) {
    return Status::Invalid("--fetch-retry-for must be a positive duration (e.g. 1h), not '" +
                           s.fetch_retry_for + "'");
  }
  Result<bool> resync = ParseBool("resync-after-removal", s.resync_after_removal);
  if (!resync.ok()) return resync.status();
  Result<int64_t> lease = ParseDurationMs("claim-lease", s.claim_lease);
  if (!lease.ok()) return lease.status();
  if (*lease < 5000 || *lease > 3600 * 1000) {
    return Status::Invalid("--claim-lease must be from 5s to 1h, not '" + s.claim_lease + "'");
  }
  o.claim_lease_ms = *lease;
  copts.stale_temp_age = std::chrono::seconds((*lease + 999) / 1000);
  Result<int64_t> horizon = ParseStateHorizonMs(s.state_horizon);
  if (!horizon.ok()) return horizon.status();
  S3Config timeouts;  // checked whether or not a store is configured
  DS_RETURN_IF_ERROR(ApplyS3Timeouts(s, &timeouts));
  Result<bool> require_mount = ParseBool("require-mount", s.require_mount);
  if (!require_mount.ok()) return require_mount.status();
  o.require_mount = *require_mount;

  o.state_path = s.state.empty() ? CacheLayout(s.cache).StateDb() : s.state;
  Result<StateJournal> journal =
      ParseStateJournal(s.state_journal.empty() ? "wal" : s.state_journal);
  if (!journal.ok()) return journal.status();
  o.journal = *journal;

  Result<S3Config> s3 = S3Config::FromEnvironment();
  if (s3.ok()) {
    DS_RETURN_IF_ERROR(ApplyS3Timeouts(s, &s3.value()));
    o.s3 = *s3;
  } else if (require_s3) {
    return Status::Invalid("object store not configured: " + s3.status().message());
  } else {
    o.no_s3_because = s3.status().message();
  }

  if (s.audit_log != "off") {
    if (!s.audit_hmac_key.empty()) {
      Result<std::string> key = LoadHmacKey(s.audit_hmac_key);
      if (!key.ok()) return key.status();
      o.audit.hmac_key = *key;
    }
    o.audit_path = s.audit_log.empty() ? CacheLayout(s.cache).AuditLog() : s.audit_log;
  } else if (!s.audit_hmac_key.empty()) {
    return Status::Invalid("--audit-hmac-key needs an audit log (--audit-log is 'off')");
  }

  EngineOptions& eo = o.engine;
  eo.bucket = s.bucket;
  eo.prefix = s.prefix;
  eo.limits.root_length = std::filesystem::absolute(s.cache).lexically_normal().string().size();
  eo.max_fetch_attempts = static_cast<int>(*attempts);
  eo.fetch_retry_for_ms = *retry_for;
  eo.state_horizon_ms = *horizon;
  eo.subject_field = s.subject_field == "off" ? "" : s.subject_field;
  // Without a store there is nothing to check a removal against.
  eo.resync_after_removal = *resync && o.s3.has_value();
  return o;
}

Result<Runtime> OpenRuntime(const RuntimeOptions& o) {
  if (o.require_mount) {
    // A mount point has another device than its parent folder (or is the root).
    struct stat here {
    }, parent{};
    std::string parent_path = o.cache + "/..";
    if (stat(o.cache.c_str(), &here) != 0 || stat(parent_path.c_str(), &parent) != 0) {
      return Status::Unavailable("--require-mount: cannot stat the cache folder " + o.cache + ": " +
                                 posix::ErrnoText(errno));
    }
    bool is_mount = here.st_dev != parent.st_dev || here.st_ino == parent.st_ino;
    if (!is_mount) {
      return Status::Unavailable("--require-mount: the cache folder " + o.cache +
                                 " is not a mount point (is the volume mounted?)");
    }
  }

  Runtime rt;
  Result<std::unique_ptr<PosixCache>> cache = PosixCache::Open(o.cache, o.cache_options);
  if (!cache.ok()) return cache.status();
  rt.cache = std::move(cache).value();
  Result<size_t> cleaned = rt.cache->CleanTemp();
  if (!cleaned.ok()) return cleaned.status();
  if (*cleaned > 0) spdlog::info("removed {} temp file(s) left by an earlier run", *cleaned);

  Result<std::unique_ptr<SqliteState>> state = SqliteState::Open(o.state_path, o.journal);
  if (!state.ok()) return state.status();
  rt.state = std::move(state).value();
  rt.state->set_claim_lease_ms(o.claim_lease_ms);

  if (o.s3.has_value()) {
    spdlog::info("object store: {}", o.s3->Describe());
    rt.s3 = std::make_unique<S3Client>(*o.s3);
    rt.store_watch = std::make_unique<StoreWatch>(SystemClock(), o.s3->endpoint);
    rt.store = std::make_unique<WatchedStore>(*rt.s3, *rt.store_watch);
  } else {
    spdlog::warn("no object store configured ({}): creations cannot be downloaded",
                 o.no_s3_because);
  }

  if (!o.audit_path.empty()) {
    Result<std::unique_ptr<AuditLog>> audit = AuditLog::Open(o.audit_path, o.audit, SystemClock());
    if (!audit.ok()) return audit.status();
    rt.audit = std::move(audit).value();
  }

  rt.engine =
      std::make_unique<Engine>(rt.store.get(), *rt.cache, *rt.state, SystemClock(), o.engine);
  rt.engine->set_audit(rt.audit.get());
  return rt;
}

}  // namespace ds::app
