#include "s3/versioned_adapter.h"

#include <algorithm>

namespace ds {

Result<std::vector<VersionEntry>> S3VersionedStore::ListVersions(const std::string& bucket,
                                                                 const std::string& prefix) {
  Result<std::vector<ObjectVersion>> listed = client_.ListObjectVersions(bucket, prefix);
  if (!listed.ok()) return listed.status();
  std::vector<VersionEntry> out;
  out.reserve(listed->size());
  for (const ObjectVersion& v : *listed) {
    VersionEntry e;
    e.key = v.key;
    e.version_id = v.version_id.empty() ? "null" : v.version_id;
    e.is_delete_marker = v.is_delete_marker;
    e.is_latest = v.is_latest;
    out.push_back(std::move(e));
  }
  return out;
}

Result<std::vector<DeleteOutcome>> S3VersionedStore::DeleteVersions(
    const std::string& bucket, const std::vector<ObjectId>& ids) {
  std::vector<DeleteOutcome> out;
  out.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); i += 1000) {
    std::vector<ObjectId> batch(
        ids.begin() + static_cast<std::ptrdiff_t>(i),
        ids.begin() + static_cast<std::ptrdiff_t>(std::min(ids.size(), i + 1000)));
    Result<std::vector<DeleteOutcome>> r = client_.DeleteObjects(bucket, batch);
    if (!r.ok()) return r.status();
    out.insert(out.end(), r->begin(), r->end());
  }
  return out;
}

}  // namespace ds
