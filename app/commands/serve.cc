// delete-sync serve: the long-running service. Receives notifications on the webhook, applies
// removals at once, downloads creations with a pool of fetch workers.
#include <signal.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "amqp_settings.h"
#include "command.h"
#include "core/cache_layout.h"
#include "erase_request.h"
#include "fs/run_marker.h"
#include "ops_service.h"
#include "reconcile_pass.h"
#include "runtime.h"
#include "sns_service.h"
#include "store_wait_logger.h"
#include "tls_settings.h"
#include "transport/http_webhook.h"

namespace ds::app {
namespace {

// Wakes fetch workers when work arrives, and stops them.
class WorkSignal {
 public:
  void Notify() {
    {
      std::lock_guard<std::mutex> l(mu_);
      ++version_;
    }
    cv_.notify_all();
  }
  // Waits up to `ms` or until Notify/Stop.
  void Wait(int64_t ms) {
    std::unique_lock<std::mutex> l(mu_);
    uint64_t v = version_;
    cv_.wait_for(l, std::chrono::milliseconds(ms), [&] { return version_ != v || stopped_; });
  }
  void Stop() {
    {
      std::lock_guard<std::mutex> l(mu_);
      stopped_ = true;
    }
    cv_.notify_all();
  }
  // Waits up to `ms` or until Stop (not woken by Notify).
  void WaitStop(int64_t ms) {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait_for(l, std::chrono::milliseconds(ms), [&] { return stopped_; });
  }
  bool stopped() {
    std::lock_guard<std::mutex> l(mu_);
    return stopped_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t version_ = 0;
  bool stopped_ = false;
};

// The tokens of --webhook-token-file: one per line, spaces around them, blank lines and lines
// starting with # ignored. An error when it cannot be read or lists none.
Result<std::vector<std::string>> ReadTokenFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::Invalid("cannot read --webhook-token-file " + path);
  std::vector<std::string> tokens;
  for (std::string line; std::getline(in, line);) {
    size_t b = line.find_first_not_of(" \t\r");
    size_t e = line.find_last_not_of(" \t\r");
    if (b == std::string::npos || line[b] == '#') continue;
    tokens.push_back(line.substr(b, e - b + 1));
  }
  if (tokens.empty()) return Status::Invalid("--webhook-token-file " + path + " lists no token");
  return tokens;
}

class ServeCommand : public Command {
 public:
  CLI::App* Register(CLI::App& parent) override {
    cmd_ = parent.add_subcommand("serve",
                                 "Run the service: receive bucket notifications on the webhook "
                                 "and keep the cache equal to the bucket");
    settings_ = std::make_unique<Settings>(cmd_);
    common_.Register(*settings_);
    settings_->Add("webhook-listen", &listen_,
                   "address of the webhook, HOST:PORT; off to receive events from AMQP only",
                   "127.0.0.1:8089");
    settings_->Add("webhook-token", &token_,
                   "token a sender must present (Authorization: Bearer, or ?token=)");
    settings_->Add("webhook-token-file", &token_file_,
                   "read the webhook token from this file: one token per line (several while "
                   "rotating; blank lines and # comments ignored), read again on SIGHUP");
    settings_->Add("webhook-max-body", &max_body_, "largest accepted notification body", "8MiB");
    settings_->Add("webhook-workers", &webhook_workers_,
                   "threads that apply notification documents and erasure requests (slow or "
                   "idle connections never hold one)",
                   "8");
    settings_->Add("webhook-backlog", &backlog_,
                   "connections the kernel queues before the webhook accepts them", "1024");
    settings_->Add("webhook-request-timeout", &request_timeout_,
                   "a client must send a whole request (line, headers, body) within this; a "
                   "slower one is disconnected (e.g. 10s)",
                   "10s");
    settings_->Add("webhook-max-connections", &max_connections_,
                   "open connections at most (webhook, and --metrics-listen each)", "1000");
    settings_->Add("webhook-max-unauthenticated", &max_unauthenticated_,
                   "connections that have not shown the token yet, at most (a quarter of that "
                   "from one address, at most 32); past it the oldest such one is closed",
                   "256");
    tls_.Register(*settings_);
    settings_->AddList(
        "sns-topic-arn", &sns_topics_,
        "an SNS topic whose HTTPS subscription this webhook accepts: its "
        "SubscriptionConfirmation is verified and confirmed, and every SNS message "
        "on the webhook must then be signed by SNS and come from one of these topics");
    settings_->Add("fetch-concurrency", &fetch_concurrency_,
                   "parallel downloads of the objects events create", "4");
    settings_->Add("reconcile-every", &reconcile_every_,
                   "run a reconcile pass this often (e.g. 10m, 1h, off); default 10m when "
                   "--bucket is set",
                   "10m");
    settings_->Add("reconcile-at-start", &reconcile_at_start_,
                   "run a reconcile pass as soon as the service starts (on/off); after an "
                   "unclean stop or a lost state database it runs whatever this says, unless "
                   "'never' (e.g. several hosts on one cache, where one host or a scheduled "
                   "`delete-sync reconcile` runs the passes)",
                   "on");
    reconcile_.Register(*settings_);
    ops_.Register(*settings_);
    amqp_.Register(*settings_, /*for_route=*/false);
    return cmd_;
  }

  Status Check() override {
    DS_RETURN_IF_ERROR(settings_->Resolve());
    DS_RETURN_IF_ERROR(SetupLogging(common_.log_level));
    DS_RETURN_IF_ERROR(ops_.Configure());
    std::vector<std::string> tokens;
    tokens_from_file_ = token_.empty() && !token_file_.empty();
    if (tokens_from_file_) {
      Result<std::vector<std::string>> read = ReadTokenFile(token_file_);
      if (!read.ok()) return read.status();
      tokens = std::move(read).value();
      token_ = tokens.front();
    } else if (!token_.empty()) {
      tokens = {token_};
    }
    wo_.tokens = std::make_shared<TokenSet>(tokens);
    webhook_on_ = listen_ != "off";
    if (!webhook_on_ && !amqp_.enabled()) {
      return Status::Invalid(
          "--webhook-listen off leaves no way to receive events: set --amqp-url too");
    }
    if (amqp_.enabled()) DS_RETURN_IF_ERROR(amqp_.Apply(&amqp_opts_));
    if (token_.empty() && webhook_on_) {
      if (amqp_.enabled() && !settings_->IsSet("webhook-listen")) {
        return Status::Invalid(
            "the webhook (on by default, " + listen_ +
            ") must authenticate senders: add --webhook-listen off to receive events from AMQP "
            "only, or set --webhook-token (or DELETE_SYNC_WEBHOOK_TOKEN, or "
            "--webhook-token-file)");
      }
      return Status::Invalid(
          "the webhook must authenticate senders: set --webhook-token (or "
          "DELETE_SYNC_WEBHOOK_TOKEN, or --webhook-token-file)");
    }
    wo_.token = token_;
    DS_RETURN_IF_ERROR(CheckSnsTopicArns(sns_topics_));
    if (!sns_topics_.empty() && !webhook_on_) {
      return Status::Invalid("--sns-topic-arn needs the webhook: --webhook-listen is off");
    }
    ListenerOptions& lo = wo_.listener;
    if (webhook_on_) DS_RETURN_IF_ERROR(ParseListen(listen_, &lo.host, &lo.port));
    Result<std::shared_ptr<TlsCredentials>> tls = tls_.Load(webhook_on_);
    if (!tls.ok()) return tls.status();
    lo.tls = std::move(tls).value();
    if (webhook_on_ && !lo.tls && !IsLoopbackHost(lo.host)) {
      spdlog::warn(
          "--webhook-listen {} is not a loopback address and serves plain HTTP: the token and "
          "the notifications cross the network in clear; set --webhook-tls-cert and "
          "--webhook-tls-key",
          listen_);
    }
    Result<uint64_t> max_body = ParseBytes("webhook-max-body", max_body_);
    if (!max_body.ok()) return max_body.status();
    lo.max_body = *max_body;
    Result<int64_t> n = ParseInt("webhook-workers", webhook_workers_, 1, 1024);
    if (!n.ok()) return n.status();
    lo.workers = static_cast<int>(*n);
    n = ParseInt("webhook-backlog", backlog_, 1, 65535);
    if (!n.ok()) return n.status();
    lo.backlog = static_cast<int>(*n);
    n = ParseDurationMs("webhook-request-timeout", request_timeout_);
    if (!n.ok()) return n.status();
    if (*n < 1000) return Status::Invalid("--webhook-request-timeout must be at least 1s");
    lo.request_timeout_s = static_cast<int>(*n / 1000);
    n = ParseInt("webhook-max-connections", max_connections_, 16, 1000000);
    if (!n.ok()) return n.status();
    lo.max_connections = static_cast<int>(*n);
    n = ParseInt("webhook-max-unauthenticated", max_unauthenticated_, 1, 1000000);
    if (!n.ok()) return n.status();
    if (*n >= lo.max_connections) {
      return Status::Invalid(
          "--webhook-max-unauthenticated must be less than --webhook-max-connections, so that "
          "senders with the token always find room");
    }
    lo.max_unauthenticated = static_cast<int>(*n);
    lo.max_unauthenticated_per_address = std::max(1, std::min(32, lo.max_unauthenticated / 4));
    Result<int64_t> workers = ParseInt("fetch-concurrency", fetch_concurrency_, 1, 256);
    if (!workers.ok()) return workers.status();
    workers_ = *workers;
    Result<int64_t> reconcile_every = ParseDurationMs("reconcile-every", reconcile_every_);
    if (!reconcile_every.ok()) return reconcile_every.status();
    reconcile_every_ms_ = *reconcile_every;
    never_at_start_ = reconcile_at_start_ == "never";
    Result<bool> reconcile_at_start = never_at_start_
                                          ? Result<bool>(false)
                                          : ParseBool("reconcile-at-start", reconcile_at_start_);
    if (!reconcile_at_start.ok()) {
      return Status::Invalid("--reconcile-at-start must be on, off or never, not '" +
                             reconcile_at_start_ + "'");
    }
    reconcile_at_start_on_ = *reconcile_at_start;
    ro_.bucket = common_.bucket;
    ro_.prefix = common_.prefix;
    DS_RETURN_IF_ERROR(reconcile_.Apply(&ro_));
    if (reconcile_every_ms_ > 0 && common_.bucket.empty()) {
      if (settings_->IsSet("reconcile-every")) {
        return Status::Invalid("--reconcile-every needs --bucket");
      }
      // The default: without a bucket there is nothing to compare the cache with.
      reconcile_every_ms_ = 0;
    }
    Result<RuntimeOptions> ro = CheckCommonSettings(common_, /*require_s3=*/true);
    if (!ro.ok()) return ro.status();
    runtime_options_ = std::move(ro).value();
    return Status::Ok();
  }

  Result<RunEnd> Run() override {
    Status s;
    const WebhookOptions& wo = wo_;
    const bool webhook_on = webhook_on_;
    const bool never_at_start = never_at_start_;
    const int64_t workers = workers_;
    const int64_t reconcile_every = reconcile_every_ms_;
    ReconcileOptions& ro = ro_;

    // Block the stop signals in every thread; one thread waits for them.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGHUP);  // reopen the log file, re-read tokens and certificates
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
    signal(SIGPIPE, SIG_IGN);

    // A state database that is missing next to a cache that has content was lost (deleted,
    // a volume restored without it): it is recreated, and the whole cache is verified.
    const std::string state_path =
        common_.state.empty() ? StateFolder() + "/state.db" : common_.state;
    const bool state_lost = !std::filesystem::exists(state_path) && CacheHasContent();
    Result<Runtime> rt = OpenRuntime(runtime_options_);
    if (!rt.ok()) return rt.status();
    Engine& engine = *rt->engine;
    // A bucket that cannot be reached (missing, wrong credentials) is logged as an error at
    // once; events are still accepted (removals need no S3) and /readyz says not ready.
    (void)LogBucketReachability(*rt, common_);
    // The disk-space reserve: removals can still be recorded when the file system fills up.
    const uint64_t reserve = ops_.disk_reserve();
    if (reserve > 0) {
      // A safety margin, not a reason to stop: without it, removals may fail on a full disk.
      if (Status rs = rt->cache->EnsureReserve(reserve); !rs.ok()) {
        spdlog::error("cannot make the disk-space reserve: {}", rs.ToString());
      }
      Result<bool> has = rt->cache->HasReserve();
      if (has.ok() && !*has) {
        spdlog::warn(
            "the cache's file system has no room for the disk-space reserve of {} bytes: it is "
            "full, and removals may fail until space returns",
            reserve);
      }
    }
    // A damaged database is refused with the way out, not served from.
    if (Status is = rt->state->CheckIntegrity(); !is.ok()) return is;
    if (state_lost) {
      s = rt->state->SetMeta(
          SqliteState::kVerifyCacheMeta,
          "state database was missing at " + FormatUtcMillis(SystemClock().NowMillis()));
      if (!s.ok()) return s;
    }
    Result<std::string> verify = rt->state->GetMeta(SqliteState::kVerifyCacheMeta);
    if (!verify.ok()) return verify.status();
    if (!verify->empty()) {
      spdlog::warn(
          "the state database has no record of this cache ({}): the start pass verifies every "
          "file against the bucket, downloads again those it cannot verify, and removes those "
          "not in the bucket",
          *verify);
    }

    // A marker of this run, removed at a clean stop: one left by an earlier run on this host
    // means that run was killed or crashed, and the events sent to it meanwhile may be lost.
    std::vector<UncleanRun> unclean;
    Result<std::unique_ptr<RunMarker>> marker =
        RunMarker::Create(CacheLayout::RunningDir(StateFolder()), "serve", &unclean);
    if (!marker.ok()) return marker.status();
    for (const UncleanRun& u : unclean) {
      spdlog::warn(
          "the previous run did not stop cleanly ({}): events sent while it was down or "
          "stopping may have been lost; {}",
          u.detail,
          common_.bucket.empty()
              ? "without --bucket no reconcile pass can run: run `delete-sync reconcile "
                "--bucket ...` on this cache now"
          : never_at_start ? "reconcile-at-start is 'never': run `delete-sync reconcile` on this "
                             "cache now"
                           : "a reconcile pass starts now");
    }
    const bool start_pass = !common_.bucket.empty() && !never_at_start &&
                            (reconcile_at_start_on_ || !unclean.empty() || !verify->empty());
    if (common_.bucket.empty()) {
      spdlog::warn(
          "no --bucket: no reconcile pass runs, so a removal event that is lost (service down, "
          "non-persistent topic) leaves its copy in the cache until `delete-sync reconcile` runs");
    } else if (reconcile_every == 0) {
      spdlog::warn(
          "--reconcile-every off: a removal event that is lost (service down, non-persistent "
          "topic) leaves its copy in the cache until a pass runs");
    }

    ro.store_watch = rt->store_watch.get();
    // A warning line when a request to the store (a pass's listing, a download) has had no
    // answer for a few seconds, then every 10 s while it waits.
    StoreWaitLogger wait_logger(rt->store_watch.get(), "serve");

    WorkSignal work;
    WebhookServer server(engine, wo, [&] { work.Notify(); });
    // Metrics, /readyz, the status page, one log line per event (app/ops_service.h).
    ops_.Attach(*rt, common_, server);
    s = ops_.Start(server.tokens(), wo.listener);
    if (!s.ok()) return s;
    // POST /erase: the request part of a receipt; the reply is the receipt.
    server.set_erase_handler([&](const std::string& body) -> WebhookReply {
      auto error = [](int status, const std::string& message) {
        return WebhookReply{status,
                            nlohmann::json{{"error", message}}.dump(
                                -1, ' ', false, nlohmann::json::error_handler_t::replace),
                            0};
      };
      nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
      if (j.is_discarded() || !j.is_object()) {
        return error(400, "the body must be a JSON object (an erasure request)");
      }
      EraseReply r = HandleEraseRequest(*rt, common_.cache, common_.bucket, "this service", j);
      switch (r.end) {
        case EraseEnd::kInvalid:
          return error(400, r.message);
        case EraseEnd::kFailed:
          return error(500, r.message);
        case EraseEnd::kReceiptNotKept:
        case EraseEnd::kIncomplete:
          return {500, r.receipt_line, 0};
        case EraseEnd::kDone:
          break;
      }
      return {200, r.receipt_line, 0};
    });
    // SNS envelopes on the webhook: verified against --sns-topic-arn (app/sns_service.h).
    Result<std::unique_ptr<SnsService>> sns =
        SnsService::Open(sns_topics_, [&](const SnsDecision& d) { ops_.OnSns(d); });
    if (!sns.ok()) return sns.status();
    server.set_sns_gate(&(*sns)->gate());
    if (webhook_on && sns_topics_.empty()) {
      spdlog::info(
          "no --sns-topic-arn: SNS messages on the webhook are accepted on the token alone, "
          "unverified, and SNS subscription confirmations are refused");
    } else if (webhook_on) {
      std::string topics;
      for (const std::string& t : sns_topics_) topics += (topics.empty() ? "" : ", ") + t;
      spdlog::info("SNS: messages on the webhook must be signed by SNS for topic(s) {}", topics);
    }
    if (webhook_on) {
      s = server.Start();
      if (!s.ok()) return s;
      if (wo.listener.tls) spdlog::info("--webhook-listen: {}", DescribeTls(wo.listener.tls));
    }
    // AMQP: one consumer; a message is acked once its document is durable (as the webhook's
    // 200), dead-lettered when malformed or refused (400/422), redelivered otherwise.
    std::atomic<bool> amqp_stop{false};
    std::unique_ptr<AmqpConsumer> amqp_consumer;
    std::thread amqp_thread;
    if (amqp_.enabled()) {
      // The messages that arrived together are applied as one group commit.
      amqp_consumer = std::make_unique<AmqpConsumer>(
          amqp_opts_, AmqpConsumer::BatchHandler([&](const std::vector<AmqpDelivery>& ds) {
            std::vector<std::string_view> bodies;
            bodies.reserve(ds.size());
            for (const AmqpDelivery& d : ds) bodies.emplace_back(d.body);
            std::vector<AmqpVerdict> verdicts;
            bool queued = false;
            for (const DocumentResult& result : ApplyDocuments(engine, bodies)) {
              queued = queued || result.queued > 0;
              verdicts.push_back(VerdictFor(result));
            }
            if (queued) work.Notify();
            return verdicts;
          }));
      ops_.set_amqp(amqp_consumer.get());
      amqp_thread = std::thread([&] { amqp_consumer->Run(amqp_stop); });
    }

    std::vector<std::thread> fetchers;
    for (int64_t i = 0; i < workers; ++i) {
      fetchers.emplace_back([&] {
        // Each claim takes the job's ticket and finishes the previous job in one transaction;
        // a stop is seen before the next claim. An error of the journal is logged by
        // DrainJobs and also ends the drain.
        auto stopped = [&] { return work.stopped(); };
        while (!work.stopped()) {
          if (engine.DrainJobs(SIZE_MAX, stopped) == 0) work.Wait(250);
        }
      });
    }
    // Reconcile passes: one at start (heals what was missed while the service was down), then
    // one every --reconcile-every. One pass at a time: the pass lock also keeps a manual
    // `delete-sync reconcile` of the same cache from overlapping with it.
    std::thread reconciler_thread;
    if (start_pass || reconcile_every > 0) {
      reconciler_thread = std::thread([&] {
        Reconciler reconciler(*rt->store, *rt->cache, *rt->state, engine, SystemClock());
        for (bool first = true;; first = false) {
          const bool at_start = first && start_pass;
          if (!at_start) {
            if (reconcile_every == 0) return;
            work.WaitStop(reconcile_every);
          }
          if (work.stopped()) return;
          const char* kind = at_start ? "start" : "periodic";
          ReconcileOptions pass_options = ro;
          pass_options.request_id.clear();  // a new one for each pass
          PassRun run =
              RunReconcilePass(common_.cache, reconciler, pass_options, [&](const std::string& id) {
                spdlog::info(
                    "{} reconcile pass {}: comparing the cache with "
                    "s3://{}/{}",
                    kind, id, common_.bucket, common_.prefix);
              });
          if (!run.lock_status.ok()) {
            spdlog::warn("{} reconcile pass skipped: {}", kind, run.lock_status.message());
            continue;
          }
          const ReconcileReport& report = run.report;
          const Status& ps = run.status;
          if (ps.ok() && at_start && !verify->empty()) {
            Status ms = rt->state->SetMeta(SqliteState::kVerifyCacheMeta, "");
            if (!ms.ok()) spdlog::error("{}", ms.message());
          }
          if (ps.ok()) {
            spdlog::info(
                "{} reconcile pass {} done in {} ms: {} object(s), {} orphan(s) removed, {} "
                "download(s) queued",
                kind, run.request_id, report.duration_ms, report.bucket_objects, report.removed,
                report.queued);
          } else {
            spdlog::error("{} reconcile pass failed: {}", kind, ps.message());
          }
          ops_.OnReconcile(report, ps);
          if (report.queued > 0) work.Notify();
        }
      });
    }
    // Puts the reserve back once the file system has room again (twice the reserve free).
    std::thread disk_thread;
    if (reserve > 0) {
      disk_thread = std::thread([&] {
        while (!work.stopped()) {
          work.WaitStop(2000);
          Result<bool> has = rt->cache->HasReserve();
          if (!has.ok() || *has) continue;
          Result<uint64_t> free_bytes = rt->cache->FreeBytes();
          if (!free_bytes.ok() || *free_bytes < 2 * reserve) continue;
          Status rs = rt->cache->EnsureReserve(reserve);
          has = rt->cache->HasReserve();
          if (rs.ok() && has.ok() && *has) {
            spdlog::info("the cache's file system has room again: disk-space reserve restored");
            work.Notify();  // downloads that waited for space
          }
        }
      });
    }
    // Temp files of downloads that died on any host (their claims expired) are removed.
    std::thread temp_thread([&] {
      while (!work.stopped()) {
        work.WaitStop(std::max<int64_t>(rt->state->claim_lease_ms() / 2, 2000));
        if (!work.stopped()) SweepStaleTemp(*rt);
      }
    });
    // State collection (--state-horizon): a minute after the start, then every hour.
    std::thread collector_thread([&] {
      for (int64_t wait = 60 * 1000; !work.stopped(); wait = 60 * 60 * 1000) {
        work.WaitStop(wait);
        if (!work.stopped()) (void)engine.CollectState();
      }
    });
    spdlog::info("delete-sync serving: cache {}, bucket {}, prefix '{}', {} fetch worker(s)",
                 common_.cache, common_.bucket.empty() ? "(any)" : common_.bucket, common_.prefix,
                 workers);

    int sig = 0;
    while (sigwait(&stop_signals, &sig) == 0 && sig == SIGHUP) {
      Status rs = ReopenLogFile();
      if (rs.ok()) {
        spdlog::info("SIGHUP: log file reopened");
      } else {
        spdlog::error("SIGHUP: {}", rs.message());
      }
      ReloadTls(wo.listener.tls, "--webhook-listen");
      ReloadTls(ops_.metrics_tls(), "--metrics-listen");
      if (tokens_from_file_) {
        // Token rotation: the file lists every token accepted from now on.
        Result<std::vector<std::string>> read = ReadTokenFile(token_file_);
        if (read.ok()) {
          server.tokens()->Replace(*read);
          spdlog::info("SIGHUP: the webhook accepts {} token(s) from {}", read->size(),
                       token_file_);
        } else {
          spdlog::error("SIGHUP: {}; the webhook keeps its tokens", read.status().message());
        }
      }
    }
    // In-flight requests finish; new ones get 503 + Retry-After until the listener closes.
    ops_.BeginDrain();
    server.BeginDrain();
    spdlog::info("received {}, stopping: no new requests; finishing downloads in progress",
                 sig == SIGINT ? "SIGINT" : "SIGTERM");
    server.Stop();
    amqp_stop = true;
    if (amqp_thread.joinable()) amqp_thread.join();
    ops_.set_amqp(nullptr);
    work.Stop();
    for (std::thread& t : fetchers) t.join();
    if (reconciler_thread.joinable()) reconciler_thread.join();
    if (disk_thread.joinable()) disk_thread.join();
    temp_thread.join();
    collector_thread.join();
    ops_.Stop();
    if (Status ms = (*marker)->Release(); !ms.ok()) spdlog::error("{}", ms.message());
    const EngineCounters& c = engine.counters();
    spdlog::info(
        "stopped: removed {}, absent {}, queued {}, published {}, ignored {}, refused {}, "
        "stale {}, failed {}",
        c.removed.load(), c.absent.load(), c.queued.load(), c.published.load(),
        c.ignored.load() + c.out_of_scope.load() + c.other_version.load(), c.refused.load(),
        c.stale.load(), c.failed.load() + c.fetch_failed.load());
    return RunEnd::kOk;
  }

 private:
  // Whether the cache holds anything of a previous run: a file or folder besides the reserved
  // folder, or an audit log.
  bool CacheHasContent() const {
    std::error_code ec;
    if (std::filesystem::exists(CacheLayout(common_.cache).AuditLog(), ec)) return true;
    for (const auto& e : std::filesystem::directory_iterator(common_.cache, ec)) {
      if (e.path().filename() != kReservedDir) return true;
    }
    return false;
  }
  // The folder of the state database: the run markers live beside it.
  std::string StateFolder() const {
    if (common_.state.empty()) return CacheLayout(common_.cache).ReservedDir();
    std::string::size_type slash = common_.state.rfind('/');
    return slash == std::string::npos ? "." : common_.state.substr(0, slash);
  }

  CLI::App* cmd_ = nullptr;
  std::unique_ptr<Settings> settings_;
  CommonSettings common_;
  std::vector<std::string> sns_topics_;
  std::string listen_, token_, token_file_, max_body_, fetch_concurrency_, reconcile_every_,
      reconcile_at_start_, webhook_workers_, backlog_, request_timeout_, max_connections_,
      max_unauthenticated_;
  ReconcileSettings reconcile_;
  TlsSettings tls_{"webhook", "--webhook-listen"};
  OpsService ops_;
  AmqpSettings amqp_;
  // Checked by Check().
  bool webhook_on_ = true, never_at_start_ = false, reconcile_at_start_on_ = true;
  bool tokens_from_file_ = false;
  WebhookOptions wo_;
  AmqpConsumerOptions amqp_opts_;
  int64_t workers_ = 4, reconcile_every_ms_ = 0;
  ReconcileOptions ro_;
  RuntimeOptions runtime_options_;
};

}  // namespace

std::unique_ptr<Command> MakeServeCommand() { return std::make_unique<ServeCommand>(); }

}  // namespace ds::app
