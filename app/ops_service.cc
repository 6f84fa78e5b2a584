#include "ops_service.h"

#include <spdlog/spdlog.h>

#include "common/version.h"
#include "core/cache_fs.h"
#include "ops_status.h"
#include "reconcile_pass.h"

namespace ds::app {

void OpsService::Register(Settings& s) {
  s.Add("metrics-listen", &metrics_listen_,
        "HOST:PORT of a separate GET-only listener for /metrics, /healthz, /readyz and the "
        "status page; on a loopback address it needs no token");
  s.Add("readyz-timeout", &readyz_timeout_,
        "how long /readyz waits for the object store (e.g. 2s, 500ms)", "5s");
  s.Add("disk-reserve", &disk_reserve_,
        "space kept in <cache>/.delete-sync/reserve so that removals can still be recorded and "
        "committed when the cache's file system fills up (0 or off: none)",
        "16MiB");
  tls_settings_.Register(s);
  log_.Register(s);
}

Status OpsService::Configure() {
  if (!metrics_listen_.empty()) {
    DS_RETURN_IF_ERROR(ParseListen(metrics_listen_, &metrics_host_, &metrics_port_));
  }
  Result<std::shared_ptr<TlsCredentials>> tls = tls_settings_.Load(!metrics_listen_.empty());
  if (!tls.ok()) return tls.status();
  metrics_tls_ = std::move(tls).value();
  Result<int64_t> t = ParseDurationMs("readyz-timeout", readyz_timeout_);
  if (!t.ok()) return t.status();
  if (*t <= 0) return Status::Invalid("--readyz-timeout must be more than 0");
  readyz_timeout_ms_ = *t;
  if (disk_reserve_ == "off") {
    disk_reserve_bytes_ = 0;
  } else {
    Result<uint64_t> r = ParseBytes("disk-reserve", disk_reserve_);
    if (!r.ok()) return r.status();
    disk_reserve_bytes_ = *r;
  }
  return ApplyLogSettings(log_);
}

void OpsService::Attach(Runtime& rt, const CommonSettings& common, WebhookServer& server) {
  rt_ = &rt;
  common_ = common;
  server_ = &server;
  started_at_ = FormatUtcMillis(SystemClock().NowMillis());
  metrics_ = std::make_unique<OpsMetrics>(SystemClock(), LogWithFields);
  rt.engine->set_observer(metrics_.get());
  SqliteState* state = rt.state.get();
  metrics_->AddSampledGauge("delete_sync_jobs_waiting",
                            "Downloads journaled and not finished (claimed or not)", [state] {
                              auto c = state->JobCounts();
                              return c.ok() ? static_cast<double>(c->first) : -1.0;
                            });
  metrics_->AddSampledGauge("delete_sync_jobs_failed", "Downloads kept as failed", [state] {
    auto c = state->JobCounts();
    return c.ok() ? static_cast<double>(c->second) : -1.0;
  });
  metrics_->AddSampledCounter(
      "delete_sync_state_lock_wait_seconds_total",
      "Seconds spent waiting for the state database's lock held by another process or host "
      "(a host that died holding it keeps it until the file system evicts that host)",
      [state] { return static_cast<double>(state->lock_wait_ms()) / 1000.0; });
  metrics_->AddSampledGauge("delete_sync_inflight_requests", "Webhook requests being handled now",
                            [&server] { return static_cast<double>(server.inflight()); });
  metrics_->AddSampledGauge(
      "delete_sync_webhook_workers_busy",
      "Webhook workers applying a request now (of --webhook-workers; slow or idle connections "
      "never hold one)",
      [&server] { return static_cast<double>(server.Stats().busy_workers); });
  metrics_->AddSampledGauge(
      "delete_sync_webhook_requests_waiting",
      "Webhook requests received whole and waiting for a worker (every worker is busy)",
      [&server] { return static_cast<double>(server.Stats().queued); });
  metrics_->AddSampledGauge("delete_sync_webhook_connections", "Open webhook connections",
                            [&server] { return static_cast<double>(server.Stats().connections); });
  metrics_->AddSampledCounter("delete_sync_webhook_slow_clients_closed_total",
                              "Webhook connections closed for not sending a whole request within "
                              "--webhook-request-timeout",
                              [&server] { return static_cast<double>(server.Stats().timed_out); });
  metrics_->AddSampledCounter("delete_sync_webhook_unauthenticated_evicted_total",
                              "Webhook connections without the token closed to make room "
                              "(--webhook-max-unauthenticated)",
                              [&server] { return static_cast<double>(server.Stats().evicted); });
  metrics_->AddSampledCounter("delete_sync_webhook_unauthorised_total",
                              "Webhook requests answered 401 (missing or wrong token)", [&server] {
                                return static_cast<double>(server.Stats().unauthorised);
                              });
  metrics_->AddSampledCounter(
      "delete_sync_webhook_client_certificate_refused_total",
      "Webhook requests answered 403 for want of a client certificate accepted by "
      "--webhook-client-ca",
      [&server] { return static_cast<double>(server.Stats().no_client_cert); });
  // When a listener serves TLS: when its certificate in use expires (alert well before).
  for (const auto& [name, creds] :
       {std::pair{"delete_sync_webhook_tls_certificate_expiry_timestamp_seconds", server.tls()},
        std::pair{"delete_sync_metrics_tls_certificate_expiry_timestamp_seconds", metrics_tls_}}) {
    if (!creds) continue;
    std::shared_ptr<TlsCredentials> c = creds;
    metrics_->AddSampledGauge(name,
                              "Unix time at which the TLS certificate in use expires (a SIGHUP "
                              "after renewing the file serves the new one)",
                              [c] { return static_cast<double>(c->info().not_after); });
  }
  AuditLog* audit = rt.audit.get();
  metrics_->AddSampledCounter(
      "delete_sync_audit_lock_wait_seconds_total",
      "Seconds spent waiting for the audit log's lock held by another process or host (a host "
      "that died holding it keeps it until the file system evicts that host)",
      [audit] { return audit ? static_cast<double>(audit->lock_wait_ms()) / 1000.0 : 0.0; });
  metrics_->AddSampledGauge(
      "delete_sync_audit_records",
      "Records in the audit chain (sequence number of the last record; 0 without an audit log)",
      [audit] { return audit ? static_cast<double>(audit->last_position().seq) : 0.0; });
  CacheFs* cache = rt.cache.get();
  metrics_->AddSampledGauge("delete_sync_cache_free_bytes",
                            "Bytes free on the cache's file system (-1: unknown)", [cache] {
                              auto f = cache->FreeBytes();
                              return f.ok() ? static_cast<double>(*f) : -1.0;
                            });
  const uint64_t reserve = disk_reserve_bytes_;
  metrics_->AddSampledGauge(
      "delete_sync_disk_reserve_bytes",
      "Bytes of the disk-space reserve in place (0: released because the disk filled up, or off)",
      [cache, reserve] {
        auto h = cache->HasReserve();
        return h.ok() && *h ? static_cast<double>(reserve) : 0.0;
      });
  ready_ = std::make_unique<ReadinessChecker>(
      *rt.state, common.cache,
      MakeProbeClient(rt.s3.get(), std::chrono::milliseconds(readyz_timeout_ms_)), common.bucket,
      common.prefix);
  ready_->set_disk(cache, disk_reserve_bytes_);
  server.set_ops_routes(Routes());
}

std::vector<OpsRoute> OpsService::Routes() {
  std::vector<OpsRoute> routes;
  routes.push_back({"/metrics", true, [this] {
                      OpsReply r;
                      r.content_type = "text/plain; version=0.0.4; charset=utf-8";
                      r.body = metrics_->Render();
                      return r;
                    }});
  routes.push_back(
      {"/readyz", false, [this] {
         ReadyReport rep = ready_->Check(draining_ || (server_ && server_->draining()));
         if (const AmqpConsumer* amqp = amqp_.load()) {
           std::optional<std::string> stopped = amqp->stopped_error();
           const bool ok = !stopped && amqp->connected();
           if (!ok) rep.ready = false;
           rep.checks.push_back(
               {"amqp", ok,
                stopped ? "stopped: " + *stopped
                        : (ok ? "consuming" : "not connected to the broker (retrying)"),
                0});
         }
         if (server_) {
           ListenerStats st = server_->Stats();
           if (st.busy_workers >= server_->workers() && st.queued > 0) {
             rep.ready = false;
             rep.checks.push_back({"webhook", false,
                                   "every webhook worker is busy (" +
                                       std::to_string(server_->workers()) + ", " +
                                       std::to_string(st.queued) +
                                       " requests waiting): raise --webhook-workers or add an "
                                       "instance",
                                   0});
           }
         }
         OpsReply r;
         r.status = rep.ready ? 200 : 503;
         r.content_type = "application/json";
         r.body = rep.ToJson();
         if (!rep.ready) r.retry_after_s = 5;
         return r;
       }});
  routes.push_back({"/", true, [this] {
                      OpsReply r;
                      r.content_type = "text/html; charset=utf-8";
                      r.body = RenderStatusHtml(Summary());
                      return r;
                    }});
  routes.push_back({"/status.json", true, [this] {
                      OpsReply r;
                      r.content_type = "application/json";
                      r.body = RenderStatusJson(Summary());
                      return r;
                    }});
  return routes;
}

Status OpsService::Start(std::shared_ptr<const TokenSet> tokens, const ListenerOptions& limits) {
  if (metrics_listen_.empty()) return Status::Ok();
  std::vector<OpsRoute> routes = Routes();
  routes.push_back({"/healthz", false, [] {
                      OpsReply r;
                      r.body = "ok\n";
                      return r;
                    }});
  ListenerOptions lo = limits;
  lo.host = metrics_host_;
  lo.port = metrics_port_;
  lo.setting = "--metrics-listen";
  lo.tls = metrics_tls_;  // its own, never the webhook's
  ops_server_ = std::make_unique<OpsServer>(routes, lo, std::move(tokens));
  DS_RETURN_IF_ERROR(ops_server_->Start());
  if (metrics_tls_) spdlog::info("--metrics-listen: {}", DescribeTls(metrics_tls_));
  return Status::Ok();
}

void OpsService::Stop() {
  if (ops_server_) ops_server_->Stop();
  if (rt_ && rt_->engine) rt_->engine->set_observer(nullptr);
}

StatusSummary OpsService::Summary() const {
  StatusSummary s;
  s.generated_at = FormatUtcMillis(SystemClock().NowMillis());
  s.version = Version();
  s.cache = common_.cache;
  s.bucket = common_.bucket;
  s.prefix = common_.prefix;
  s.live = true;
  s.started_at = started_at_;
  Status st = FillFromState(*rt_->state, &s);
  if (!st.ok()) s.audit_error = "state store: " + st.message();
  if (rt_->audit) {
    FillFromAuditLog(rt_->audit->path(), 20, &s);
    s.audit_records = rt_->audit->last_position().seq;
  }
  s.counts["events received"] = metrics_->EventsReceived();
  for (const auto& [cause, n] : metrics_->RemovalsByCause())
    s.counts["removed (" + cause + ")"] = n;
  for (const RefusedKeyEntry& r : metrics_->RecentRefusals()) {
    s.refusals.push_back({FormatUtcMillis(r.time_ms), r.key, r.reason});
  }
  for (const ReconcileHistoryEntry& e : metrics_->ReconcileHistory()) {
    s.reconciles.push_back({FormatUtcMillis(e.started_ms), e.duration_ms, e.ok, e.error,
                            e.report.missing, e.report.stale,
                            e.report.orphans + e.report.untracked_orphans, e.report.removed,
                            e.report.queued});
  }
  s.delay_bounds = DelayBuckets();
  for (const char* action : {"remove", "create"})
    s.delay_counts[action] = metrics_->DelayCounts(action);
  return s;
}

}  // namespace ds::app
