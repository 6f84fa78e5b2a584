// One erasure from a Runtime: shared by `delete-sync erase`, serve's POST /erase and Lambda's
// {"erase": ...} invocations.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "core/erase.h"
#include "runtime.h"

namespace ds::app {

struct ErasureResult {
  std::string receipt_line;  // the receipt as one JSON line
  std::string receipt_path;  // where it was kept
  Status receipt_saved;      // non-OK when it could not be kept
  bool ok = false;           // verified gone and no process holds a removed file open
};

// "erase-<utc time>-<random>"
std::string NewRequestId(int64_t now_ms);

// Runs the erasure and keeps its receipt in `receipts_dir`. An error only when nothing was
// done (see RunErase).
Result<ErasureResult> ExecuteErase(Runtime& rt, const std::string& cache_root,
                                   const std::string& receipts_dir, const EraseRequest& req);

// What an erasure request sent to a running service came to.
enum class EraseEnd {
  kInvalid,         // the request is not valid: nothing done (`message` says why)
  kFailed,          // the erasure could not start: nothing done (`message`)
  kReceiptNotKept,  // done, but its receipt could not be kept (`message`, `receipt_line`)
  kIncomplete,      // done, not verified complete (`receipt_line` says what is left)
  kDone,            // verified complete, receipt kept (`receipt_line`)
};
struct EraseReply {
  EraseEnd end = EraseEnd::kFailed;
  std::string message;
  std::string receipt_line;
};

// An erasure request to a service (serve's POST /erase, Lambda's {"erase": ...}): `request` is
// the JSON object EraseRequestFromJson reads. `bucket`, when not empty, is the bucket the
// service mirrors: the request's default, and the only one it may name (`service` names the
// service in that error: "this service", "this function"). The request id defaults to a new
// one; the receipt is kept in <cache>/.delete-sync/receipts. One erasure at a time in a
// process, so that receipts and audit records of concurrent requests never interleave.
EraseReply HandleEraseRequest(Runtime& rt, const std::string& cache_root, const std::string& bucket,
                              const std::string& service, nlohmann::json request);

}  // namespace ds::app
