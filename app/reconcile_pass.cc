#include "reconcile_pass.h"

#include <nlohmann/json.hpp>
#include <utility>

#include "common/clock.h"
#include "core/cache_layout.h"

namespace ds::app {

void ReconcileSettings::Register(Settings& s) {
  s.Add("max-delete", &max_delete,
        "refuse to remove anything when a pass would remove more files than this: a number, "
        "a percentage of the cached files ('50%': passes removing 100 files or fewer are never "
        "refused), or 'unlimited'",
        "50%");
  s.Add("concurrency", &concurrency, "parallel removals and downloads of a reconcile pass", "4");
}

Status ReconcileSettings::Apply(ReconcileOptions* o) const {
  o->max_delete = -1;
  o->max_delete_percent = -1;
  if (max_delete == "unlimited" || max_delete == "none" || max_delete == "-1") {
    // no limit
  } else if (!max_delete.empty() && max_delete.back() == '%') {
    Result<int64_t> p = ParseInt("max-delete", max_delete.substr(0, max_delete.size() - 1), 0, 100);
    if (!p.ok()) {
      return Status::Invalid(
          "--max-delete must be a whole number, a percentage from 0% to 100% "
          "or 'unlimited', not '" +
          max_delete + "'");
    }
    o->max_delete_percent = static_cast<int>(*p);
  } else {
    Result<int64_t> n = ParseInt("max-delete", max_delete, 0, INT64_MAX);
    if (!n.ok()) {
      return Status::Invalid(
          "--max-delete must be a whole number, a percentage (e.g. 50%) or "
          "'unlimited', not '" +
          max_delete + "'");
    }
    o->max_delete = *n;
  }
  Result<int64_t> c = ParseInt("concurrency", concurrency, 1, 256);
  if (!c.ok()) return c.status();
  o->concurrency = static_cast<int>(*c);
  return Status::Ok();
}

Result<int64_t> ParseDurationMs(const std::string& setting, const std::string& value) {
  if (value.empty() || value == "0" || value == "off") return int64_t{0};
  size_t i = 0;
  int64_t n = 0;
  while (i < value.size() && value[i] >= '0' && value[i] <= '9' && n < (int64_t{1} << 40)) {
    n = n * 10 + (value[i] - '0');
    ++i;
  }
  std::string unit = value.substr(i);
  int64_t mult = 0;
  if (unit == "ms") mult = 1;
  if (unit == "s") mult = 1000;
  if (unit == "m") mult = 60 * 1000;
  if (unit == "h") mult = 3600 * 1000;
  if (unit == "d") mult = 24 * 3600 * 1000;
  if (i == 0 || mult == 0 || n <= 0) {
    return Status::Invalid("--" + setting +
                           " must be a duration such as 90s, 10m, 1h or off, not '" + value + "'");
  }
  return n * mult;
}

Result<std::unique_ptr<PassLock>> PassLock::TryAcquire(const std::string& cache_root) {
  std::string path = CacheLayout(cache_root).ReconcileLock();
  Result<posix::FileLock> lock = posix::FileLock::Open(path);
  if (!lock.ok()) return lock.status();
  Status locked = lock->TryLock(posix::FileLock::Kind::kExclusive);
  if (locked.code() == Code::kConflict) {
    return Status::Conflict("another reconcile pass of this cache is running (" + path + ")");
  }
  if (!locked.ok()) return locked;
  return std::unique_ptr<PassLock>(new PassLock(std::move(lock).value()));
}

PassRun RunReconcilePass(const std::string& cache_root, Reconciler& reconciler, ReconcileOptions o,
                         const std::function<void(const std::string&)>& started) {
  PassRun run;
  Result<std::unique_ptr<PassLock>> lock = PassLock::TryAcquire(cache_root);
  if (!lock.ok()) {
    run.lock_status = lock.status();
    return run;
  }
  run.lock = std::move(lock).value();
  if (o.request_id.empty())
    o.request_id = "reconcile-" + FormatUtcMillis(SystemClock().NowMillis());
  run.request_id = o.request_id;
  if (started) started(run.request_id);
  run.status = reconciler.Run(o, &run.report);
  return run;
}

std::string ReportJson(const ReconcileOptions& o, const ReconcileReport& r, const Status& s,
                       const EngineCounters& c) {
  nlohmann::json j = {
      {"bucket", o.bucket},
      {"prefix", o.prefix},
      {"dry_run", o.dry_run},
      {"delete_only", o.delete_only},
      {"max_delete", o.max_delete_percent >= 0
                         ? nlohmann::json(std::to_string(o.max_delete_percent) + "%")
                         : nlohmann::json(o.max_delete)},
      {"ok", s.ok()},
      {"compared", r.compared},
      {"bucket_objects", r.bucket_objects},
      {"cache_files", r.cache_files},
      {"matching", r.matching},
      {"missing", r.missing},
      {"stale", r.stale},
      {"unverified", r.unverified},
      {"orphans", r.orphans},
      {"untracked_orphans", r.untracked_orphans},
      {"refused", r.refused},
      {"removed", r.removed},
      {"skipped_changed", r.skipped_changed},
      {"queued", r.queued},
      {"downloaded", c.published.load()},
      {"download_failed", c.fetch_failed.load()},
      {"state_rows_collected", c.state_rows_collected.load()},
      {"max_delete_refused", r.max_delete_refused},
      {"removed_keys", r.removed_keys},
      {"orphan_keys", r.orphan_keys},
      {"duration_ms", r.duration_ms},
  };
  if (!s.ok()) j["error"] = s.message();
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace ds::app
