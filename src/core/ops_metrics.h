// What the service tells operators: the Prometheus metrics (common/metrics.h), the recent
// history shown on the status page, and one log line per applied or refused event. Fed by the
// engine through EngineObserver and by serve (reconcile passes, queue depth, audit length).
// No I/O: log lines go to the EventLogger given (app/ops_log.h writes them).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/metrics.h"
#include "core/engine.h"
#include "core/reconcile.h"
#include "core/sns.h"

namespace ds {

// Parses an ISO-8601 UTC time as sent in eventTime ("2026-11-25T05:44:53.123Z", any number
// of fraction digits, "Z" or "+00:00"); nullopt when it is not one.
std::optional<int64_t> ParseEventTimeMillis(const std::string& s);

// Upper bounds (seconds) of the delay histogram's buckets.
const std::vector<double>& DelayBuckets();

// Structured fields of a log line, in order.
using LogFields = std::vector<std::pair<std::string, std::string>>;
// Writes one log line: level is an spdlog level (spdlog::level::level_enum).
using EventLogger = std::function<void(int level, const std::string& msg, const LogFields&)>;

struct ReconcileHistoryEntry {
  int64_t started_ms = 0;
  int64_t duration_ms = 0;
  bool ok = true;
  std::string error;
  ReconcileReport report;
};

struct RefusedKeyEntry {
  int64_t time_ms = 0;
  std::string key;  // printable
  std::string reason;
};

class OpsMetrics : public EngineObserver {
 public:
  // `log` receives the one line per event (null: none).
  OpsMetrics(Clock& clock, EventLogger log);

  // EngineObserver.
  void OnEvent(const Event& ev, const ApplyResult& r) override;
  void OnJob(const FetchJob& job, JobOutcome o) override;
  void OnRemoved(const std::string& bucket, const std::string& key, RemovalCause cause) override;
  void OnHorizonCheck(const FetchJob& job, HorizonCheck result) override;
  void OnStateCollected(const CollectStats& stats) override;

  // A reconcile pass ended (serve's periodic reconcile).
  void OnReconcile(const ReconcileReport& report, const Status& s);
  // The webhook's SnsGate decided about an SNS envelope (SnsGate's observer).
  void OnSns(const SnsDecision& d);

  // Gauges sampled at each scrape.
  void AddSampledGauge(const std::string& name, const std::string& help,
                       std::function<double()> sample) {
    registry_.AddGaugeCallback(name, help, std::move(sample));
  }
  // Counters sampled at each scrape (totals kept by adapters).
  void AddSampledCounter(const std::string& name, const std::string& help,
                         std::function<double()> sample) {
    registry_.AddCounterCallback(name, help, std::move(sample));
  }

  std::string Render() const { return registry_.Render(); }

  // For the status page.
  std::vector<RefusedKeyEntry> RecentRefusals() const;
  std::vector<ReconcileHistoryEntry> ReconcileHistory() const;
  // Delay histogram of one action ("remove" or "create"): per-bucket counts, +Inf last.
  std::vector<int64_t> DelayCounts(const std::string& action) const;
  std::map<std::string, int64_t> RemovalsByCause() const;
  int64_t EventsReceived() const;

 private:
  void ObserveDelay(const std::string& action, int64_t event_ms);

  Clock& clock_;
  EventLogger log_;
  metrics::Registry registry_;
  metrics::Family<metrics::Counter>& received_;
  metrics::Family<metrics::Counter>& applied_;
  metrics::Family<metrics::Counter>& ignored_;
  metrics::Family<metrics::Counter>& failed_;
  metrics::Family<metrics::Counter>& refused_;
  metrics::Family<metrics::Histogram>& delay_;
  metrics::Family<metrics::Counter>& removals_;
  metrics::Family<metrics::Counter>& downloads_;
  metrics::Family<metrics::Counter>& reconcile_runs_;
  metrics::Family<metrics::Counter>& reconcile_keys_;
  metrics::Family<metrics::Gauge>& reconcile_last_;
  metrics::Family<metrics::Counter>& state_collected_;
  metrics::Family<metrics::Counter>& horizon_checks_;
  metrics::Family<metrics::Counter>& sns_messages_;
  metrics::Family<metrics::Counter>& sns_refused_;

  mutable std::mutex mu_;
  std::deque<RefusedKeyEntry> refusals_;
  std::deque<ReconcileHistoryEntry> reconciles_;
  // Event time of the oldest creation waiting to be published, per bucket + key (in memory:
  // the delay of a creation is observed when its download is published).
  std::map<std::pair<std::string, std::string>, int64_t> pending_creations_;
};

}  // namespace ds
