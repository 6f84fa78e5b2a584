// Readiness (/readyz): the state store answers, the cache folder is writable, the object
// store lists the bucket within a timeout. Each check is named in the JSON answer.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "core/cache_fs.h"
#include "core/state_store.h"
#include "s3/client.h"

namespace ds::app {

struct CheckResult {
  std::string name;  // "state", "cache", "s3", "shutdown"
  bool ok = false;
  std::string detail;
  int64_t ms = 0;  // how long the check took
};

struct ReadyReport {
  bool ready = false;
  std::vector<CheckResult> checks;
  // {"ready":true,"checks":[{"name":"state","ok":true,"ms":1,"detail":"..."},...]}
  std::string ToJson() const;
};

class ReadinessChecker {
 public:
  // `probe` should be a client with short timeouts and one attempt (MakeProbeClient); null:
  // the s3 check fails ("object store not configured"). The s3 check is
  // S3Client::CheckBucket(bucket, prefix), one ListObjectsV2 with max-keys=1: ready only when
  // the store answers 200. A missing bucket (404 NoSuchBucket), refused credentials (401/403),
  // a network error or a timeout is not ready, with the cause in the check's detail (never a
  // secret).
  ReadinessChecker(StateStore& state, std::string cache_root, std::unique_ptr<S3Client> probe,
                   std::string bucket, std::string prefix);

  ReadyReport Check(bool stopping) const;

  // Adds the "disk" check: ready only while the cache's disk-space reserve of `reserve` bytes
  // is in place and a quarter of it is free besides (0: no reserve, no check). A released
  // reserve means the file system filled up.
  void set_disk(CacheFs* cache, uint64_t reserve) {
    disk_cache_ = cache;
    reserve_ = reserve;
  }

 private:
  CacheFs* disk_cache_ = nullptr;
  uint64_t reserve_ = 0;
  StateStore& state_;
  std::string cache_root_;
  std::unique_ptr<S3Client> probe_;
  std::string bucket_, prefix_;
};

// A client for readiness probes with the configuration of `store`: one attempt, `timeout` to
// connect and as the deadline of the whole request. Null when `store` is null.
std::unique_ptr<S3Client> MakeProbeClient(const S3Client* store, std::chrono::milliseconds timeout);

}  // namespace ds::app
