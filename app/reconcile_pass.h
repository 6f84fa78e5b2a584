// Running reconcile passes from the CLI and from serve: settings, the pass lock, output.
#pragma once

#include <functional>
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

// One reconcile pass of a cache, the way serve (at start and every --reconcile-every), Lambda
// mode (a scheduled event) and `delete-sync reconcile` all run it: the pass lock taken without
// waiting, then Reconciler::Run with `o` (o.request_id "reconcile-<UTC time>" when empty);
// `started`, when given, is called with the request id once the lock is held, before the pass.
struct PassRun {
  // Not OK: the lock was not taken (kConflict: another pass of this cache is running; kIoError)
  // and no pass ran: `report` is empty and `status` OK.
  Status lock_status;
  // The lock, held until the caller lets it go (serve: after the pass; Lambda and the CLI: after
  // the pass's downloads too).
  std::unique_ptr<PassLock> lock;
  std::string request_id;
  ReconcileReport report;
  Status status;  // the pass's own end
};
PassRun RunReconcilePass(const std::string& cache_root, Reconciler& reconciler, ReconcileOptions o,
                         const std::function<void(const std::string&)>& started = {});

// The JSON report of one pass.
std::string ReportJson(const ReconcileOptions& o, const ReconcileReport& r, const Status& s,
                       const EngineCounters& c);

}  // namespace ds::app
