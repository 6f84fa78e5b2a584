// Readiness (/readyz): the state store answers, the cache folder is writable, the object
// store answers within a timeout. Each check is named in the JSON answer.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "core/object_store.h"
#include "core/state_store.h"

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
  // `probe_store` should be a client with short timeouts and one attempt (MakeProbeClient);
  // null: the s3 check fails ("not configured"). `probe_key` is HEADed in `bucket`: a 404
  // counts as reachable (the store answered and the credentials were accepted).
  ReadinessChecker(StateStore& state, std::string cache_root, std::unique_ptr<ObjectStore> probe,
                   std::string bucket, std::string probe_key);

  ReadyReport Check(bool stopping) const;

 private:
  StateStore& state_;
  std::string cache_root_;
  std::unique_ptr<ObjectStore> probe_;
  std::string bucket_, probe_key_;
};

// An S3 client from the environment for readiness probes: one attempt, `timeout` to connect
// and as the longest stall. Null when the environment has no S3 configuration.
std::unique_ptr<ObjectStore> MakeProbeClient(std::chrono::milliseconds timeout);

}  // namespace ds::app
