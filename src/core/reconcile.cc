#include "core/reconcile.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

#include "core/key_path.h"

namespace ds {

int CompareKeys(const std::string& a, const std::string& b) {
  size_t n = std::min(a.size(), b.size());
  int c = std::memcmp(a.data(), b.data(), n);  // memcmp compares unsigned bytes
  if (c != 0) return c < 0 ? -1 : 1;
  if (a.size() == b.size()) return 0;
  return a.size() < b.size() ? -1 : 1;
}

namespace {

// A bounded single-producer single-consumer queue that turns a push stream (a listing or a
// walk with a callback) into a pull stream for the merge.
template <typename T>
class Channel {
 public:
  explicit Channel(size_t capacity) : capacity_(capacity) {}

  // Blocks while full. False when the consumer has closed the channel: stop producing.
  bool Push(T item) {
    std::unique_lock<std::mutex> l(mu_);
    not_full_.wait(l, [&] { return items_.size() < capacity_ || closed_; });
    if (closed_) return false;
    items_.push_back(std::move(item));
    not_empty_.notify_one();
    return true;
  }
  // The producer is done (successfully or not).
  void Finish(Status s) {
    std::lock_guard<std::mutex> l(mu_);
    done_ = true;
    status_ = std::move(s);
    not_empty_.notify_all();
  }
  // nullopt when the producer finished and everything was taken. While nothing arrives,
  // `idle` runs every `idle_ms` (without the lock held).
  std::optional<T> Pop(const std::function<void()>& idle, int64_t idle_ms) {
    std::unique_lock<std::mutex> l(mu_);
    while (!not_empty_.wait_for(l, std::chrono::milliseconds(idle_ms),
                                [&] { return !items_.empty() || done_; })) {
      l.unlock();
      idle();
      l.lock();
    }
    if (items_.empty()) return std::nullopt;
    T item = std::move(items_.front());
    items_.pop_front();
    not_full_.notify_one();
    return item;
  }
  // The consumer gives up: unblocks and stops the producer.
  void Close() {
    std::lock_guard<std::mutex> l(mu_);
    closed_ = true;
    not_full_.notify_all();
  }
  Status status() {
    std::lock_guard<std::mutex> l(mu_);
    return status_;
  }

 private:
  size_t capacity_;
  std::mutex mu_;
  std::condition_variable not_full_, not_empty_;
  std::deque<T> items_;
  bool closed_ = false, done_ = false;
  Status status_;
};

struct CacheItem {
  std::string key;
  uint64_t size = 0;
};

// Items cross the channel in batches: one lock round per batch, not per key.
constexpr size_t kBatch = 256;

// The producer side: collects items and hands them over a batch at a time.
template <typename T>
class BatchWriter {
 public:
  explicit BatchWriter(Channel<std::vector<T>>& ch) : ch_(ch) { batch_.reserve(kBatch); }
  bool Add(T item) {
    batch_.push_back(std::move(item));
    if (batch_.size() < kBatch) return true;
    return Flush();
  }
  bool Flush() {
    if (batch_.empty()) return true;
    bool ok = ch_.Push(std::move(batch_));
    batch_ = {};
    batch_.reserve(kBatch);
    return ok;
  }

 private:
  Channel<std::vector<T>>& ch_;
  std::vector<T> batch_;
};

// The consumer side: one item at a time out of the batches; `idle` runs while it waits.
template <typename T>
class BatchReader {
 public:
  BatchReader(Channel<std::vector<T>>& ch, std::function<void()> idle, int64_t idle_ms)
      : ch_(ch), idle_(std::move(idle)), idle_ms_(idle_ms) {}
  std::optional<T> Next() {
    while (pos_ >= batch_.size()) {
      std::optional<std::vector<T>> b = ch_.Pop(idle_, idle_ms_);
      if (!b) return std::nullopt;
      batch_ = std::move(*b);
      pos_ = 0;
    }
    return std::move(batch_[pos_++]);
  }

 private:
  Channel<std::vector<T>>& ch_;
  std::function<void()> idle_;
  int64_t idle_ms_;
  std::vector<T> batch_;
  size_t pos_ = 0;
};

}  // namespace

Reconciler::Reconciler(ObjectStore& store, CacheFs& cache, StateStore& state, Engine& engine,
                       Clock& clock)
    : store_(store), cache_(cache), state_(state), engine_(engine), clock_(clock) {}

Status Reconciler::Run(const ReconcileOptions& opts, ReconcileReport* report) {
  ReconcileReport& r = *report;
  r = ReconcileReport{};
  r.started_ms = clock_.NowMillis();
  const bool download = !opts.dry_run && !opts.delete_only;
  const KeyPathLimits limits = engine_.options().limits;

  // Bounded: at most 8 batches of 256 keys wait on each side.
  Channel<std::vector<ObjectInfo>> bucket_q(8);
  Channel<std::vector<CacheItem>> cache_q(8);
  std::thread lister([&] {
    BatchWriter<ObjectInfo> out(bucket_q);
    Status s = store_.ListObjects(opts.bucket, opts.prefix,
                                  [&](const ObjectInfo& info) { return out.Add(info); });
    if (s.ok()) out.Flush();
    bucket_q.Finish(std::move(s));
  });
  std::thread walker([&] {
    BatchWriter<CacheItem> out(cache_q);
    Status s = cache_.Walk(opts.prefix, [&](const std::string& path, const CacheEntryInfo& info) {
      return out.Add(CacheItem{path, info.size});
    });
    if (s.ok()) out.Flush();
    cache_q.Finish(std::move(s));
  });
  int64_t next_progress = r.started_ms + opts.progress_every_ms;
  // A progress call when one is due: also while the merge waits for the listing or the walk,
  // naming the store's requests that have waited too long.
  auto maybe_progress = [&] {
    if (!opts.progress) return;
    const int64_t now = clock_.NowMillis();
    if (now < next_progress) return;
    r.duration_ms = now - r.started_ms;
    if (opts.store_watch) r.waiting = opts.store_watch->Waiting(opts.store_wait_after_ms);
    opts.progress(r);
    next_progress = clock_.NowMillis() + opts.progress_every_ms;
  };
  const int64_t idle_ms = std::max<int64_t>(1, opts.idle_poll_ms);
  BatchReader<ObjectInfo> bucket_in(bucket_q, maybe_progress, idle_ms);
  BatchReader<CacheItem> cache_in(cache_q, maybe_progress, idle_ms);
  auto stop_producers = [&] {
    bucket_q.Close();
    cache_q.Close();
    lister.join();
    walker.join();
  };

  Status merge_status;
  std::vector<std::pair<std::string, bool>> orphans;  // key, tracked
  std::optional<ObjectInfo> b = bucket_in.Next();
  std::optional<CacheItem> c = cache_in.Next();
  std::string last_b, last_c;
  bool have_last_b = false, have_last_c = false;

  auto lookup = [&](const std::string& key) { return state_.Lookup(opts.bucket, key); };
  // Downloads are journaled in groups of kBatch keys, one state transaction each.
  std::vector<Engine::FetchRequest> fetches;
  auto flush_fetches = [&]() -> Status {
    DS_RETURN_IF_ERROR(engine_.QueueFetches(opts.bucket, fetches, opts.request_id));
    r.queued += static_cast<int64_t>(fetches.size());
    fetches.clear();
    return Status::Ok();
  };
  auto queue = [&](const std::string& key, JobReason why) -> Status {
    if (!download) return Status::Ok();
    fetches.push_back({key, why});
    return fetches.size() >= kBatch ? flush_fetches() : Status::Ok();
  };

  while (merge_status.ok() && (b || c)) {
    if (b && have_last_b && CompareKeys(b->key, last_b) <= 0) {
      merge_status = Status::Internal("the bucket listing is not in byte order at key '" +
                                      PrintableKey(b->key) + "': nothing was removed");
      break;
    }
    if (c && have_last_c && CompareKeys(c->key, last_c) <= 0) {
      merge_status = Status::Internal("the cache walk is not in byte order at '" +
                                      PrintableKey(c->key) + "': nothing was removed");
      break;
    }
    int cmp = !b ? 1 : !c ? -1 : CompareKeys(b->key, c->key);
    ++r.compared;
    if (cmp < 0) {  // only in the bucket
      ++r.bucket_objects;
      if (CheckKey(b->key, limits)) {
        ++r.refused;
      } else {
        ++r.missing;
        merge_status = queue(b->key, JobReason::kReconcileMissing);
      }
    } else if (cmp > 0) {  // only in the cache
      ++r.cache_files;
      Result<KeyState> st = lookup(c->key);
      if (!st.ok()) {
        merge_status = st.status();
        break;
      }
      bool tracked = st->present;
      ++(tracked ? r.orphans : r.untracked_orphans);
      orphans.emplace_back(c->key, tracked);
      r.orphan_keys.push_back(c->key);
    } else {  // in both
      ++r.bucket_objects;
      ++r.cache_files;
      Result<KeyState> st = lookup(c->key);
      if (!st.ok()) {
        merge_status = st.status();
        break;
      }
      bool stale = c->size != b->size || (!st->etag.empty() && st->etag != b->etag);
      if (stale) {
        ++r.stale;
        merge_status = queue(b->key, JobReason::kReconcileStale);
      } else if (!st->present) {
        ++r.unverified;
        merge_status = queue(b->key, JobReason::kReconcileUnverified);
      } else {
        ++r.matching;
      }
    }
    if (cmp <= 0) {
      last_b = b->key;
      have_last_b = true;
      b = bucket_in.Next();
    }
    if (cmp >= 0) {
      last_c = c->key;
      have_last_c = true;
      c = cache_in.Next();
    }
    maybe_progress();
  }
  stop_producers();
  r.waiting.clear();
  if (merge_status.ok()) merge_status = flush_fetches();
  r.duration_ms = clock_.NowMillis() - r.started_ms;
  if (merge_status.ok()) merge_status = bucket_q.status();
  if (merge_status.ok()) merge_status = cache_q.status();
  if (!merge_status.ok()) {
    spdlog::error("reconcile of s3://{}/{} stopped, nothing removed: {}", opts.bucket, opts.prefix,
                  merge_status.ToString());
    if (opts.progress) opts.progress(r);
    return merge_status;
  }

  const int64_t to_remove = r.orphans + r.untracked_orphans;
  if (opts.max_delete >= 0 && to_remove > opts.max_delete) {
    r.max_delete_refused = true;
    if (opts.progress) opts.progress(r);
    return Status::Conflict("refusing to remove " + std::to_string(to_remove) +
                            " file(s): more than --max-delete " + std::to_string(opts.max_delete) +
                            " (a wrong prefix or endpoint can make a bucket look empty); "
                            "nothing was removed");
  }
  if (opts.max_delete_percent >= 0 && to_remove > kMaxDeleteFloor &&
      to_remove * 100 > static_cast<int64_t>(opts.max_delete_percent) * r.cache_files) {
    r.max_delete_refused = true;
    if (opts.progress) opts.progress(r);
    return Status::Conflict(
        "refusing to remove " + std::to_string(to_remove) + " of the " +
        std::to_string(r.cache_files) + " cached file(s): more than --max-delete " +
        std::to_string(opts.max_delete_percent) +
        "% (a wrong prefix, endpoint or bucket makes every file look deleted); nothing was "
        "removed. If the deletions are real: delete-sync reconcile --max-delete unlimited");
  }
  if (!opts.dry_run && !orphans.empty()) {
    std::atomic<size_t> next{0};
    std::mutex mu;
    Status remove_status;
    auto worker = [&] {
      while (true) {
        size_t i = next++;
        if (i >= orphans.size()) return;
        const std::string& key = orphans[i].first;
        Result<OrphanOutcome> o =
            engine_.RemoveOrphan(opts.bucket, key, r.started_ms, opts.request_id);
        std::lock_guard<std::mutex> l(mu);
        if (!o.ok()) {
          if (remove_status.ok()) remove_status = o.status();
          continue;
        }
        if (*o == OrphanOutcome::kRemoved) {
          ++r.removed;
          r.removed_keys.push_back(key);
        } else if (*o == OrphanOutcome::kChanged) {
          ++r.skipped_changed;
        }
      }
    };
    std::vector<std::thread> threads;
    int n = std::max(1, std::min<int>(opts.concurrency, static_cast<int>(orphans.size())));
    for (int i = 0; i < n; ++i) threads.emplace_back(worker);
    for (std::thread& t : threads) t.join();
    std::sort(r.removed_keys.begin(), r.removed_keys.end(),
              [](const std::string& x, const std::string& y) { return CompareKeys(x, y) < 0; });
    r.duration_ms = clock_.NowMillis() - r.started_ms;
    if (!remove_status.ok()) {
      if (opts.progress) opts.progress(r);
      return remove_status;
    }
  }
  if (opts.progress) opts.progress(r);
  spdlog::info(
      "reconcile of s3://{}/{}: compared {}, matching {}, missing {}, stale {}, unverified {}, "
      "orphans {} (+{} untracked), removed {}, queued {}{}",
      opts.bucket, opts.prefix, r.compared, r.matching, r.missing, r.stale, r.unverified, r.orphans,
      r.untracked_orphans, r.removed, r.queued, opts.dry_run ? " (dry run)" : "");
  return Status::Ok();
}

}  // namespace ds
