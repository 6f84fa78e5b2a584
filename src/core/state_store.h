// Durable per-key ordering state and the journal of pending downloads. One real
// implementation (state/sqlite_state.h) and one in-memory fake (tests/fakes).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace ds {

// What the service knows about one key of one bucket.
struct KeyState {
  // Highest sequencer seen for this key from an ordered source (AWS), "" when none.
  std::string seq;
  // Bumped by every removal applied to the key. A download that started under one value may
  // only be published while the value is unchanged: no removal happened since it started.
  int64_t removal_gen = 0;
  // Bumped by the removals among those that have no sequencer order: events of unordered
  // sources (Ceph RGW, MinIO) or without a sequencer, reconcile, erase, the store's 404. A
  // download of an ordered creation may be published after removals that were all ordered and
  // older than its own sequencer (its GET started after its event, so its data is newer than
  // theirs), but never after one of these.
  int64_t unordered_removal_gen = 0;
  // Bumped when a download starts; the download carries its ticket. A download may only be
  // published when no download that started later has already been published.
  int64_t fetch_ticket = 0;
  int64_t published_ticket = 0;
  bool tombstone = false;  // the newest applied event is a removal
  bool present = false;    // the cache holds a copy the service published
  std::string etag;        // of the published copy
  std::string version_id;  // of the published copy, "" when unknown/unversioned
  int64_t size = -1;       // of the published copy
  int64_t updated_ms = 0;
};

// Why a download was journaled.
enum class JobReason {
  kEvent,               // a creation event (FetchJob::event_name says which)
  kResyncAfterRemoval,  // a removal of unknown order: the bucket's current object is fetched
  kReconcileMissing,    // a reconcile pass found the key in the bucket and not in the cache
  kReconcileStale,      // a reconcile pass found the cached copy older than the bucket's
  // a reconcile pass found a file in the cache with no record of its publication (the state
  // was lost, or another tool put it there): its size proves nothing, so it is fetched again
  kReconcileUnverified,
};

// The reason as the state database stores it and the logs and the audit log show it:
// "event <event_name>" ("event" without a name), "resync-after-removal", "reconcile-missing",
// "reconcile-stale", "reconcile-unverified".
inline std::string JobReasonText(JobReason reason, const std::string& event_name) {
  switch (reason) {
    case JobReason::kEvent:
      return event_name.empty() ? "event" : "event " + event_name;
    case JobReason::kResyncAfterRemoval:
      return "resync-after-removal";
    case JobReason::kReconcileMissing:
      return "reconcile-missing";
    case JobReason::kReconcileStale:
      return "reconcile-stale";
    case JobReason::kReconcileUnverified:
      return "reconcile-unverified";
  }
  return "event";
}

// The inverse of JobReasonText. A text it does not know (a database written by another version)
// reads as an event whose name is that text, so that nothing is lost from the logs.
inline JobReason ParseJobReason(const std::string& text, std::string* event_name) {
  event_name->clear();
  if (text == "resync-after-removal") return JobReason::kResyncAfterRemoval;
  if (text == "reconcile-missing") return JobReason::kReconcileMissing;
  if (text == "reconcile-stale") return JobReason::kReconcileStale;
  if (text == "reconcile-unverified") return JobReason::kReconcileUnverified;
  if (text == "event") return JobReason::kEvent;
  if (text.rfind("event ", 0) == 0) {
    *event_name = text.substr(6);
  } else {
    *event_name = text;
  }
  return JobReason::kEvent;
}

// A creation journaled durably before it is acknowledged, downloaded later.
struct FetchJob {
  int64_t id = 0;
  std::string bucket;
  std::string key;
  std::string seq;  // the triggering event's sequencer when ordered, else ""
  bool ordered = false;
  std::string event_id;  // for logs
  JobReason reason = JobReason::kEvent;
  std::string event_name;  // with kEvent: the event's name, e.g. "ObjectCreated:Put"
  int attempts = 0;
  int64_t not_before_ms = 0;
  std::string last_error;
  // When the first of its failed attempts failed (0: none failed yet). Retries end, and the
  // job is kept as failed, once this is longer ago than EngineOptions::fetch_retry_for_ms.
  int64_t first_error_ms = 0;
  // How old the newest data this job may publish must be at least: the event's eventTime, or
  // when the job was journaled if that is earlier or unknown (reconcile, resync). Jobs merged
  // into one keep the oldest. 0: unknown (a job journaled by an earlier version), which counts
  // as older than any horizon. A download whose event_ms is older than the state horizon is
  // checked against the bucket before it is published (EngineOptions::state_horizon_ms).
  int64_t event_ms = 0;
};

// What one StateStore::CollectExpired removed.
struct CollectStats {
  int64_t keys = 0;          // key rows deleted
  int64_t transactions = 0;  // write transactions it took (batches)
};

// A claim of a job is a lease: it holds until `now + kClaimLeaseMs`, and the worker renews it
// (StateStore::RenewClaim) while the download runs. A job whose lease has expired may be
// claimed again by any process at any time: a claimant that died, hung or lost its host never
// blocks a job for longer than this, whatever its process id means on another host or after a
// restart. Two runs of one job are safe (a download publishes only when no removal and no later
// download came first: docs/SEMANTICS.md 3.2); they cost a GET.
inline constexpr int64_t kClaimLeaseMs = 2 * 60 * 1000;

// Operations valid inside one exclusive transaction.
class StateTxn {
 public:
  virtual ~StateTxn() = default;
  // A default KeyState when the key was never seen.
  virtual Result<KeyState> Get(const std::string& bucket, const std::string& key) = 0;
  virtual Status Put(const std::string& bucket, const std::string& key, const KeyState& st) = 0;
  // Adds a job; if an unclaimed job for the same bucket+key exists it is merged into it
  // (the higher sequencer kept), so a burst of events for one key costs one download.
  virtual Status Enqueue(const FetchJob& job) = 0;
  // Claims the oldest job whose not_before has passed, or a job whose lease expired, as
  // StateStore::ClaimJobs does for one; none when no job is due. Lets a worker claim a job and take
  // its download ticket in one transaction.
  virtual Result<std::optional<FetchJob>> ClaimNextJob(int64_t now_ms) = 0;
  // Removes a finished job, as StateStore::FinishJob (with the next claim, in one transaction).
  virtual Status FinishJob(int64_t id) = 0;
  // Drops the failed jobs of a key (status, metrics): its copy was published or removed since,
  // so their failure no longer says anything about the cache.
  virtual Status ClearFailed(const std::string& bucket, const std::string& key) = 0;
  // Makes the failed jobs of the keys that a copy of `key` may have shadowed due again at
  // `now_ms`: keys under the folder `key` + "/" and the keys of `key`'s parent folders (a file
  // and a folder cannot share a path: the loser of the path failed with a conflict).
  virtual Status RequeueShadowed(const std::string& bucket, const std::string& key,
                                 int64_t now_ms) = 0;
};

// How soon a committed transaction must survive a power loss.
enum class Durability {
  kDurable,  // on disk when Transact returns (removals, journaled creations: acknowledged)
  kRelaxed,  // on disk with the next durable commit; lost on power loss only, never corrupted
             // (bookkeeping that is redone if lost: tickets, publications, job claims)
};

class StateStore {
 public:
  virtual ~StateStore() = default;
  // How long a claim holds without renewal; a worker renews it every quarter of this.
  virtual int64_t claim_lease_ms() const { return kClaimLeaseMs; }
  // Runs `fn` in one exclusive transaction (across threads and, for SQLite, across
  // processes on this host). Commits when `fn` returns OK, rolls back otherwise; returns fn's
  // status or the commit's error.
  virtual Status Transact(const std::function<Status(StateTxn&)>& fn,
                          Durability durability = Durability::kDurable) = 0;

  // Reads one key's state outside any write transaction (a snapshot; may be stale by the
  // time it is used: decisions that must be exact are taken inside Transact).
  virtual Result<KeyState> Lookup(const std::string& bucket, const std::string& key) = 0;

  // Claims up to `limit` jobs whose not_before has passed, oldest first, and jobs whose lease
  // expired (kClaimLeaseMs); claimed jobs are not handed out again until finished, retried,
  // their claimant is known to be dead, or their lease expires.
  virtual Result<std::vector<FetchJob>> ClaimJobs(int64_t now_ms, size_t limit) = 0;
  // Extends this process's claim of a job to `now_ms + kClaimLeaseMs`. OK also when the job is
  // gone or another process took it over (nothing to renew).
  virtual Status RenewClaim(int64_t id, int64_t now_ms) = 0;
  virtual Status FinishJob(int64_t id) = 0;
  // Unclaims the job for another try at `not_before_ms`, recording the error and when its first
  // failure happened (FetchJob::first_error_ms).
  virtual Status RetryJob(int64_t id, int64_t not_before_ms, const std::string& error,
                          int64_t first_error_ms) = 0;
  // Gives up on the job: kept as failed, with the error, for operators (status) and reconcile.
  virtual Status FailJob(int64_t id, const std::string& error) = 0;
  // Makes every failed job due again at `now_ms`, its attempts and first error forgotten
  // (`delete-sync retry-failed`); returns how many.
  virtual Result<int64_t> RetryFailed(int64_t now_ms) = 0;
  // Counts: jobs waiting (claimed or not) and failed.
  virtual Result<std::pair<int64_t, int64_t>> JobCounts() = 0;
  // Whether a key has a job in the journal: none (never had one, or it finished: published,
  // gone, discarded, in this process or any other), one waiting (claimed or not), or failed.
  enum class JobPresence { kNone, kWaiting, kFailed };
  virtual Result<JobPresence> JobOf(const std::string& bucket, const std::string& key) = 0;

  // The data-subject index (delete-sync erase --subject): which keys of a bucket carry a
  // subject in their metadata. Rows are added when an event or a download shows the field,
  // and dropped when the key is erased. Each call is its own durable transaction.
  virtual Status IndexSubject(const std::string& subject, const std::string& bucket,
                              const std::string& key) = 0;
  // The keys indexed under `subject` in `bucket`, in byte order.
  virtual Result<std::vector<std::string>> SubjectKeys(const std::string& subject,
                                                       const std::string& bucket) = 0;
  // Drops every index row of one key.
  virtual Status UnindexKey(const std::string& bucket, const std::string& key) = 0;

  // State collection (docs/SEMANTICS.md 3.6): deletes the rows of keys whose copy is not
  // present (tombstones included: a tombstone is never present) and whose state last changed
  // (updated_ms) before `cutoff_ms`, unless the key has a job in the journal (waiting, claimed
  // or failed): a download only ever runs under its claimed job, so no download is in flight
  // for a collected key. At most `batch` rows per write transaction, so that a collection never
  // holds the write lock for long. A collected key is afterwards exactly a key never seen. The
  // subject index and failed jobs are not collected. Returns what was deleted.
  virtual Result<CollectStats> CollectExpired(int64_t cutoff_ms, size_t batch) = 0;
};

}  // namespace ds
