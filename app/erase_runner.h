// One erasure from a Runtime: shared by `delete-sync erase` and serve's POST /erase.
#pragma once

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

}  // namespace ds::app
