// The engine: applies normalised events to one cache, keeping the no-resurrection guarantee
// (docs/SEMANTICS.md). Removals are applied synchronously; creations are journaled as fetch
// jobs and downloaded by RunJob, whose publication is checked against removals that happened
// meanwhile.
//
// Thread safety: Apply and RunJob may be called concurrently from several threads; all
// decisions are taken inside StateStore transactions.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "core/audit_sink.h"
#include "core/cache_fs.h"
#include "core/event.h"
#include "core/key_path.h"
#include "core/object_store.h"
#include "core/state_store.h"

namespace ds {

struct EngineOptions {
  std::string bucket;  // only events of this bucket are applied; "" accepts any bucket
  std::string prefix;  // only keys under this prefix are mirrored
  KeyPathLimits limits;
  // After a removal whose order is unknown (Ceph RGW, MinIO) or of a specific version, check
  // the store again: if the key exists (re-created meanwhile, or an older version became
  // current) it is downloaded again. Costs one GET per such removal.
  bool resync_after_removal = true;
  // The user-metadata field naming a key's data subject (delete-sync erase --subject). Events
  // carrying it (metadata or tags, with or without the "x-amz-meta-" prefix, any case) and
  // downloads whose GET answer has it fill the state store's subject index. "" disables.
  std::string subject_field = "x-amz-meta-data-subject";
  // A download that fails with a transient error (the store unreachable, 5xx, a timeout) is
  // retried with jittered exponential backoff until its first failure is this long ago, then
  // kept as failed (status, metrics, `delete-sync retry-failed`). An outage shorter than this
  // loses no download.
  int64_t fetch_retry_for_ms = 60 * 60 * 1000;
  // Also ends the retries after this many attempts; 0: no limit (the default).
  int max_fetch_attempts = 0;
  int64_t retry_base_ms = 500;
  int64_t retry_max_ms = 5 * 60 * 1000;
  // The state horizon (docs/SEMANTICS.md 3.6): the rows of keys without a copy (tombstones and
  // absent keys) whose state last changed longer ago than this are collected (CollectState),
  // and a download whose event (FetchJob::event_ms) is older than this, less
  // kHorizonClockSkewMs, is checked against the bucket's current object (HEAD) before it is
  // published. 0: off (nothing is collected, nothing is checked).
  int64_t state_horizon_ms = kDefaultStateHorizonMs;
  static constexpr int64_t kDefaultStateHorizonMs = int64_t{45} * 24 * 3600 * 1000;
  // Rows deleted per state transaction by a collection.
  size_t collect_batch = 1000;
};

// How much the store's clock (eventTime) and this host's clock (the state's updated_ms) may
// disagree: downloads of events older than the horizon less this are checked against the bucket.
inline constexpr int64_t kHorizonClockSkewMs = 60 * 60 * 1000;

// What the check against the bucket of a download older than the state horizon found.
enum class HorizonCheck {
  kCurrent,  // the bucket's current object is the downloaded one: published
  kGone,     // the bucket has no such object any more: not published (a copy is removed)
  kChanged,  // the bucket's current object is another one: not published; downloaded again
  kFailed,   // the HEAD failed: not published; retried
};
const char* HorizonCheckName(HorizonCheck c);

enum class Outcome {
  kRemoved,       // a cached copy was unlinked
  kAbsent,        // removal of a key with no copy: nothing to do (recorded as tombstone)
  kQueued,        // creation journaled; the download follows
  kPublished,     // creation downloaded and published (RunJob)
  kIgnored,       // an event type that changes nothing (restore, replication, test, ...)
  kOutOfScope,    // another bucket, or a key outside --prefix
  kStale,         // older than what the service already applied (ordered sources)
  kOtherVersion,  // removal of a version that is not the cached one
  kRefused,       // the key cannot be a path (see key_path.h)
  kFailed,        // an error: the event was not applied (the sender should retry)
};
const char* OutcomeName(Outcome o);

struct ApplyResult {
  ApplyResult() = default;
  ApplyResult(Outcome o, std::string m, Status s,  // NOLINT: {outcome, message, status}
              std::optional<KeyRefusal> r = std::nullopt)
      : outcome(o), message(std::move(m)), status(std::move(s)), refusal(r) {}

  Outcome outcome = Outcome::kFailed;
  std::string message;                // detail for logs/errors; for kFailed the error
  Status status;                      // non-OK only for kFailed
  std::optional<KeyRefusal> refusal;  // set only for kRefused: why
};

enum class JobOutcome {
  kPublished,  // downloaded and renamed into place
  kDiscarded,  // a removal or a newer download came first; nothing published
  kGone,       // the object no longer exists in the store (copy removed if present)
  kRetry,      // transient failure; rescheduled
  kFailed,     // permanent failure or attempts exhausted; kept as failed job
};
const char* JobOutcomeName(JobOutcome o);

enum class OrphanOutcome {
  kRemoved,  // the file was unlinked
  kAbsent,   // nothing to remove any more
  kChanged,  // an event changed the key after the pass started: left alone
};

struct EngineCounters {
  std::atomic<int64_t> removed{0}, absent{0}, queued{0}, ignored{0}, out_of_scope{0}, stale{0},
      other_version{0}, refused{0}, failed{0};
  std::atomic<int64_t> published{0}, discarded{0}, gone{0}, retried{0}, fetch_failed{0},
      bytes_fetched{0};
  // Downloads older than the state horizon checked against the bucket, and those of them that
  // were not published because the bucket's current object was gone or another one.
  std::atomic<int64_t> horizon_checked{0}, horizon_refused{0};
  std::atomic<int64_t> state_rows_collected{0};
};

// Told about every event outcome, download outcome and removal, for metrics and logs
// (app/ops_metrics.h). Called after the effect is durable (or failed), outside transactions,
// from any thread: implementations must be thread-safe and cheap.
class EngineObserver {
 public:
  virtual ~EngineObserver() = default;
  virtual void OnEvent(const Event& ev, const ApplyResult& r) = 0;
  virtual void OnJob(const FetchJob& job, JobOutcome o) = 0;
  // A cached copy was unlinked, for `cause`.
  virtual void OnRemoved(const std::string& bucket, const std::string& key, RemovalCause cause) = 0;
  // A download older than the state horizon was checked against the bucket.
  virtual void OnHorizonCheck(const FetchJob& /*job*/, HorizonCheck /*result*/) {}
  // A state collection ended (Engine::CollectState).
  virtual void OnStateCollected(const CollectStats& /*stats*/) {}
};

class Engine {
 public:
  // `store` may be null: creations are then journaled but RunJob fails them as unavailable.
  Engine(ObjectStore* store, CacheFs& cache, StateStore& state, Clock& clock, EngineOptions opts);

  // Applies one event. Removals are durable (unlinked, folder fsynced, state committed) when
  // this returns kRemoved/kAbsent; creations are durable in the journal when it returns kQueued.
  ApplyResult Apply(const Event& ev);

  // Applies a group of events in order, as Apply would one by one, but with one state
  // transaction, one fsync per cache folder and one audit append for all of them (a group
  // commit): every result is durable when this returns. An event whose own removal fails is
  // kFailed while the others apply; an error of the transaction, the folder syncs or the audit
  // log fails every event of the group that changes state. Results in the order of `evs`.
  std::vector<ApplyResult> ApplyAll(std::span<const Event> evs);

  // Downloads one claimed job and publishes it if no removal or newer download intervened,
  // then finishes, retries or fails the job in the state store.
  JobOutcome RunJob(const FetchJob& job);

  // Removes the copy of a key that reconcile found missing from the bucket listing taken
  // after `pass_started_ms`, unless an event changed the key since then. Same state rules as
  // an event removal (tombstone, removal generation), so a download in flight is discarded.
  Result<OrphanOutcome> RemoveOrphan(const std::string& bucket, const std::string& key,
                                     int64_t pass_started_ms, const std::string& request_id);

  // Removes the copy of a key being erased (delete-sync erase), whatever happened to the key
  // before: same transaction, state rules (tombstone, removal generation: a download in flight
  // is discarded) and audit path as an event removal, with cause "erase" and `request_id` as
  // the record's event id. No resync is queued. Returns whether a file was unlinked. The key
  // must have passed CheckKey.
  Result<bool> RemoveForErasure(const std::string& bucket, const std::string& key,
                                const std::string& request_id);

  // Journals downloads of the keys' current objects (reconcile: missing or stale copies), in
  // one state transaction.
  struct FetchRequest {
    std::string key;
    JobReason reason = JobReason::kReconcileMissing;  // or kReconcileStale, kReconcileUnverified
  };
  Status QueueFetches(const std::string& bucket, std::span<const FetchRequest> requests,
                      const std::string& request_id);

  // Claims and runs jobs until none is due or `max_jobs` ran; returns how many ran. Each claim
  // takes the download's ticket and finishes the previous job in the same transaction.
  // `stop`, when given, is asked before each claim: true ends the drain (the job that is done
  // is still finished).
  size_t DrainJobs(size_t max_jobs = SIZE_MAX, const std::function<bool()>& stop = {});

  // Collects the state rows of keys without a copy whose state last changed longer ago than
  // the state horizon (StateStore::CollectExpired, in batches of collect_batch rows per
  // transaction); nothing when the horizon is off. `serve` runs it hourly, `apply` and
  // `reconcile` at their end.
  Result<CollectStats> CollectState();

  // Every removal from the cache is recorded here (durably) before it is acknowledged. Null:
  // no audit log. Set before the engine is used.
  void set_audit(AuditSink* audit) { audit_ = audit; }
  // Null: none. Set before the engine is used.
  void set_observer(EngineObserver* observer) { observer_ = observer; }

  const EngineCounters& counters() const { return counters_; }
  std::map<std::string, int64_t> RefusalCounts() const;
  const EngineOptions& options() const { return opts_; }

 private:
  // The result of an event that changes nothing (ignored, out of scope, refused), else none.
  std::optional<ApplyResult> Screen(const Event& ev);
  void ApplyStaged(std::span<const Event> evs, const std::vector<size_t>& staged,
                   std::vector<ApplyResult>& results);
  // The removals of one group, decided before any copy is unlinked (ApplyStaged).
  struct PlannedUnlink {
    std::string bucket, key;
    size_t record = 0;  // index of its audit record in GroupRemovals::records
  };
  struct GroupRemovals {
    std::vector<RemovalRecord> records;  // one per applied removal, in order
    std::vector<PlannedUnlink> unlinks;  // the copies to unlink once the records are durable
    std::set<std::string> unlinking;     // bucket + '\0' + key of those copies
    // The state of each key before the group's first event of it, and the group's events of
    // each key (indexes into the events): a key whose unlink fails goes back to the former,
    // and all the latter fail.
    std::map<std::string, KeyState> before;
    std::map<std::string, std::vector<size_t>> events_of;
    // What the cache held at each key a removal of the group may unlink, looked at before the
    // group is staged (RemovalBatch::StatMany).
    std::map<std::string, Result<CacheEntryInfo>> looked;
  };
  // Whether the cache holds a copy of the key to unlink, given what is at its path (`info`): a
  // folder or a path crossing a symbolic link holds none, and is logged.
  Result<bool> CopyPresent(const std::string& bucket, const std::string& key,
                           const Result<CacheEntryInfo>& info);
  Status StageRemove(StateTxn& txn, const Event& ev, ApplyResult& result, GroupRemovals& group);
  // Appends the audit record of the removal of `key`'s copy (outcome kRemoved when the cache
  // holds one, else kAbsent, written only when `record_absent`), and only once it is durable
  // unlinks the copy (CacheFs::Remove: durable, empty folders pruned). When the unlink fails a
  // record with outcome kFailed voids the first. Returns whether a copy was unlinked.
  Result<bool> RecordThenRemove(const std::string& bucket, const std::string& key,
                                const KeyState& before, RemovalCause cause,
                                const std::string& event_id, const std::string& event_name,
                                bool record_absent);
  Status StageCreate(StateTxn& txn, const Event& ev, ApplyResult& result);
  static RemovalRecord MakeRecord(const std::string& bucket, const std::string& key,
                                  const KeyState& before, bool removed, RemovalCause cause,
                                  const std::string& event_id, const std::string& event_name);
  JobOutcome RunJobUnobserved(const FetchJob& job);
  // What a download starts under: the key's removal generation and the download's ticket
  // (step 1 of RunJob), or stale when a newer event was applied already.
  struct JobStart {
    bool stale = false;
    int64_t ticket = 0;
    int64_t removal_gen = 0;
    int64_t unordered_removal_gen = 0;
  };
  // Runs a transaction that removes copies; when it fails with an I/O error while the cache's
  // disk-space reserve exists, the reserve is released (the disk is presumably full: the audit
  // append or the state commit found no space) and the transaction runs once more, so that
  // removals still complete on a full disk (CacheFs::EnsureReserve).
  Status TransactRemoval(const std::function<Status(StateTxn&)>& fn);
  // Step 3's check: whether the download that started as `start` may be published over the
  // key's current state `st` (no removal or later download came first, see MayPublish).
  static bool MayPublish(const FetchJob& job, const JobStart& start, const KeyState& st);
  // Whether the job's event is older than the state horizon (less kHorizonClockSkewMs): its
  // download is then checked against the bucket before it is published.
  bool OlderThanHorizon(const FetchJob& job);
  // That check: HEAD of the key's current object, compared with what the GET returned.
  HorizonCheck CheckAgainstBucket(const FetchJob& job, const ObjectInfo& got, Status* error);
  Status StartJob(StateTxn& txn, const FetchJob& job, JobStart& start);
  // Steps 2 and 3 of RunJob. With `finish_later`, a finished job is left in the journal and
  // its id stored there, for the caller to finish (with its next claim).
  JobOutcome RunStarted(const FetchJob& job, const JobStart& start, int64_t* finish_later);
  // Reschedules the job after a transient error (with backoff), or fails it.
  JobOutcome RetryOrFail(const FetchJob& job, const Status& err);
  void Removed(const std::string& bucket, const std::string& key, RemovalCause cause) {
    if (observer_ != nullptr) observer_->OnRemoved(bucket, key, cause);
  }
  ApplyResult Refuse(const Event& ev, KeyRefusal r);
  // Records a removal in the audit log when there is one.
  Status Audit(const std::string& bucket, const std::string& key, const KeyState& before,
               bool removed, RemovalCause cause, const std::string& event_id,
               const std::string& event_name);
  int64_t Backoff(int attempts);
  // Adds index rows for the subjects named by `fields` (name -> value pairs); logs failures.
  void IndexSubjects(const std::string& bucket, const std::string& key,
                     const std::vector<std::pair<std::string, std::string>>& fields);

  ObjectStore* store_;
  CacheFs& cache_;
  StateStore& state_;
  Clock& clock_;
  EngineOptions opts_;
  AuditSink* audit_ = nullptr;
  EngineObserver* observer_ = nullptr;
  EngineCounters counters_;
  mutable std::mutex refusals_mu_;
  std::map<std::string, int64_t> refusals_;

  // A journal that cannot be read (a damaged state database) fails every claim, and each fetch
  // worker tries again every 250 ms: the error is logged once, then once every
  // kClaimErrorReportMs with the count of failures in between, until a claim succeeds.
  static constexpr int64_t kClaimErrorReportMs = 30000;
  void NoteClaimError(const Status& s);
  void NoteClaimOk();
  std::atomic<bool> claim_failing_{false};
  std::mutex claim_error_mu_;
  int64_t claim_error_reported_ms_ = 0;  // guarded by claim_error_mu_
  int64_t claim_errors_unreported_ = 0;  // guarded by claim_error_mu_
};

}  // namespace ds
