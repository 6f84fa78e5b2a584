// In-memory fakes of the core's interfaces, for unit tests of the core only.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "common/clock.h"
#include "core/audit_sink.h"
#include "core/cache_fs.h"
#include "core/object_store.h"
#include "core/state_store.h"

namespace ds::fakes {

// Keeps the removal records the engine writes (in memory); `fail` makes every write fail.
class RecordingAudit : public AuditSink {
 public:
  Status RecordRemoval(const RemovalRecord& r) override {
    if (!fail.ok()) return fail;
    records.push_back(r);
    return Status::Ok();
  }
  Status RecordRemovals(const std::vector<RemovalRecord>& group) override {
    if (!fail.ok()) return fail;
    ++groups;
    records.insert(records.end(), group.begin(), group.end());
    return Status::Ok();
  }
  std::vector<RemovalRecord> records;
  int groups = 0;
  Status fail;
};

class FakeClock : public Clock {
 public:
  int64_t NowMillis() override { return now_; }
  void Advance(int64_t ms) { now_ += ms; }
  int64_t now_ = 1'700'000'000'000;
};

// A bucket as a map key -> (body, etag, version). Hooks let a test act in the middle of a GET
// (e.g. apply a removal while a download is in flight) and inject failures.
class FakeObjectStore : public ObjectStore {
 public:
  struct Object {
    std::string body;
    std::string etag;
    std::string version_id;
  };
  void Put(const std::string& bucket, const std::string& key, const std::string& body,
           const std::string& version_id = "");
  void Delete(const std::string& bucket, const std::string& key);

  Result<ObjectInfo> GetObject(const std::string& bucket, const std::string& key,
                               const std::string& version_id, const BodySink& sink) override;
  Result<ObjectInfo> HeadObject(const std::string& bucket, const std::string& key,
                                const std::string& version_id) override;
  Status ListObjects(const std::string& bucket, const std::string& prefix,
                     const std::function<bool(const ObjectInfo&)>& visit) override;
  Result<std::vector<DeleteOutcome>> DeleteObjects(const std::string& bucket,
                                                   const std::vector<ObjectId>& ids) override;

  // Called after the body was handed to the sink, before GetObject returns.
  std::function<void(const std::string& key)> after_get;
  // A store that serves stale reads (a lagging replica or cache in front of the store, or an
  // eventually consistent store): GetObject of a key in this map returns this object, whatever
  // the bucket holds now. HeadObject always answers from the bucket.
  std::map<std::string, Object> stale_get;
  int heads = 0;
  // When set, GetObject fails with this status this many times.
  Status fail_with;
  int fail_times = 0;
  int gets = 0;

 private:
  std::mutex mu_;
  std::map<std::string, std::map<std::string, Object>> buckets_;
};

// A cache tree in memory: files by relative path; folders implied by files. Temp files are
// visible only through temp_count() until published; `crash()` drops unpublished temps as a
// crash would leave them (kept as leftovers for CleanTemp).
class FakeCacheFs : public CacheFs {
 public:
  Result<std::unique_ptr<TempFile>> CreateTemp() override;
  Result<bool> Remove(const std::string& rel_path) override;
  Result<CacheEntryInfo> Stat(const std::string& rel_path) override;
  Result<size_t> CleanTemp() override;
  Status Walk(const std::string& prefix, const CacheWalkVisitor& visit) const override;
  // Puts a file in the cache as something other than the service would (no state record).
  void PutFile(const std::string& p, const std::string& body) {
    std::lock_guard<std::mutex> l(mu_);
    files_[p] = body;
  }

  bool Has(const std::string& p) {
    std::lock_guard<std::mutex> l(mu_);
    return files_.count(p) > 0;
  }
  std::string Read(const std::string& p) {
    std::lock_guard<std::mutex> l(mu_);
    return files_.count(p) ? files_.at(p) : std::string();
  }
  std::map<std::string, std::string> Files() {
    std::lock_guard<std::mutex> l(mu_);
    return files_;
  }
  size_t temp_count() {
    std::lock_guard<std::mutex> l(mu_);
    return temps_.size();
  }
  Status fail_remove;  // when non-OK, Remove fails with it
  // When non-empty, only removals of this path fail with fail_remove.
  std::string fail_remove_path;
  // When non-OK, the Commit of a removal batch fails with it (the unlinks stay done).
  Status fail_commit;
  // Removal batches committed.
  int batch_commits() {
    std::lock_guard<std::mutex> l(mu_);
    return batch_commits_;
  }
  std::unique_ptr<RemovalBatch> BeginRemovals() override;
  // When non-OK, Publish renames the file into place and then fails with it: what the state
  // store sees when the process dies between the rename and the state commit.
  Status fail_after_publish;
  // When non-OK, the folder fsync after a PublishUnsynced fails with it this many times (the
  // file stays renamed into place, as on a real file system).
  Status fail_sync_folder;
  int fail_sync_folder_times = 0;
  // Simulates a crash of the writer: the temp file object goes away without cleaning up,
  // leaving the temp file behind as a killed process would.
  void Abandon(std::unique_ptr<TempFile> temp);

 private:
  friend class FakeTemp;
  mutable std::mutex mu_;
  std::map<std::string, std::string> files_;  // std::map of std::string: byte order
  std::set<int> temps_;
  int next_temp_ = 0;
  int batch_commits_ = 0;
};

class FakeStateStore : public StateStore {
 public:
  Status Transact(const std::function<Status(StateTxn&)>& fn,
                  Durability durability = Durability::kDurable) override;
  Result<KeyState> Lookup(const std::string& bucket, const std::string& key) override {
    return Key(bucket, key);
  }
  Result<std::vector<FetchJob>> ClaimJobs(int64_t now_ms, size_t limit) override;
  Status FinishJob(int64_t id) override;
  Status RenewClaim(int64_t id, int64_t now_ms) override;
  Status RetryJob(int64_t id, int64_t not_before_ms, const std::string& error,
                  int64_t first_error_ms) override;
  Result<int64_t> RetryFailed(int64_t now_ms) override;
  Status FailJob(int64_t id, const std::string& error) override;
  Result<std::pair<int64_t, int64_t>> JobCounts() override;
  Result<JobPresence> JobOf(const std::string& bucket, const std::string& key) override;
  Status IndexSubject(const std::string& subject, const std::string& bucket,
                      const std::string& key) override {
    std::lock_guard<std::recursive_mutex> l(mu_);
    subjects_.insert({subject, bucket, key});
    return Status::Ok();
  }
  Result<std::vector<std::string>> SubjectKeys(const std::string& subject,
                                               const std::string& bucket) override {
    std::lock_guard<std::recursive_mutex> l(mu_);
    std::vector<std::string> out;
    for (const auto& [s, b, k] : subjects_) {
      if (s == subject && b == bucket) out.push_back(k);
    }
    return out;
  }
  Status UnindexKey(const std::string& bucket, const std::string& key) override {
    std::lock_guard<std::recursive_mutex> l(mu_);
    for (auto it = subjects_.begin(); it != subjects_.end();) {
      if (std::get<1>(*it) == bucket && std::get<2>(*it) == key) {
        it = subjects_.erase(it);
      } else {
        ++it;
      }
    }
    return Status::Ok();
  }

  Result<CollectStats> CollectExpired(int64_t cutoff_ms, size_t batch) override;

  KeyState Key(const std::string& bucket, const std::string& key);
  // Whether the key has a row (a collected or never seen key has none).
  bool HasRow(const std::string& bucket, const std::string& key) {
    std::lock_guard<std::recursive_mutex> l(mu_);
    return keys_.count({bucket, key}) > 0;
  }
  std::vector<FetchJob> Jobs();
  // Claims up to `limit` due jobs; mu_ held.
  std::vector<FetchJob> ClaimLocked(int64_t now_ms, size_t limit);
  int transactions() {
    std::lock_guard<std::recursive_mutex> l(mu_);
    return transactions_;
  }
  // The durability of the last committed transaction (Transact) that wrote the key's state or
  // journaled a job of it (none: never written). A real store loses a kRelaxed commit on power
  // loss, so what was acknowledged must have been written by a kDurable one.
  std::optional<Durability> CommitDurability(const std::string& bucket, const std::string& key) {
    std::lock_guard<std::recursive_mutex> l(mu_);
    auto it = commit_durability_.find({bucket, key});
    if (it == commit_durability_.end()) return std::nullopt;
    return it->second;
  }

  struct JobRow {
    FetchJob job;
    bool claimed = false;
    bool failed = false;
    int64_t lease_until = 0;  // when claimed
  };
  int renewals = 0;
  // When non-OK, every StateTxn::Put fails with it (a damaged database).
  Status fail_put;
  // When non-OK, every StateTxn::ClaimNextJob fails with it (a damaged journal).
  Status fail_claim;
  std::recursive_mutex mu_;
  // Write transactions run: Transact, and each ClaimJobs/FinishJob/RetryJob/FailJob call.
  int transactions_ = 0;
  std::map<std::pair<std::string, std::string>, KeyState> keys_;
  std::map<int64_t, JobRow> jobs_;
  int64_t next_id_ = 1;
  std::set<std::tuple<std::string, std::string, std::string>> subjects_;
  std::map<std::pair<std::string, std::string>, Durability> commit_durability_;
};

}  // namespace ds::fakes
