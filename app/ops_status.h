// Gathers the status summary (transport/status_page.h) from the state store and the audit
// log; the running service adds its in-memory history and metrics (app/ops_service.h).
#pragma once

#include <string>

#include "state/sqlite_state.h"
#include "transport/status_page.h"

namespace ds::app {

// Downloads waiting and failed (the 20 newest failures).
Status FillFromState(SqliteState& state, StatusSummary* out);

// The newest `max_records` removal and erasure records of the audit log at `path` (its last
// 1 MiB is read; rotated files are not) and the chain length. A missing log is not an error
// (nothing recorded yet); an unreadable one sets out->audit_error.
void FillFromAuditLog(const std::string& path, size_t max_records, StatusSummary* out);

}  // namespace ds::app
