#include "core/ops_metrics.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <ctime>

#include "common/version.h"

namespace ds {
namespace {

constexpr size_t kHistory = 50;
constexpr size_t kMaxPendingCreations = 100000;

}  // namespace

std::optional<int64_t> ParseEventTimeMillis(const std::string& s) {
  // YYYY-MM-DDTHH:MM:SS[.fff...](Z|+00:00)
  if (s.size() < 20) return std::nullopt;
  auto digits = [&](size_t pos, size_t n) -> std::optional<int> {
    int v = 0;
    for (size_t i = pos; i < pos + n; ++i) {
      if (i >= s.size() || !std::isdigit(static_cast<unsigned char>(s[i]))) return std::nullopt;
      v = v * 10 + (s[i] - '0');
    }
    return v;
  };
  auto year = digits(0, 4), mon = digits(5, 2), day = digits(8, 2), hour = digits(11, 2),
       min = digits(14, 2), sec = digits(17, 2);
  if (!year || !mon || !day || !hour || !min || !sec || s[4] != '-' || s[7] != '-' ||
      (s[10] != 'T' && s[10] != ' ') || s[13] != ':' || s[16] != ':') {
    return std::nullopt;
  }
  if (*mon < 1 || *mon > 12 || *day < 1 || *day > 31 || *hour > 23 || *min > 59 || *sec > 60) {
    return std::nullopt;
  }
  size_t i = 19;
  int64_t ms = 0;
  if (i < s.size() && s[i] == '.') {
    ++i;
    int scale = 100, n = 0;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
      ms += (s[i] - '0') * scale;
      scale /= 10;
      ++i;
      ++n;
    }
    if (n == 0) return std::nullopt;
  }
  std::string zone = s.substr(i);
  if (zone != "Z" && zone != "+00:00" && zone != "+0000") return std::nullopt;
  std::tm tm{};
  tm.tm_year = *year - 1900;
  tm.tm_mon = *mon - 1;
  tm.tm_mday = *day;
  tm.tm_hour = *hour;
  tm.tm_min = *min;
  tm.tm_sec = *sec;
  time_t t = timegm(&tm);
  return static_cast<int64_t>(t) * 1000 + ms;
}

const std::vector<double>& DelayBuckets() {
  static const std::vector<double> kBuckets = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                               2.5,  5,     10,   30,  60,   300, 900};
  return kBuckets;
}

OpsMetrics::OpsMetrics(Clock& clock, EventLogger log)
    : clock_(clock),
      log_(std::move(log)),
      received_(registry_.AddCounter("delete_sync_events_received_total",
                                     "Notification events received, by source and event type",
                                     {"source", "type"})),
      applied_(registry_.AddCounter(
          "delete_sync_events_applied_total",
          "Events whose effect is durable: removed (a copy unlinked), absent (nothing to "
          "remove), queued (creation journaled)",
          {"outcome"})),
      ignored_(registry_.AddCounter(
          "delete_sync_events_ignored_total",
          "Events acknowledged without effect: ignored type, out-of-scope, stale, other-version",
          {"reason"})),
      failed_(registry_.AddCounter("delete_sync_events_failed_total",
                                   "Events that could not be applied (the sender must retry)",
                                   {"action"})),
      refused_(registry_.AddCounter("delete_sync_refused_keys_total",
                                    "Keys refused because they cannot be cache paths, by reason",
                                    {"reason"})),
      delay_(registry_.AddHistogram(
          "delete_sync_event_delay_seconds",
          "Seconds from the event's eventTime to its effect being durable (remove: the copy "
          "unlinked and recorded; create: the download published)",
          DelayBuckets(), {"action"})),
      removals_(registry_.AddCounter(
          "delete_sync_removals_total",
          "Cached copies unlinked, by cause (event, reconcile, erase, store-not-found)",
          {"cause"})),
      downloads_(registry_.AddCounter(
          "delete_sync_downloads_total",
          "Download jobs run, by outcome (published, discarded, gone, retry, failed)",
          {"outcome"})),
      reconcile_runs_(registry_.AddCounter("delete_sync_reconcile_runs_total",
                                           "Reconcile passes run by the service, by result",
                                           {"result"})),
      reconcile_keys_(registry_.AddCounter("delete_sync_reconcile_keys_total",
                                           "Keys found by reconcile passes: missing, stale, "
                                           "unverified, orphans, removed, queued, refused",
                                           {"kind"})),
      reconcile_last_(
          registry_.AddGauge("delete_sync_reconcile_last_success_timestamp_seconds",
                             "Unix time of the end of the last successful reconcile pass")),
      state_collected_(registry_.AddCounter(
          "delete_sync_state_rows_collected_total",
          "State rows of keys without a copy deleted by state collection (older than the "
          "state horizon)",
          {})),
      horizon_checks_(registry_.AddCounter(
          "delete_sync_horizon_checks_total",
          "Downloads of events older than the state horizon checked against the bucket before "
          "publication, by result (current: published; gone, changed: not published; failed: "
          "retried)",
          {"result"})),
      sns_messages_(registry_.AddCounter(
          "delete_sync_sns_messages_total",
          "SNS envelopes received on the webhook, by SNS type and outcome (unverified, verified, "
          "confirmed, unsubscribed, refused, malformed, retry)",
          {"type", "outcome"})),
      sns_refused_(registry_.AddCounter(
          "delete_sync_sns_refused_total",
          "SNS envelopes refused on the webhook (403, nothing changed), by reason (unsigned, "
          "bad-signature, foreign-topic, ...)",
          {"reason"})) {
  // Children that should read 0 before anything happened (so that rate() and alerts work).
  for (const char* o : {"removed", "absent", "queued"}) applied_.With({o});
  for (const char* a : {"remove", "create"}) {
    failed_.With({a});
    delay_.With({a});
  }
  for (RemovalCause c : kAllRemovalCauses) removals_.With({std::string(RemovalCauseName(c))});
  for (const char* o : {"published", "discarded", "gone", "retry", "failed"}) downloads_.With({o});
  for (const char* r : {"ok", "failed"}) reconcile_runs_.With({r});
  state_collected_.With({});
  for (const char* r : {"current", "gone", "changed", "failed"}) horizon_checks_.With({r});
  for (size_t r = 0; r < kSnsRefusalCount; ++r) {
    sns_refused_.With({SnsRefusalName(static_cast<SnsRefusal>(r))});
  }
  auto& build = registry_.AddGauge("delete_sync_build_info", "The running version", {"version"});
  build.With({Version()}).Set(1);
  auto& start = registry_.AddGauge("delete_sync_start_time_seconds", "Unix time of the start");
  start.With({}).Set(static_cast<double>(clock_.NowMillis()) / 1000.0);
}

void OpsMetrics::ObserveDelay(const std::string& action, int64_t event_ms) {
  double seconds = std::max<int64_t>(0, clock_.NowMillis() - event_ms) / 1000.0;
  delay_.With({action}).Observe(seconds);
}

void OpsMetrics::OnEvent(const Event& ev, const ApplyResult& r) {
  received_.With({ev.source.empty() ? "unknown" : ev.source, ev.name}).Inc();
  std::optional<int64_t> event_ms = ParseEventTimeMillis(ev.event_time);
  const std::string action = ActionName(ev.action);
  std::optional<double> delay;
  int level = spdlog::level::info;
  switch (r.outcome) {
    case Outcome::kRemoved:
    case Outcome::kAbsent:
      applied_.With({OutcomeName(r.outcome)}).Inc();
      if (event_ms) {
        ObserveDelay("remove", *event_ms);
        delay = std::max<int64_t>(0, clock_.NowMillis() - *event_ms) / 1000.0;
      }
      break;
    case Outcome::kQueued:
    case Outcome::kPublished:
      applied_.With({"queued"}).Inc();
      if (event_ms) {
        delay = std::max<int64_t>(0, clock_.NowMillis() - *event_ms) / 1000.0;
        std::lock_guard<std::mutex> l(mu_);
        if (pending_creations_.size() < kMaxPendingCreations) {
          pending_creations_.emplace(std::make_pair(ev.bucket, ev.key), *event_ms);
        }
      }
      break;
    case Outcome::kIgnored:
    case Outcome::kOutOfScope:
    case Outcome::kStale:
    case Outcome::kOtherVersion:
      ignored_.With({OutcomeName(r.outcome)}).Inc();
      level = spdlog::level::debug;
      break;
    case Outcome::kRefused: {
      std::string reason = r.refusal ? RefusalName(*r.refusal) : "other";
      refused_.With({reason}).Inc();
      level = spdlog::level::warn;
      std::lock_guard<std::mutex> l(mu_);
      refusals_.push_front({clock_.NowMillis(), PrintableKey(ev.key), reason});
      if (refusals_.size() > kHistory) refusals_.pop_back();
      break;
    }
    case Outcome::kFailed:
      failed_.With({action}).Inc();
      level = spdlog::level::err;
      break;
  }
  LogFields fields = {{"key", PrintableKey(ev.key)},
                      {"bucket", ev.bucket},
                      {"action", action},
                      {"outcome", OutcomeName(r.outcome)},
                      {"type", ev.name},
                      {"source", ev.source},
                      {"event_id", ev.event_id}};
  if (delay) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f", *delay);
    fields.emplace_back("delay_s", buf);
  }
  if (r.outcome == Outcome::kRefused || r.outcome == Outcome::kFailed) {
    fields.emplace_back("error", r.message);
  }
  if (log_) log_(level, "event", fields);
}

void OpsMetrics::OnJob(const FetchJob& job, JobOutcome o) {
  downloads_.With({JobOutcomeName(o)}).Inc();
  if (o == JobOutcome::kRetry) return;
  std::optional<int64_t> event_ms;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = pending_creations_.find({job.bucket, job.key});
    if (it != pending_creations_.end()) {
      event_ms = it->second;
      pending_creations_.erase(it);
    }
  }
  if (o == JobOutcome::kPublished && event_ms) ObserveDelay("create", *event_ms);
}

void OpsMetrics::OnHorizonCheck(const FetchJob&, HorizonCheck result) {
  horizon_checks_.With({HorizonCheckName(result)}).Inc();
}

void OpsMetrics::OnStateCollected(const CollectStats& stats) {
  state_collected_.With({}).Inc(stats.keys);
}

void OpsMetrics::OnRemoved(const std::string&, const std::string&, RemovalCause cause) {
  removals_.With({std::string(RemovalCauseName(cause))}).Inc();
}

void OpsMetrics::OnReconcile(const ReconcileReport& report, const Status& s) {
  reconcile_runs_.With({s.ok() ? "ok" : "failed"}).Inc();
  reconcile_keys_.With({"missing"}).Inc(report.missing);
  reconcile_keys_.With({"stale"}).Inc(report.stale);
  reconcile_keys_.With({"unverified"}).Inc(report.unverified);
  reconcile_keys_.With({"orphans"}).Inc(report.orphans + report.untracked_orphans);
  reconcile_keys_.With({"removed"}).Inc(report.removed);
  reconcile_keys_.With({"queued"}).Inc(report.queued);
  reconcile_keys_.With({"refused"}).Inc(report.refused);
  if (s.ok()) reconcile_last_.With({}).Set(static_cast<double>(clock_.NowMillis()) / 1000.0);
  ReconcileHistoryEntry e;
  e.started_ms = report.started_ms;
  e.duration_ms = report.duration_ms;
  e.ok = s.ok();
  e.error = s.ok() ? "" : s.message();
  e.report = report;
  e.report.removed_keys.clear();
  e.report.orphan_keys.clear();
  std::lock_guard<std::mutex> l(mu_);
  reconciles_.push_front(std::move(e));
  if (reconciles_.size() > kHistory) reconciles_.pop_back();
}

std::vector<RefusedKeyEntry> OpsMetrics::RecentRefusals() const {
  std::lock_guard<std::mutex> l(mu_);
  return {refusals_.begin(), refusals_.end()};
}

std::vector<ReconcileHistoryEntry> OpsMetrics::ReconcileHistory() const {
  std::lock_guard<std::mutex> l(mu_);
  return {reconciles_.begin(), reconciles_.end()};
}

std::vector<int64_t> OpsMetrics::DelayCounts(const std::string& action) const {
  return delay_.With({action}).BucketCounts();
}

std::map<std::string, int64_t> OpsMetrics::RemovalsByCause() const {
  std::map<std::string, int64_t> out;
  removals_.ForEach([&](const std::vector<std::string>& labels, const metrics::Counter& c) {
    out[labels.at(0)] = c.Value();
  });
  return out;
}

int64_t OpsMetrics::EventsReceived() const {
  int64_t n = 0;
  received_.ForEach(
      [&](const std::vector<std::string>&, const metrics::Counter& c) { n += c.Value(); });
  return n;
}

void OpsMetrics::OnSns(const SnsDecision& d) {
  using Kind = SnsDecision::Kind;
  const char* outcome = "unverified";
  switch (d.kind) {
    case Kind::kNotSns:
      return;
    case Kind::kUnverified:
      break;
    case Kind::kVerified:
      outcome = "verified";
      break;
    case Kind::kConfirmed:
      outcome = "confirmed";
      break;
    case Kind::kUnsubscribed:
      outcome = "unsubscribed";
      break;
    case Kind::kRefused:
      outcome = "refused";
      break;
    case Kind::kMalformed:
      outcome = "malformed";
      break;
    case Kind::kRetry:
      outcome = "retry";
      break;
  }
  sns_messages_.With({SnsTypeName(d.type), outcome}).Inc();
  if (d.kind == Kind::kRefused && d.refusal) sns_refused_.With({SnsRefusalName(*d.refusal)}).Inc();
}

}  // namespace ds
