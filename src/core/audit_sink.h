// Where the engine reports every removal from a cache, so that it lands in the audit log
// (audit/audit_log.h) before the removal is acknowledged.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace ds {

// Why a cached copy was removed. Written into the audit log, the removal metric's label and the
// status page by its name (RemovalCauseName), which docs/AUDIT_FORMAT.md lists.
enum class RemovalCause {
  kEvent,          // a removal event (ObjectRemoved:*, a delete marker, a version delete)
  kReconcile,      // a reconcile pass found the key gone from the bucket
  kErase,          // an erasure request
  kStoreNotFound,  // a download found the object gone (404)
};

// "event", "reconcile", "erase", "store-not-found".
constexpr std::string_view RemovalCauseName(RemovalCause c) {
  switch (c) {
    case RemovalCause::kEvent:
      return "event";
    case RemovalCause::kReconcile:
      return "reconcile";
    case RemovalCause::kErase:
      return "erase";
    case RemovalCause::kStoreNotFound:
      return "store-not-found";
  }
  return "unknown";
}
inline constexpr RemovalCause kAllRemovalCauses[] = {RemovalCause::kEvent, RemovalCause::kReconcile,
                                                     RemovalCause::kErase,
                                                     RemovalCause::kStoreNotFound};

// What became of the copy. A record with kFailed follows one of the same key that said
// kRemoved, and voids it: the unlink failed after the record was made durable.
enum class RemovalOutcome { kRemoved, kAbsent, kFailed };

// "removed", "absent", "failed".
constexpr std::string_view RemovalOutcomeName(RemovalOutcome o) {
  switch (o) {
    case RemovalOutcome::kRemoved:
      return "removed";
    case RemovalOutcome::kAbsent:
      return "absent";
    case RemovalOutcome::kFailed:
      return "failed";
  }
  return "unknown";
}

// One removal of a cached copy.
struct RemovalRecord {
  std::string bucket;
  std::string key;
  std::string version_id;  // of the removed copy when known, else ""
  std::string etag;        // of the removed copy when known, else ""
  int64_t size = -1;       // of the removed copy when known, else -1
  RemovalCause cause = RemovalCause::kEvent;
  std::string event_id;    // the triggering event's id, or the reconcile/erase request id
  std::string event_name;  // e.g. "ObjectRemoved:Delete"; "" when not from an event
  // kRemoved (a file was unlinked), kAbsent (nothing to unlink) or kFailed (see above).
  RemovalOutcome outcome = RemovalOutcome::kRemoved;
};

class AuditSink {
 public:
  virtual ~AuditSink() = default;
  // Appends the record durably (written and fsynced) before returning OK. An error means
  // the removal must not be acknowledged.
  virtual Status RecordRemoval(const RemovalRecord& r) = 0;
  // Appends the records in order, all durable before returning OK (a group commit: sinks
  // that can should make them durable together). An error means none of the removals may be
  // acknowledged (some records may have been written).
  virtual Status RecordRemovals(const std::vector<RemovalRecord>& records) {
    for (const RemovalRecord& r : records) {
      Status s = RecordRemoval(r);
      if (!s.ok()) return s;
    }
    return Status::Ok();
  }
};

}  // namespace ds
