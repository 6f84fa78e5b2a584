// Where the engine reports every removal from a cache, so that it lands in the audit log
// (audit/audit_log.h) before the removal is acknowledged.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace ds {

// One removal of a cached copy.
struct RemovalRecord {
  std::string bucket;
  std::string key;
  std::string version_id;  // of the removed copy when known, else ""
  std::string etag;        // of the removed copy when known, else ""
  int64_t size = -1;       // of the removed copy when known, else -1
  std::string cause;       // "event", "reconcile", "erase", "store-not-found"
  std::string event_id;    // the triggering event's id, or the reconcile/erase request id
  std::string event_name;  // e.g. "ObjectRemoved:Delete"; "" when not from an event
  std::string outcome;     // "removed" (a file was unlinked) or "absent" (nothing to unlink)
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
