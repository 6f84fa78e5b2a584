// The status summary an operator reads: on the service's page (GET /, self-contained HTML with
// an inline SVG chart of the delay histogram), as JSON (GET /status.json) and on a terminal
// (delete-sync status). Rendering only; app/ops_status.h gathers the data.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace ds {

struct StatusSummary {
  std::string generated_at;  // ISO-8601 UTC
  std::string version;
  std::string cache, bucket, prefix;
  bool live = false;  // from the running service (in-memory history and metrics included)
  std::string started_at;

  int64_t downloads_waiting = 0;
  int64_t downloads_failed = 0;
  struct FailedDownload {
    std::string key, error;
    int attempts = 0;
  };
  std::vector<FailedDownload> failed;

  int64_t audit_records = 0;  // length of the chain (seq of the last record)
  std::string audit_error;    // why the audit log could not be read, "" when read
  struct Removal {
    std::string time, bucket, key, cause, outcome, event_id;
  };
  std::vector<Removal> removals;  // newest first
  struct Erasure {
    std::string time, type, request_id, detail;
  };
  std::vector<Erasure> erasures;  // erasure requests and verifications, newest first

  std::map<std::string, int64_t> counts;  // events received, removals by cause, ...
  struct Refusal {
    std::string time, key, reason;
  };
  std::vector<Refusal> refusals;  // newest first

  struct Reconcile {
    std::string started_at;
    int64_t duration_ms = 0;
    bool ok = true;
    std::string error;
    int64_t missing = 0, stale = 0, orphans = 0, removed = 0, queued = 0;
  };
  std::vector<Reconcile> reconciles;  // newest first

  // Delay histograms by action ("remove", "create"): bucket upper bounds in seconds and the
  // per-bucket counts (not cumulative; one more than bounds: +Inf).
  std::vector<double> delay_bounds;
  std::map<std::string, std::vector<int64_t>> delay_counts;
};

std::string RenderStatusHtml(const StatusSummary& s);
std::string RenderStatusText(const StatusSummary& s);
std::string RenderStatusJson(const StatusSummary& s);

// Escapes &, <, >, " and ' for HTML text and attribute values.
std::string HtmlEscape(const std::string& s);

}  // namespace ds
