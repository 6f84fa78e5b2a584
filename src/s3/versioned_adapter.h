// VersionedStore over S3Client (ListObjectVersions, DeleteObjects with versionId).
#pragma once

#include "core/versioned_store.h"
#include "s3/client.h"

namespace ds {

class S3VersionedStore : public VersionedStore {
 public:
  explicit S3VersionedStore(S3Client& client) : client_(client) {}
  Result<std::vector<VersionEntry>> ListVersions(const std::string& bucket,
                                                 const std::string& prefix) override;
  Result<std::vector<DeleteOutcome>> DeleteVersions(const std::string& bucket,
                                                    const std::vector<ObjectId>& ids) override;

 private:
  S3Client& client_;
};

}  // namespace ds
