// Reconcile: the anti-entropy pass. A streaming merge of the bucket listing (ListObjectsV2,
// UTF-8 byte order) with the cache walk (the same order), finding
//   - orphans: files whose object is gone from the bucket (removed: the privacy-critical half),
//   - missing: objects without a copy (downloaded),
//   - stale: copies whose size, or ETag recorded at materialisation, differs (downloaded again).
// Memory is bounded whatever the bucket size: both sides are streamed through small bounded
// queues; only orphans found are kept until the listing has completed, because nothing is
// removed unless the whole listing succeeded (an error mid-way removes nothing).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "core/cache_fs.h"
#include "core/engine.h"
#include "core/object_store.h"
#include "core/state_store.h"
#include "core/store_watch.h"

namespace ds {

// Under a percentage limit, a pass that removes this many files or fewer is never refused.
inline constexpr int64_t kMaxDeleteFloor = 100;

struct ReconcileOptions {
  std::string bucket;
  std::string prefix;
  bool dry_run = false;      // report only: nothing removed, nothing downloaded
  bool delete_only = false;  // remove orphans only: no downloads
  // Refuse to remove anything when more than this many removals would be needed; -1 = no limit.
  int64_t max_delete = -1;
  // Refuse to remove anything when the removals would be more than this percentage of the files
  // walked in the cache (and more than kMaxDeleteFloor); -1 = no such limit. A wrong prefix,
  // endpoint or bucket makes every file an orphan; a restart after deletions does not.
  int max_delete_percent = -1;
  int concurrency = 4;  // parallel removals
  // Called about every `progress_every_ms` while comparing (also while the pass waits on the
  // store or the cache walk), and once at the end.
  std::function<void(const struct ReconcileReport&)> progress;
  int64_t progress_every_ms = 500;
  // The watch of the store's requests (the store passed to the Reconciler wrapped in a
  // WatchedStore): the progress names the requests that have waited `store_wait_after_ms`.
  StoreWatch* store_watch = nullptr;
  int64_t store_wait_after_ms = kStoreWaitNoticeAfterMs;
  // While nothing arrives, the pass looks at the clock this often (a wake-up, not a timeout).
  int64_t idle_poll_ms = 200;
  std::string request_id;  // for logs and audit records
};

struct ReconcileReport {
  int64_t bucket_objects = 0;  // objects listed under the prefix
  int64_t cache_files = 0;     // files walked under the prefix
  int64_t compared = 0;        // keys looked at (union of both sides)
  int64_t matching = 0;
  int64_t missing = 0;  // in the bucket, not in the cache
  int64_t stale = 0;    // in both, size or ETag differs
  // In both, but the service has no record of publishing the file (its state was lost, or
  // another tool put it there): its size proves nothing, so it is downloaded again.
  int64_t unverified = 0;
  int64_t orphans = 0;            // in the cache (created by the service), not in the bucket
  int64_t untracked_orphans = 0;  // in the cache with no record of the service, not in the bucket
  int64_t refused = 0;            // bucket keys that cannot be cache paths (not downloaded)
  int64_t removed = 0;            // orphan files actually removed
  int64_t skipped_changed = 0;    // orphans left alone: changed by an event during the pass
  int64_t queued = 0;             // downloads queued (missing + stale)
  bool max_delete_refused = false;
  std::vector<std::string> removed_keys;
  std::vector<std::string> orphan_keys;  // every orphan found (removed or, in dry run, not)
  // At a progress call: the store's requests that have waited longer than
  // ReconcileOptions::store_wait_after_ms (longest first); empty when the store keeps up.
  std::vector<StoreWait> waiting;
  int64_t started_ms = 0;
  int64_t duration_ms = 0;
};

// Compares two keys in S3 listing order (UTF-8 byte order, i.e. unsigned bytes).
int CompareKeys(const std::string& a, const std::string& b);

class Reconciler {
 public:
  Reconciler(ObjectStore& store, CacheFs& cache, StateStore& state, Engine& engine, Clock& clock);

  // Runs one pass. The report is filled even on error (what was seen before the error); the
  // Status says why the pass failed. A failed listing or walk removes nothing.
  Status Run(const ReconcileOptions& opts, ReconcileReport* report);

 private:
  ObjectStore& store_;
  CacheFs& cache_;
  StateStore& state_;
  Engine& engine_;
  Clock& clock_;
};

}  // namespace ds
