// Running reconcile passes from the CLI and from serve: settings, the pass lock, output.
#pragma once

#include <memory>
#include <string>

#include "config.h"
#include "core/reconcile.h"
#include "fs/posix.h"
#include "runtime.h"

namespace ds::app {

struct ReconcileSettings {
  std::string max_delete, concurrency;
  void Register(Settings& s);
  // Fills the limits of `o` from the settings.
  Status Apply(ReconcileOptions* o) const;
};

// "90s", "10m", "1h", "1d", "500ms", or "0"/"off" (returns 0).
Result<int64_t> ParseDurationMs(const std::string& setting, const std::string& value);

// An exclusive lock on <cache>/.delete-sync/reconcile.lock so that passes never overlap, in
// one process or across processes (and hosts: an flock, posix::FileLock). Held until destroyed.
class PassLock {
 public:
  // kConflict "another reconcile pass of this cache is running (<path>)" when another pass
  // holds it; kIoError when the lock file cannot be opened or locked.
  static Result<std::unique_ptr<PassLock>> TryAcquire(const std::string& cache_root);

 private:
  explicit PassLock(posix::FileLock lock) : lock_(std::move(lock)) {}
  posix::FileLock lock_;
};

// The JSON report of one pass.
std::string ReportJson(const ReconcileOptions& o, const ReconcileReport& r, const Status& s,
                       const EngineCounters& c);

}  // namespace ds::app
