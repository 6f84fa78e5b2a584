#include "fakes/fakes.h"

#include "core/parse_events.h"

namespace ds::fakes {

// ---- FakeObjectStore --------------------------------------------------------------------

void FakeObjectStore::Put(const std::string& bucket, const std::string& key,
                          const std::string& body, const std::string& version_id) {
  std::lock_guard<std::mutex> l(mu_);
  buckets_[bucket][key] = {body, "etag-" + std::to_string(std::hash<std::string>()(body)),
                           version_id};
}

void FakeObjectStore::Delete(const std::string& bucket, const std::string& key) {
  std::lock_guard<std::mutex> l(mu_);
  buckets_[bucket].erase(key);
}

Result<ObjectInfo> FakeObjectStore::GetObject(const std::string& bucket, const std::string& key,
                                              const std::string& /*version_id*/,
                                              const BodySink& sink) {
  Object obj;
  {
    std::lock_guard<std::mutex> l(mu_);
    ++gets;
    if (fail_times > 0) {
      --fail_times;
      return fail_with;
    }
    auto b = buckets_.find(bucket);
    if (b == buckets_.end()) return Status::NotFound("bucket '" + bucket + "' does not exist");
    if (auto st = stale_get.find(key); st != stale_get.end()) {
      obj = st->second;
    } else {
      auto o = b->second.find(key);
      if (o == b->second.end()) {
        return Status::NotFound("s3://" + bucket + "/" + key + ": not found");
      }
      obj = o->second;
    }
  }
  // Deliver in two chunks so partial writes are exercised.
  size_t half = obj.body.size() / 2;
  DS_RETURN_IF_ERROR(sink(obj.body.data(), half));
  DS_RETURN_IF_ERROR(sink(obj.body.data() + half, obj.body.size() - half));
  if (after_get) after_get(key);
  ObjectInfo info;
  info.key = key;
  info.size = obj.body.size();
  info.etag = obj.etag;
  info.version_id = obj.version_id;
  return info;
}

Result<ObjectInfo> FakeObjectStore::HeadObject(const std::string& bucket, const std::string& key,
                                               const std::string& /*version_id*/) {
  std::lock_guard<std::mutex> l(mu_);
  ++heads;
  auto b = buckets_.find(bucket);
  if (b == buckets_.end() || !b->second.count(key)) return Status::NotFound(key + ": not found");
  const Object& o = b->second.at(key);
  ObjectInfo info;
  info.key = key;
  info.size = o.body.size();
  info.etag = o.etag;
  info.version_id = o.version_id;
  return info;
}

Status FakeObjectStore::ListObjects(const std::string& bucket, const std::string& prefix,
                                    const std::function<bool(const ObjectInfo&)>& visit) {
  std::map<std::string, Object> copy;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto b = buckets_.find(bucket);
    if (b == buckets_.end()) return Status::NotFound("bucket '" + bucket + "' does not exist");
    copy = b->second;
  }
  for (const auto& [k, o] : copy) {
    if (k.compare(0, prefix.size(), prefix) != 0) continue;
    ObjectInfo info;
    info.key = k;
    info.size = o.body.size();
    info.etag = o.etag;
    if (!visit(info)) break;
  }
  return Status::Ok();
}

Result<std::vector<DeleteOutcome>> FakeObjectStore::DeleteObjects(
    const std::string& bucket, const std::vector<ObjectId>& ids) {
  std::vector<DeleteOutcome> out;
  for (const ObjectId& id : ids) {
    Delete(bucket, id.key);
    out.push_back({id, true, "", ""});
  }
  return out;
}

// ---- FakeCacheFs ------------------------------------------------------------------------

class FakeTemp : public TempFile {
 public:
  FakeTemp(FakeCacheFs* fs, int id) : fs_(fs), id_(id) {}
  ~FakeTemp() override {
    if (!published_ && !abandoned_) {
      std::lock_guard<std::mutex> l(fs_->mu_);
      fs_->temps_.erase(id_);
    }
  }
  Status Write(const char* data, size_t size) override {
    data_.append(data, size);
    return Status::Ok();
  }
  Status Sync() override { return Status::Ok(); }
  Status Publish(const std::string& rel_path) override {
    std::lock_guard<std::mutex> l(fs_->mu_);
    // A folder of that name, or a file where a parent folder must be: conflict.
    for (const auto& [p, body] : fs_->files_) {
      if (p.size() > rel_path.size() && p.compare(0, rel_path.size(), rel_path) == 0 &&
          p[rel_path.size()] == '/') {
        return Status::Conflict("'" + rel_path + "' is a folder");
      }
      if (rel_path.size() > p.size() && rel_path.compare(0, p.size(), p) == 0 &&
          rel_path[p.size()] == '/') {
        return Status::Conflict("'" + p + "' is a file");
      }
    }
    fs_->files_[rel_path] = data_;
    fs_->temps_.erase(id_);
    published_ = true;
    return fs_->fail_after_publish;
  }
  Status SyncFolder() override {
    std::lock_guard<std::mutex> l(fs_->mu_);
    if (fs_->fail_sync_folder_times > 0) {
      --fs_->fail_sync_folder_times;
      return fs_->fail_sync_folder;
    }
    return Status::Ok();
  }
  uint64_t bytes_written() const override { return data_.size(); }

 private:
  FakeCacheFs* fs_;
  int id_;
  std::string data_;
  bool published_ = false;

 public:
  bool abandoned_ = false;  // the writing process "crashed": the temp file stays
};

void FakeCacheFs::Abandon(std::unique_ptr<TempFile> temp) {
  static_cast<FakeTemp*>(temp.get())->abandoned_ = true;
}

Result<std::unique_ptr<TempFile>> FakeCacheFs::CreateTemp() {
  std::lock_guard<std::mutex> l(mu_);
  int id = next_temp_++;
  temps_.insert(id);
  return std::unique_ptr<TempFile>(new FakeTemp(this, id));
}

Result<bool> FakeCacheFs::Remove(const std::string& rel_path) {
  if (!fail_remove.ok() && (fail_remove_path.empty() || fail_remove_path == rel_path)) {
    return fail_remove;
  }
  std::lock_guard<std::mutex> l(mu_);
  return files_.erase(rel_path) > 0;
}

namespace {
class FakeRemovalBatch : public RemovalBatch {
 public:
  FakeRemovalBatch(FakeCacheFs& cache, std::function<void()> committed)
      : cache_(cache), committed_(std::move(committed)) {}
  Result<CacheEntryInfo> Stat(const std::string& rel_path) override {
    return cache_.Stat(rel_path);
  }
  Result<bool> Remove(const std::string& rel_path) override { return cache_.Remove(rel_path); }
  Status Commit() override {
    if (!cache_.fail_commit.ok()) return cache_.fail_commit;
    committed_();
    return Status::Ok();
  }

 private:
  FakeCacheFs& cache_;
  std::function<void()> committed_;
};
}  // namespace

std::unique_ptr<RemovalBatch> FakeCacheFs::BeginRemovals() {
  return std::make_unique<FakeRemovalBatch>(*this, [this] {
    std::lock_guard<std::mutex> l(mu_);
    ++batch_commits_;
  });
}

Result<CacheEntryInfo> FakeCacheFs::Stat(const std::string& rel_path) {
  std::lock_guard<std::mutex> l(mu_);
  CacheEntryInfo info;
  auto it = files_.find(rel_path);
  if (it != files_.end()) {
    info.exists = true;
    info.size = it->second.size();
    return info;
  }
  // A folder: some file lives under it.
  auto below = files_.lower_bound(rel_path + "/");
  if (below != files_.end() && below->first.compare(0, rel_path.size() + 1, rel_path + "/") == 0) {
    info.exists = true;
    info.is_dir = true;
  }
  return info;
}

Status FakeCacheFs::Walk(const std::string& prefix, const CacheWalkVisitor& visit) const {
  std::map<std::string, std::string> copy;
  {
    std::lock_guard<std::mutex> l(mu_);
    copy = files_;
  }
  for (const auto& [p, body] : copy) {
    if (p.compare(0, prefix.size(), prefix) != 0) continue;
    CacheEntryInfo info;
    info.exists = true;
    info.size = body.size();
    if (!visit(p, info)) break;
  }
  return Status::Ok();
}

Result<size_t> FakeCacheFs::CleanTemp() {
  std::lock_guard<std::mutex> l(mu_);
  size_t n = temps_.size();
  temps_.clear();
  return n;
}

// ---- FakeStateStore ---------------------------------------------------------------------

namespace {
class FakeTxn : public StateTxn {
 public:
  explicit FakeTxn(FakeStateStore* s) : s_(s) {}
  Result<KeyState> Get(const std::string& bucket, const std::string& key) override {
    auto it = s_->keys_.find({bucket, key});
    return it == s_->keys_.end() ? KeyState{} : it->second;
  }
  Status Put(const std::string& bucket, const std::string& key, const KeyState& st) override {
    if (!s_->fail_put.ok()) return s_->fail_put;
    s_->keys_[{bucket, key}] = st;
    put_.insert({bucket, key});
    return Status::Ok();
  }
  // The keys whose state was Put or a job Enqueued in this transaction (their commit's
  // durability is recorded).
  std::set<std::pair<std::string, std::string>> put_;
  Status Enqueue(const FetchJob& job) override {
    put_.insert({job.bucket, job.key});
    for (auto& [id, row] : s_->jobs_) {
      if (row.claimed || row.failed || row.job.bucket != job.bucket || row.job.key != job.key)
        continue;
      bool ordered = row.job.ordered && job.ordered;
      if (!ordered) {
        row.job.seq.clear();
      } else {
        auto cmp = CompareSequencers(job.seq, row.job.seq);
        if (cmp && *cmp > 0) row.job.seq = job.seq;
      }
      row.job.ordered = ordered;
      row.job.not_before_ms = std::min(row.job.not_before_ms, job.not_before_ms);
      row.job.event_ms = std::min(row.job.event_ms, job.event_ms);
      return Status::Ok();
    }
    FetchJob j = job;
    j.id = s_->next_id_++;
    s_->jobs_[j.id] = {j, false, false};
    return Status::Ok();
  }
  Result<std::optional<FetchJob>> ClaimNextJob(int64_t now_ms) override {
    if (!s_->fail_claim.ok()) return s_->fail_claim;
    std::vector<FetchJob> got = s_->ClaimLocked(now_ms, 1);
    if (got.empty()) return std::optional<FetchJob>();
    return std::optional<FetchJob>(got.front());
  }
  Status FinishJob(int64_t id) override {
    s_->jobs_.erase(id);
    return Status::Ok();
  }
  Status RequeueShadowed(const std::string& bucket, const std::string& key,
                         int64_t now_ms) override {
    for (auto& [id, row] : s_->jobs_) {
      if (!row.failed || row.job.bucket != bucket) continue;
      const std::string& k = row.job.key;
      bool under = k.compare(0, key.size() + 1, key + "/") == 0;
      bool parent = key.size() > k.size() && key.compare(0, k.size() + 1, k + "/") == 0;
      if (!under && !parent) continue;
      row.failed = false;
      row.job.attempts = 0;
      row.job.first_error_ms = 0;
      row.job.not_before_ms = now_ms;
    }
    return Status::Ok();
  }
  Status ClearFailed(const std::string& bucket, const std::string& key) override {
    for (auto it = s_->jobs_.begin(); it != s_->jobs_.end();) {
      const FakeStateStore::JobRow& row = it->second;
      if (row.failed && row.job.bucket == bucket && row.job.key == key) {
        it = s_->jobs_.erase(it);
      } else {
        ++it;
      }
    }
    return Status::Ok();
  }

 private:
  FakeStateStore* s_;
};
}  // namespace

Status FakeStateStore::Transact(const std::function<Status(StateTxn&)>& fn, Durability durability) {
  std::lock_guard<std::recursive_mutex> l(mu_);
  ++transactions_;
  auto keys = keys_;
  auto jobs = jobs_;
  auto next = next_id_;
  FakeTxn txn(this);
  Status s = fn(txn);
  if (!s.ok()) {
    keys_ = keys;
    jobs_ = jobs;
    next_id_ = next;
    return s;
  }
  for (const auto& k : txn.put_) commit_durability_[k] = durability;
  return s;
}

Result<std::vector<FetchJob>> FakeStateStore::ClaimJobs(int64_t now_ms, size_t limit) {
  std::lock_guard<std::recursive_mutex> l(mu_);
  ++transactions_;
  return ClaimLocked(now_ms, limit);
}

std::vector<FetchJob> FakeStateStore::ClaimLocked(int64_t now_ms, size_t limit) {
  std::vector<FetchJob> out;
  for (auto& [id, row] : jobs_) {
    if (out.size() >= limit) break;
    if (row.failed) continue;
    if (row.claimed ? row.lease_until > now_ms : row.job.not_before_ms > now_ms) continue;
    row.claimed = true;
    row.lease_until = now_ms + kClaimLeaseMs;
    out.push_back(row.job);
  }
  return out;
}

Status FakeStateStore::FinishJob(int64_t id) {
  std::lock_guard<std::recursive_mutex> l(mu_);
  ++transactions_;
  jobs_.erase(id);
  return Status::Ok();
}

Status FakeStateStore::RenewClaim(int64_t id, int64_t now_ms) {
  std::lock_guard<std::recursive_mutex> l(mu_);
  ++renewals;
  auto it = jobs_.find(id);
  if (it != jobs_.end() && it->second.claimed) it->second.lease_until = now_ms + kClaimLeaseMs;
  return Status::Ok();
}

Status FakeStateStore::RetryJob(int64_t id, int64_t not_before_ms, const std::string& error,
                                int64_t first_error_ms) {
  std::lock_guard<std::recursive_mutex> l(mu_);
  ++transactions_;
  auto& row = jobs_.at(id);
  row.claimed = false;
  row.job.attempts++;
  row.job.not_before_ms = not_before_ms;
  row.job.last_error = error;
  row.job.first_error_ms = first_error_ms;
  return Status::Ok();
}

Result<int64_t> FakeStateStore::RetryFailed(int64_t now_ms) {
  std::lock_guard<std::recursive_mutex> l(mu_);
  int64_t n = 0;
  for (auto& [id, row] : jobs_) {
    if (!row.failed) continue;
    row.failed = false;
    row.claimed = false;
    row.job.attempts = 0;
    row.job.first_error_ms = 0;
    row.job.not_before_ms = now_ms;
    ++n;
  }
  return n;
}

Status FakeStateStore::FailJob(int64_t id, const std::string& error) {
  std::lock_guard<std::recursive_mutex> l(mu_);
  ++transactions_;
  auto& row = jobs_.at(id);
  row.claimed = false;
  row.failed = true;
  row.job.attempts++;
  row.job.last_error = error;
  return Status::Ok();
}

Result<std::pair<int64_t, int64_t>> FakeStateStore::JobCounts() {
  std::lock_guard<std::recursive_mutex> l(mu_);
  int64_t waiting = 0, failed = 0;
  for (auto& [id, row] : jobs_) (row.failed ? failed : waiting)++;
  return std::make_pair(waiting, failed);
}

Result<StateStore::JobPresence> FakeStateStore::JobOf(const std::string& bucket,
                                                      const std::string& key) {
  std::lock_guard<std::recursive_mutex> l(mu_);
  JobPresence p = JobPresence::kNone;
  for (auto& [id, row] : jobs_) {
    if (row.job.bucket != bucket || row.job.key != key) continue;
    if (!row.failed) return JobPresence::kWaiting;
    p = JobPresence::kFailed;
  }
  return p;
}

Result<CollectStats> FakeStateStore::CollectExpired(int64_t cutoff_ms, size_t batch) {
  std::lock_guard<std::recursive_mutex> l(mu_);
  CollectStats stats;
  if (batch == 0) batch = 1;
  std::set<std::pair<std::string, std::string>> with_job;
  for (auto& [id, row] : jobs_) with_job.insert({row.job.bucket, row.job.key});
  size_t in_batch = 0;
  for (auto it = keys_.begin(); it != keys_.end();) {
    if (!it->second.present && it->second.updated_ms < cutoff_ms && !with_job.count(it->first)) {
      it = keys_.erase(it);
      ++stats.keys;
      if (++in_batch == batch) {
        in_batch = 0;
        ++stats.transactions;
      }
    } else {
      ++it;
    }
  }
  ++stats.transactions;
  ++transactions_;
  return stats;
}

KeyState FakeStateStore::Key(const std::string& bucket, const std::string& key) {
  std::lock_guard<std::recursive_mutex> l(mu_);
  auto it = keys_.find({bucket, key});
  return it == keys_.end() ? KeyState{} : it->second;
}

std::vector<FetchJob> FakeStateStore::Jobs() {
  std::lock_guard<std::recursive_mutex> l(mu_);
  std::vector<FetchJob> out;
  for (auto& [id, row] : jobs_) out.push_back(row.job);
  return out;
}

}  // namespace ds::fakes

#include <spdlog/spdlog.h>

#include <cstdlib>

namespace {
// Unit tests log only warnings and errors unless DS_TEST_LOG=debug|info is set.
const bool kQuietLogs = [] {
  const char* level = std::getenv("DS_TEST_LOG");
  spdlog::set_level(level ? spdlog::level::from_str(level) : spdlog::level::err);
  return true;
}();
}  // namespace
