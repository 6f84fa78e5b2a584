// The narrow interface the core uses to talk to an S3-compatible store. One real
// implementation (s3/client.h, libcurl + SigV4) and one fake (tests/fakes).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace ds {

struct ObjectInfo {
  std::string key;
  uint64_t size = 0;
  std::string etag;        // without quotes
  std::string version_id;  // "" when the store sent none
  std::string last_modified;
  // x-amz-meta-* headers (GET/HEAD only), names lower-cased with the prefix kept:
  // {"x-amz-meta-data-subject": "alice"}.
  std::map<std::string, std::string> metadata;
};

struct ObjectId {
  std::string key;
  std::string version_id;  // "" for the current version
};

struct DeleteOutcome {
  ObjectId id;
  bool deleted = false;
  std::string error_code;  // S3 error code when not deleted
  std::string error_message;
};

// Receives the body of a GET in chunks. Returning a non-OK Status aborts the transfer and
// GetObject returns that Status.
using BodySink = std::function<Status(const char* data, size_t size)>;

class ObjectStore {
 public:
  virtual ~ObjectStore() = default;

  // Streams the object (current version when version_id is "") into `sink`. Returns what the
  // response headers said. kNotFound when the key (or version) does not exist; kNotFound with
  // a message naming the bucket when the bucket does not exist.
  virtual Result<ObjectInfo> GetObject(const std::string& bucket, const std::string& key,
                                       const std::string& version_id, const BodySink& sink) = 0;

  virtual Result<ObjectInfo> HeadObject(const std::string& bucket, const std::string& key,
                                        const std::string& version_id) = 0;

  // ListObjectsV2 under `prefix`, following continuation tokens; calls `visit` for each object in
  // the order the store returns them (UTF-8 byte order). `visit` returning false stops early.
  virtual Status ListObjects(const std::string& bucket, const std::string& prefix,
                             const std::function<bool(const ObjectInfo&)>& visit) = 0;

  // DeleteObjects (POST ?delete) in batches of at most 1,000; one outcome per id.
  virtual Result<std::vector<DeleteOutcome>> DeleteObjects(const std::string& bucket,
                                                           const std::vector<ObjectId>& ids) = 0;
};

}  // namespace ds
