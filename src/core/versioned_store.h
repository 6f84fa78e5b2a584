// What erasure needs from a versioned store beyond ObjectStore: every version and delete marker
// of a key, and deleting specific versions. Implemented over S3Client by
// s3/versioned_adapter.h; faked in tests/unit/erase_test.cc.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "core/object_store.h"

namespace ds {

// One version of an object, or a delete marker.
struct VersionEntry {
  std::string key;
  std::string version_id;  // "null" for an object written while versioning was off
  bool is_delete_marker = false;
  bool is_latest = false;
};

class VersionedStore {
 public:
  virtual ~VersionedStore() = default;
  // Every version and delete marker whose key starts with `prefix` (a plain byte prefix), all
  // pages. An error when the store cannot be asked (unreachable, no such bucket, denied).
  virtual Result<std::vector<VersionEntry>> ListVersions(const std::string& bucket,
                                                         const std::string& prefix) = 0;
  // Deletes the given versions (DeleteObjects, in batches of at most 1,000); one outcome per
  // id, in order. Deleting a version that is already gone counts as deleted, as in S3.
  virtual Result<std::vector<DeleteOutcome>> DeleteVersions(const std::string& bucket,
                                                            const std::vector<ObjectId>& ids) = 0;
};

}  // namespace ds
