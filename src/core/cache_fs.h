// The cache tree as the core sees it. Paths given to CacheFs are *relative* cache paths that
// key_path.h has already checked (no "..", no empty segments, not in the reserved folder); the
// implementation still refuses anything that would leave the root.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace ds {

// Name of the folder at the cache root that holds the service's own temp and state files.
// No key may address it.
inline constexpr const char kReservedDir[] = ".delete-sync";

// A file being written in the reserved folder. Nothing is visible at the final path until
// Publish() succeeds. Destroying an unpublished TempFile removes it.
class TempFile {
 public:
  virtual ~TempFile() = default;
  virtual Status Write(const char* data, size_t size) = 0;
  // Makes the data written so far durable (fsync) now, so that Publish, which may run under
  // a lock, has only the rename and the folder sync left to do. Optional: Publish syncs
  // whatever was not synced.
  virtual Status Sync() = 0;
  // fsync the data, create missing parent folders of `rel_path`, rename over `rel_path`
  // atomically, fsync the parent folder. kConflict when `rel_path` or one of its parents
  // exists with the other kind (file vs folder).
  virtual Status Publish(const std::string& rel_path) = 0;
  // As Publish, but the final folder's fsync is left for SyncFolder(), so that a caller that
  // publishes under a lock can release the lock before waiting for the disk. The default
  // publishes with the sync at once.
  virtual Status PublishUnsynced(const std::string& rel_path) { return Publish(rel_path); }
  // Makes the last PublishUnsynced durable (fsync of the folder it renamed into).
  virtual Status SyncFolder() { return Status::Ok(); }
  virtual uint64_t bytes_written() const = 0;
};

struct CacheEntryInfo {
  bool exists = false;
  bool is_dir = false;
  uint64_t size = 0;
};

// Called by CacheFs::Walk for each regular file. Return false to stop the walk.
using CacheWalkVisitor =
    std::function<bool(const std::string& rel_path, const CacheEntryInfo& info)>;

// Removals made durable together (a group commit), used by one thread inside one state
// transaction: StatMany looks at the copies the group may remove, Remove/RemoveMany unlink at
// once, Commit makes every unlink of the batch durable (one fsync per folder, not per file) and
// then prunes folders that became empty. Until Commit returns OK none of the removals may be
// acknowledged. An implementation may run the calls of one StatMany or RemoveMany in parallel
// (a shared file system answers many at a time) and keep the folders it opened for the rest of
// the batch; so the batch is only valid while nothing else changes the cache's folders, which
// the state transaction around it ensures.
class RemovalBatch {
 public:
  virtual ~RemovalBatch() = default;
  // As CacheFs::Stat.
  virtual Result<CacheEntryInfo> Stat(const std::string& rel_path) = 0;
  // As Stat for each path: one result per path, in the same order. The default looks at them
  // one after the other.
  virtual std::vector<Result<CacheEntryInfo>> StatMany(const std::vector<std::string>& rel_paths);
  // As CacheFs::Remove, except that the unlink is durable only after Commit.
  virtual Result<bool> Remove(const std::string& rel_path) = 0;
  // As Remove for each path: one result per path, in the same order. The default removes them
  // one after the other.
  virtual std::vector<Result<bool>> RemoveMany(const std::vector<std::string>& rel_paths);
  virtual Status Commit() = 0;
};

class CacheFs {
 public:
  virtual ~CacheFs() = default;

  virtual Result<std::unique_ptr<TempFile>> CreateTemp() = 0;

  // unlink `rel_path`, then remove parent folders that became empty, up to (not including) the
  // root. Absent is success. Refuses to remove a folder (kConflict). Returns whether a file was
  // actually removed.
  virtual Result<bool> Remove(const std::string& rel_path) = 0;

  virtual Result<CacheEntryInfo> Stat(const std::string& rel_path) = 0;

  // A batch of removals. The default makes each removal durable on its own (Remove).
  virtual std::unique_ptr<RemovalBatch> BeginRemovals();

  // The disk-space reserve (issue 16, full disk): a file in the reserved folder holding space
  // that only removals may use. EnsureReserve makes it `bytes` long when it is missing (kept
  // missing, without error, when the space is not there); ReleaseReserve frees it and says
  // whether there was one; FreeBytes is the space left for an unprivileged writer. The
  // defaults have no reserve.
  virtual Status EnsureReserve(uint64_t bytes) {
    (void)bytes;
    return Status::Ok();
  }
  virtual Result<bool> ReleaseReserve() { return false; }
  virtual Result<bool> HasReserve() { return false; }
  virtual Result<uint64_t> FreeBytes() { return Status::Internal("free space unknown"); }
  // Removes temp files left in the reserved folder by an earlier crash. Returns how many.
  virtual Result<size_t> CleanTemp() = 0;

  // Visits the regular files whose relative path starts with `prefix` (a plain byte prefix,
  // as in S3), in S3 key order: byte order of the full relative path. Skips the reserved
  // folder, symbolic links and other non-regular files. Memory bounded by one folder per level.
  virtual Status Walk(const std::string& prefix, const CacheWalkVisitor& visit) const = 0;
};

}  // namespace ds
