// Everything serve adds for operators, in one place so that serve.cc only calls it:
// settings (metrics-listen, readyz-timeout, log-format, log-file), the engine observer
// (metrics, event log lines), the operator routes (/metrics, /readyz, /, /status.json) on the
// webhook port and on --metrics-listen, and the summary behind the status page.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "config.h"
#include "core/ops_metrics.h"
#include "ops_health.h"
#include "ops_log.h"
#include "runtime.h"
#include "tls_settings.h"
#include "transport/amqp.h"
#include "transport/http_webhook.h"
#include "transport/ops_http.h"
#include "transport/status_page.h"

namespace ds::app {

class OpsService {
 public:
  void Register(Settings& s);
  // After Settings::Resolve and SetupLogging: checks the settings, applies the log format and
  // file. kInvalidArgument for bad settings.
  Status Configure();
  // Before the webhook starts: observes the engine, adds the routes to `server`.
  void Attach(Runtime& rt, const CommonSettings& common, WebhookServer& server);
  // Starts the --metrics-listen server when set, with the limits of `limits` (the webhook's).
  Status Start(std::shared_ptr<const TokenSet> tokens, const ListenerOptions& limits);
  // The AMQP consumer, for /readyz's "amqp" check (ready while connected; not ready, with the
  // broker's reason, once it stopped for good).
  void set_amqp(const AmqpConsumer* consumer) { amqp_ = consumer; }
  // SIGTERM: /readyz answers 503 from now on.
  void BeginDrain() { draining_ = true; }
  void OnReconcile(const ReconcileReport& report, const Status& s) {
    if (metrics_) metrics_->OnReconcile(report, s);
  }
  // The webhook's SNS gate decided (metrics).
  void OnSns(const SnsDecision& d) {
    if (metrics_) metrics_->OnSns(d);
  }
  void Stop();
  // The disk-space reserve to keep in the cache (bytes; 0: none).
  uint64_t disk_reserve() const { return disk_reserve_bytes_; }
  // The TLS credentials of --metrics-listen (null: plain HTTP), for SIGHUP's reload.
  const std::shared_ptr<TlsCredentials>& metrics_tls() const { return metrics_tls_; }

  StatusSummary Summary() const;
  std::vector<OpsRoute> Routes();

 private:
  std::string metrics_listen_, readyz_timeout_, disk_reserve_;
  uint64_t disk_reserve_bytes_ = 0;
  LogSettings log_;
  TlsSettings tls_settings_{"metrics", "--metrics-listen"};
  std::shared_ptr<TlsCredentials> metrics_tls_;
  std::string metrics_host_;
  int metrics_port_ = 0;
  int64_t readyz_timeout_ms_ = 5000;
  std::atomic<bool> draining_{false};
  Runtime* rt_ = nullptr;
  CommonSettings common_;
  WebhookServer* server_ = nullptr;
  std::atomic<const AmqpConsumer*> amqp_{nullptr};
  std::string started_at_;
  std::unique_ptr<OpsMetrics> metrics_;
  std::unique_ptr<ReadinessChecker> ready_;
  std::unique_ptr<OpsServer> ops_server_;
};

}  // namespace ds::app
