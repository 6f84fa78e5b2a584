// Erasure (delete-sync erase): removes every version of some keys from the bucket and every
// copy from the cache, verifies both, names the processes still holding a removed file open,
// and builds the receipt. Written against interfaces only (core: no files, no sockets); the
// app wires the S3 adapter, the POSIX cache, the /proc scan and the audit log in.
// What a receipt proves and what it does not: docs/ERASURE.md.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "core/cache_fs.h"
#include "core/engine.h"
#include "core/key_path.h"
#include "core/object_store.h"
#include "core/state_store.h"
#include "core/versioned_store.h"

namespace ds {

// What was asked. Exactly one of keys / prefix / subject is set.
struct EraseRequest {
  std::string request_id;  // [A-Za-z0-9._-], 1..128 bytes, not starting with '.'
  std::string bucket;
  std::vector<std::string> keys;
  std::optional<std::string> prefix;
  std::optional<std::string> subject;
  bool scan = false;  // --subject: also list the bucket and read each object's metadata
};

// The request part of a receipt: {"request_id", "bucket", "keys"|"prefix"|"subject", "scan"}.
nlohmann::json EraseRequestToJson(const EraseRequest& r);
// The inverse; kInvalidArgument naming the problem (also checks what ValidateEraseRequest does).
Result<EraseRequest> EraseRequestFromJson(const nlohmann::json& j);
// Usage checks: bucket set, exactly one selector, keys non-empty, a valid request id.
Status ValidateEraseRequest(const EraseRequest& r);
bool ValidRequestId(const std::string& id);

// A process holding a file under the cache open (from /proc/<pid>/fd).
struct OpenHolder {
  int64_t pid = 0;
  std::string command;   // /proc/<pid>/comm
  std::string path;      // absolute path the descriptor points at, " (deleted)" stripped
  bool deleted = false;  // the link said " (deleted)": the file was unlinked
  int fd = -1;
};

// Where an audit record sits in the chain (audit/audit_log.h AuditPosition).
struct AuditRef {
  int64_t seq = 0;
  std::string hash;
};

struct EraseDeps {
  VersionedStore* versions = nullptr;  // required
  ObjectStore* store = nullptr;        // required: HEAD for verification, listing for --scan
  CacheFs* cache = nullptr;
  StateStore* state = nullptr;
  Engine* engine = nullptr;  // cache removals go through it (cause "erase")
  Clock* clock = nullptr;
  KeyPathLimits limits;
  std::string cache_root;  // absolute, as the holder scan reports paths
  std::string subject_field = "x-amz-meta-data-subject";
  // Appends one audit record; null when there is no audit log.
  std::function<Result<AuditRef>(const std::string& type, const nlohmann::json& fields)> audit;
  // Every open descriptor pointing under the cache root; null skips the check. `complete`
  // false when some processes could not be inspected (other users' processes without root).
  std::function<Status(std::vector<OpenHolder>* holders, bool* complete)> scan_holders;
};

struct EraseOutcome {
  nlohmann::json receipt;
  bool verified = false;       // every version gone from the bucket, every copy from the cache
  bool data_released = false;  // and no process still holds a removed file open
  bool ok() const { return verified && data_released; }
};

// Runs one erasure. An error only when nothing was done (the request record could not be
// written to the audit log); everything later is reported in the receipt.
Result<EraseOutcome> RunErase(const EraseRequest& req, const EraseDeps& deps);

}  // namespace ds
