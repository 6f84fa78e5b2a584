// Where the service keeps its own files in a cache: the reserved folder `<root>/.delete-sync`
// (kReservedDir, which no key may address) and the files in it. One place for these paths,
// which the CLI's help texts, docs/OPERATIONS.md and docs/SEMANTICS.md also name. Pure string
// building: nothing is looked at or created.
#pragma once

#include <string>

#include "core/cache_fs.h"

namespace ds {

class CacheLayout {
 public:
  // `root`: the cache folder as the user gave it (no trailing '/' is added or removed).
  explicit CacheLayout(std::string root) : root_(std::move(root)) {}

  const std::string& root() const { return root_; }
  // <root>/.delete-sync: mode 0700, created by PosixCache::Open.
  std::string ReservedDir() const { return root_ + "/" + kReservedDir; }
  // Files being downloaded (PosixCache's temp files).
  std::string TempDir() const { return ReservedDir() + "/tmp"; }
  // The state database when --state is not given.
  std::string StateDb() const { return ReservedDir() + "/state.db"; }
  // The audit log when --audit-log is not given.
  std::string AuditLog() const { return ReservedDir() + "/audit.log"; }
  // Erasure receipts when --receipts-dir is not given.
  std::string ReceiptsDir() const { return ReservedDir() + "/receipts"; }
  // The reconcile pass lock (one pass of a cache at a time).
  std::string ReconcileLock() const { return ReservedDir() + "/reconcile.lock"; }
  // The disk-space reserve (--disk-reserve).
  std::string Reserve() const { return ReservedDir() + "/reserve"; }

  // The run markers' folder of a state database in `state_folder` (the folder holding it).
  static std::string RunningDir(const std::string& state_folder) {
    return state_folder + "/running";
  }

 private:
  std::string root_;
};

}  // namespace ds
