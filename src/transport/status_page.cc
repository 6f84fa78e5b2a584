#include "transport/status_page.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>

namespace ds {
namespace {

std::string Num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

std::string BucketLabel(const std::vector<double>& bounds, size_t i) {
  if (i >= bounds.size()) return "+Inf";
  double b = bounds[i];
  return b < 1 ? Num(b * 1000) + "ms" : Num(b) + "s";
}

// An inline SVG bar chart of one histogram (per-bucket counts).
std::string DelayChartSvg(const std::string& action, const std::vector<double>& bounds,
                          const std::vector<int64_t>& counts) {
  const int bar_w = 36, gap = 6, chart_h = 140, top = 20, label_h = 34, left = 10;
  int64_t max = 1;
  for (int64_t c : counts) max = std::max(max, c);
  int width = left * 2 + static_cast<int>(counts.size()) * (bar_w + gap);
  std::ostringstream o;
  o << "<svg class=\"delay-chart\" id=\"delay-chart-" << HtmlEscape(action)
    << "\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\""
    << top + chart_h + label_h << "\" role=\"img\" aria-label=\"delay histogram (" << action
    << ")\">";
  o << "<line x1=\"" << left << "\" y1=\"" << top + chart_h << "\" x2=\"" << width - left
    << "\" y2=\"" << top + chart_h << "\" stroke=\"#444\"/>";
  for (size_t i = 0; i < counts.size(); ++i) {
    int h = static_cast<int>(counts[i] * chart_h / max);
    if (counts[i] > 0 && h < 2) h = 2;
    int x = left + static_cast<int>(i) * (bar_w + gap);
    o << "<rect class=\"bar\" x=\"" << x << "\" y=\"" << top + chart_h - h << "\" width=\"" << bar_w
      << "\" height=\"" << h << "\" fill=\"" << (action == "remove" ? "#c0392b" : "#2e86c1")
      << "\"><title>&le; " << BucketLabel(bounds, i) << ": " << counts[i] << "</title></rect>";
    o << "<text x=\"" << x + bar_w / 2 << "\" y=\"" << top + chart_h - h - 4
      << "\" font-size=\"10\" text-anchor=\"middle\">" << counts[i] << "</text>";
    o << "<text x=\"" << x + bar_w / 2 << "\" y=\"" << top + chart_h + 14
      << "\" font-size=\"10\" text-anchor=\"middle\">" << BucketLabel(bounds, i) << "</text>";
  }
  o << "</svg>";
  return o.str();
}

template <typename Row>
void Table(std::ostringstream& o, const char* id, const std::vector<std::string>& head,
           const std::vector<Row>& rows,
           const std::function<std::vector<std::string>(const Row&)>& cells, const char* empty) {
  if (rows.empty()) {
    o << "<p class=\"empty\" id=\"" << id << "\">" << empty << "</p>\n";
    return;
  }
  o << "<table id=\"" << id << "\"><thead><tr>";
  for (const std::string& h : head) o << "<th>" << HtmlEscape(h) << "</th>";
  o << "</tr></thead><tbody>\n";
  for (const Row& r : rows) {
    o << "<tr>";
    for (const std::string& c : cells(r)) o << "<td>" << HtmlEscape(c) << "</td>";
    o << "</tr>\n";
  }
  o << "</tbody></table>\n";
}

}  // namespace

std::string HtmlEscape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string RenderStatusHtml(const StatusSummary& s) {
  using R = StatusSummary;
  std::ostringstream o;
  o << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
    << "<meta name=\"viewport\" content=\"width=device-width\">"
    << "<title>delete-sync status</title><style>"
    << "body{font-family:sans-serif;margin:1.5em;color:#222;background:#fff}"
    << "h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.5em;border-bottom:1px solid #ccc}"
    << "table{border-collapse:collapse;font-size:.85em}td,th{border:1px solid #ddd;"
    << "padding:3px 8px;text-align:left}th{background:#f3f3f3}"
    << ".tiles{display:flex;gap:1em;flex-wrap:wrap}.tile{border:1px solid #ccc;padding:.5em 1em;"
    << "border-radius:4px}.tile b{display:block;font-size:1.4em}.bad{color:#c0392b}"
    << ".empty{color:#777}</style></head><body>\n";
  o << "<h1>delete-sync</h1>\n<p id=\"about\">cache <code>" << HtmlEscape(s.cache)
    << "</code>, bucket <code>" << HtmlEscape(s.bucket.empty() ? "(any)" : s.bucket)
    << "</code>, version " << HtmlEscape(s.version) << ", page generated "
    << HtmlEscape(s.generated_at);
  if (!s.started_at.empty()) o << ", running since " << HtmlEscape(s.started_at);
  o << "</p>\n<div class=\"tiles\" id=\"tiles\">";
  auto tile = [&](std::string id, const std::string& label, int64_t v, bool bad) {
    for (char& c : id) {
      if (!std::isalnum(static_cast<unsigned char>(c))) c = '-';
    }
    o << "<div class=\"tile\" id=\"" << id << "\"><b" << (bad && v > 0 ? " class=\"bad\"" : "")
      << ">" << v << "</b>" << HtmlEscape(label) << "</div>";
  };
  tile("tile-waiting", "downloads waiting", s.downloads_waiting, false);
  tile("tile-failed", "downloads failed", s.downloads_failed, true);
  tile("tile-audit", "audit records", s.audit_records, false);
  for (const auto& [k, v] : s.counts) tile("tile-" + k, k, v, false);
  o << "</div>\n";

  o << "<h2>Delay from event to durable effect</h2>\n";
  if (s.delay_counts.empty()) {
    o << "<p class=\"empty\" id=\"delay-none\">not available outside the running service</p>\n";
  }
  for (const auto& [action, counts] : s.delay_counts) {
    o << "<h3>" << HtmlEscape(action) << "</h3>" << DelayChartSvg(action, s.delay_bounds, counts)
      << "\n";
  }

  o << "<h2>Recent removals</h2>\n";
  Table<R::Removal>(
      o, "removals", {"time", "key", "cause", "outcome", "event / request"}, s.removals,
      [](const R::Removal& r) {
        return std::vector<std::string>{r.time, "s3://" + r.bucket + "/" + r.key, r.cause,
                                        r.outcome, r.event_id};
      },
      "no removals recorded");
  if (!s.audit_error.empty()) {
    o << "<p class=\"bad\" id=\"audit-error\">audit log: " << HtmlEscape(s.audit_error) << "</p>\n";
  }

  o << "<h2>Erasures</h2>\n";
  Table<R::Erasure>(
      o, "erasures", {"time", "record", "request", "detail"}, s.erasures,
      [](const R::Erasure& e) {
        return std::vector<std::string>{e.time, e.type, e.request_id, e.detail};
      },
      "no erasure requests recorded");

  o << "<h2>Refused keys</h2>\n";
  Table<R::Refusal>(
      o, "refusals", {"time", "key", "reason"}, s.refusals,
      [](const R::Refusal& r) {
        return std::vector<std::string>{r.time, r.key, r.reason};
      },
      "no keys refused since the start");

  o << "<h2>Failed downloads</h2>\n";
  Table<R::FailedDownload>(
      o, "failed", {"key", "attempts", "error"}, s.failed,
      [](const R::FailedDownload& f) {
        return std::vector<std::string>{f.key, std::to_string(f.attempts), f.error};
      },
      "no failed downloads");

  o << "<h2>Reconcile history</h2>\n";
  Table<R::Reconcile>(
      o, "reconciles",
      {"started", "duration", "result", "missing", "stale", "orphans", "removed", "queued"},
      s.reconciles,
      [](const R::Reconcile& r) {
        return std::vector<std::string>{r.started_at,
                                        std::to_string(r.duration_ms) + " ms",
                                        r.ok ? "ok" : "failed: " + r.error,
                                        std::to_string(r.missing),
                                        std::to_string(r.stale),
                                        std::to_string(r.orphans),
                                        std::to_string(r.removed),
                                        std::to_string(r.queued)};
      },
      "no reconcile pass since the start");
  o << "</body></html>\n";
  return o.str();
}

std::string RenderStatusText(const StatusSummary& s) {
  std::ostringstream o;
  o << "cache: " << s.cache << "\n";
  if (!s.bucket.empty()) o << "bucket: " << s.bucket << "\n";
  o << "downloads waiting: " << s.downloads_waiting << "\n"
    << "downloads failed: " << s.downloads_failed << "\n";
  for (const auto& f : s.failed) {
    o << "  " << f.key << " (" << f.attempts << " attempt(s)): " << f.error << "\n";
  }
  o << "audit records: " << s.audit_records << "\n";
  if (!s.audit_error.empty()) o << "audit log: " << s.audit_error << "\n";
  for (const auto& [k, v] : s.counts) o << k << ": " << v << "\n";
  if (!s.delay_counts.empty()) {
    for (const auto& [action, counts] : s.delay_counts) {
      o << "delay (" << action << "):\n";
      int64_t max = 1;
      for (int64_t c : counts) max = std::max(max, c);
      for (size_t i = 0; i < counts.size(); ++i) {
        char label[16];
        std::snprintf(label, sizeof label, "%8s", BucketLabel(s.delay_bounds, i).c_str());
        o << "  <= " << label << " " << std::string(static_cast<size_t>(counts[i] * 40 / max), '#')
          << " " << counts[i] << "\n";
      }
    }
  }
  o << "recent removals:" << (s.removals.empty() ? " none" : "") << "\n";
  for (const auto& r : s.removals) {
    o << "  " << r.time << " " << r.outcome << " s3://" << r.bucket << "/" << r.key << " ("
      << r.cause << ") [" << r.event_id << "]\n";
  }
  o << "erasures:" << (s.erasures.empty() ? " none" : "") << "\n";
  for (const auto& e : s.erasures) {
    o << "  " << e.time << " " << e.type << " " << e.request_id << " " << e.detail << "\n";
  }
  if (s.live) {
    o << "refused keys:" << (s.refusals.empty() ? " none" : "") << "\n";
    for (const auto& r : s.refusals)
      o << "  " << r.time << " " << r.key << " (" << r.reason << ")\n";
    o << "reconcile history:" << (s.reconciles.empty() ? " none" : "") << "\n";
    for (const auto& r : s.reconciles) {
      o << "  " << r.started_at << " " << (r.ok ? "ok" : "failed: " + r.error) << ", "
        << r.duration_ms << " ms, missing " << r.missing << ", stale " << r.stale << ", orphans "
        << r.orphans << ", removed " << r.removed << ", queued " << r.queued << "\n";
    }
  }
  return o.str();
}

std::string RenderStatusJson(const StatusSummary& s) {
  using nlohmann::ordered_json;
  ordered_json j;
  j["generated_at"] = s.generated_at;
  j["version"] = s.version;
  j["cache"] = s.cache;
  j["bucket"] = s.bucket;
  j["live"] = s.live;
  j["downloads_waiting"] = s.downloads_waiting;
  j["downloads_failed"] = s.downloads_failed;
  j["failed"] = ordered_json::array();
  for (const auto& f : s.failed) {
    j["failed"].push_back({{"key", f.key}, {"attempts", f.attempts}, {"error", f.error}});
  }
  j["audit_records"] = s.audit_records;
  if (!s.audit_error.empty()) j["audit_error"] = s.audit_error;
  j["counts"] = s.counts;
  j["removals"] = ordered_json::array();
  for (const auto& r : s.removals) {
    j["removals"].push_back({{"time", r.time},
                             {"bucket", r.bucket},
                             {"key", r.key},
                             {"cause", r.cause},
                             {"outcome", r.outcome},
                             {"event_id", r.event_id}});
  }
  j["erasures"] = ordered_json::array();
  for (const auto& e : s.erasures) {
    j["erasures"].push_back(
        {{"time", e.time}, {"type", e.type}, {"request_id", e.request_id}, {"detail", e.detail}});
  }
  j["refusals"] = ordered_json::array();
  for (const auto& r : s.refusals) {
    j["refusals"].push_back({{"time", r.time}, {"key", r.key}, {"reason", r.reason}});
  }
  j["reconciles"] = ordered_json::array();
  for (const auto& r : s.reconciles) {
    j["reconciles"].push_back({{"started_at", r.started_at},
                               {"duration_ms", r.duration_ms},
                               {"ok", r.ok},
                               {"error", r.error},
                               {"missing", r.missing},
                               {"stale", r.stale},
                               {"orphans", r.orphans},
                               {"removed", r.removed},
                               {"queued", r.queued}});
  }
  j["delay_bounds_seconds"] = s.delay_bounds;
  j["delay_counts"] = s.delay_counts;
  return j.dump(-1, ' ', false, ordered_json::error_handler_t::replace) + "\n";
}

}  // namespace ds
