// The Engine's removal paths (engine.h): the audit record before every unlink
// (RecordThenRemove), the retry of a removal on a full disk (TransactRemoval), and the removals
// of reconcile (RemoveOrphan) and erase (RemoveForErasure). Event removals are staged in
// engine.cc, the store's "not found" in engine_jobs.cc; both use these.
#include <spdlog/spdlog.h>

#include "common/crash_point.h"
#include "core/engine.h"
#include "core/engine_internal.h"

namespace ds {

RemovalRecord Engine::MakeRecord(const std::string& bucket, const std::string& key,
                                 const KeyState& before, bool removed, RemovalCause cause,
                                 const std::string& event_id, const std::string& event_name) {
  RemovalRecord rec;
  rec.bucket = bucket;
  rec.key = key;
  rec.version_id = before.version_id;
  rec.etag = before.etag;
  rec.size = before.size;
  rec.cause = cause;
  rec.event_id = event_id;
  rec.event_name = event_name;
  rec.outcome = removed ? RemovalOutcome::kRemoved : RemovalOutcome::kAbsent;
  return rec;
}

Status Engine::Audit(const std::string& bucket, const std::string& key, const KeyState& before,
                     bool removed, RemovalCause cause, const std::string& event_id,
                     const std::string& event_name) {
  if (audit_ == nullptr) return Status::Ok();
  Status s =
      audit_->RecordRemoval(MakeRecord(bucket, key, before, removed, cause, event_id, event_name));
  if (!s.ok()) return Status(s.code(), "audit log: " + s.message());
  return s;
}

Status Engine::TransactRemoval(const std::function<Status(StateTxn&)>& fn) {
  Status s = state_.Transact(fn);
  if (s.ok() || s.code() != Code::kIoError) return s;
  Result<bool> released = cache_.ReleaseReserve();
  if (!released.ok() || !*released) return s;
  spdlog::warn(
      "a removal failed ({}); released the cache's disk-space reserve and trying again: the "
      "cache's file system is probably full",
      s.ToString());
  return state_.Transact(fn);
}

Result<bool> Engine::CopyPresent(const std::string& bucket, const std::string& key,
                                 const Result<CacheEntryInfo>& info) {
  if (!info.ok() && info.status().code() == Code::kConflict) {
    // A path crossing a symbolic link or a file where a folder should be: no copy of this key,
    // and nothing else may be touched.
    spdlog::warn("removal of {}: {}; nothing removed", engine_internal::Where(bucket, key),
                 info.status().message());
    return false;
  }
  if (!info.ok()) return info.status();
  if (info->exists && info->is_dir) {
    // Other keys live under this path: there is no copy of this key to remove.
    spdlog::warn("removal of {}: the path is a folder (other keys live under it); nothing removed",
                 engine_internal::Where(bucket, key));
    return false;
  }
  return info->exists;
}

Result<bool> Engine::RecordThenRemove(const std::string& bucket, const std::string& key,
                                      const KeyState& before, RemovalCause cause,
                                      const std::string& event_id, const std::string& event_name,
                                      bool record_absent) {
  Result<bool> present = CopyPresent(bucket, key, cache_.Stat(key));
  if (!present.ok()) return present.status();
  if (*present || record_absent) {
    DS_RETURN_IF_ERROR(Audit(bucket, key, before, *present, cause, event_id, event_name));
  }
  if (!*present) return false;
  CrashPoint("removal-recorded");
  Result<bool> r = cache_.Remove(key);
  if (!r.ok()) {
    // The record names a copy that is still there: void it.
    if (audit_ != nullptr) {
      RemovalRecord v = MakeRecord(bucket, key, before, true, cause, event_id, event_name);
      v.outcome = RemovalOutcome::kFailed;
      Status vs = audit_->RecordRemoval(v);
      if (!vs.ok()) {
        spdlog::error("audit log: cannot record the failed removal of {}: {}",
                      engine_internal::Where(bucket, key), vs.ToString());
      }
    }
    return r.status();
  }
  return true;  // (false: it vanished meanwhile, which is as good)
}

Result<OrphanOutcome> Engine::RemoveOrphan(const std::string& bucket, const std::string& key,
                                           int64_t pass_started_ms, const std::string& request_id) {
  OrphanOutcome outcome = OrphanOutcome::kAbsent;
  Status s = TransactRemoval([&](StateTxn& txn) -> Status {
    Result<KeyState> got = txn.Get(bucket, key);
    if (!got.ok()) return got.status();
    KeyState st = *got;
    if (st.updated_ms >= pass_started_ms) {
      outcome = OrphanOutcome::kChanged;
      return Status::Ok();
    }
    // The state first: an error of the state database unlinks nothing.
    KeyState next = st;
    engine_internal::MarkRemoved(next, clock_.NowMillis());
    DS_RETURN_IF_ERROR(txn.Put(bucket, key, next));
    DS_RETURN_IF_ERROR(txn.ClearFailed(bucket, key));
    Result<bool> removed =
        RecordThenRemove(bucket, key, st, RemovalCause::kReconcile, request_id, "",
                         /*record_absent=*/false);
    if (!removed.ok()) return removed.status();
    if (*removed) DS_RETURN_IF_ERROR(txn.RequeueShadowed(bucket, key, clock_.NowMillis()));
    outcome = *removed ? OrphanOutcome::kRemoved : OrphanOutcome::kAbsent;
    return Status::Ok();
  });
  if (!s.ok()) {
    counters_.failed++;
    spdlog::error("reconcile: removal of orphan {} failed: {}", engine_internal::Where(bucket, key),
                  s.ToString());
    return s;
  }
  if (outcome == OrphanOutcome::kRemoved) {
    counters_.removed++;
    Removed(bucket, key, RemovalCause::kReconcile);
    spdlog::info("removed {} (reconcile: not in the bucket) [{}]",
                 engine_internal::Where(bucket, key), request_id);
  } else if (outcome == OrphanOutcome::kChanged) {
    spdlog::info("reconcile: {} changed during the pass; left alone",
                 engine_internal::Where(bucket, key));
  }
  return outcome;
}

Result<bool> Engine::RemoveForErasure(const std::string& bucket, const std::string& key,
                                      const std::string& request_id) {
  bool removed = false;
  Status s = TransactRemoval([&](StateTxn& txn) -> Status {
    Result<KeyState> got = txn.Get(bucket, key);
    if (!got.ok()) return got.status();
    KeyState st = *got;
    // A folder (other keys live under it) or a path crossing a symbolic link holds no copy of
    // this key, and nothing else may be touched: recorded as absent.
    KeyState next = st;
    engine_internal::MarkRemoved(next, clock_.NowMillis());
    DS_RETURN_IF_ERROR(txn.Put(bucket, key, next));
    DS_RETURN_IF_ERROR(txn.ClearFailed(bucket, key));
    Result<bool> r = RecordThenRemove(bucket, key, st, RemovalCause::kErase, request_id, "",
                                      /*record_absent=*/true);
    if (!r.ok()) return r.status();
    removed = *r;
    if (removed) DS_RETURN_IF_ERROR(txn.RequeueShadowed(bucket, key, clock_.NowMillis()));
    return Status::Ok();
  });
  if (!s.ok()) {
    counters_.failed++;
    spdlog::error("erase: removal of {} failed: {} [{}]", engine_internal::Where(bucket, key),
                  s.ToString(), request_id);
    return s;
  }
  if (removed) {
    counters_.removed++;
    Removed(bucket, key, RemovalCause::kErase);
    spdlog::info("removed {} (erase) [{}]", engine_internal::Where(bucket, key), request_id);
  } else {
    counters_.absent++;
  }
  return removed;
}

}  // namespace ds
