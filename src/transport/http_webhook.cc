#include "transport/http_webhook.h"

#include <httplib.h>
#include <openssl/crypto.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>
#include <optional>

#include "core/key_path.h"

namespace ds {
namespace {

// Counts a request as in flight while it is handled.
class InflightScope {
 public:
  explicit InflightScope(std::atomic<int64_t>& n) : n_(n) { ++n_; }
  ~InflightScope() { --n_; }
  InflightScope(const InflightScope&) = delete;
  InflightScope& operator=(const InflightScope&) = delete;

 private:
  std::atomic<int64_t>& n_;
};

// httplib hands each accepted connection to the task queue, and a worker keeps it for as long
// as the sender keeps it alive, waiting up to the keep-alive timeout between requests. A sender
// that opens a connection per request and leaves it open holds every worker idle for that
// long while the next connections wait in the queue: RGW 16.2's persistent topics open
// hundreds at once, and 8 workers with a 2 s timeout took 4 events/s, long enough for RGW to
// time out and send the same events again. So the queue counts its connections (waiting or
// being served), and while some connection waits for a worker the answers carry
// "Connection: close": the sender closes, the worker is free for the next connection. A
// single sender on a kept-alive connection (the usual case) is not affected.
class CountingPool : public httplib::TaskQueue {
 public:
  CountingPool(size_t threads, std::atomic<int64_t>& connections)
      : pool_(threads), connections_(connections) {}
  void enqueue(std::function<void()> fn) override {
    ++connections_;
    pool_.enqueue([this, fn = std::move(fn)] {
      fn();
      --connections_;
    });
  }
  void shutdown() override { pool_.shutdown(); }

 private:
  httplib::ThreadPool pool_;
  std::atomic<int64_t>& connections_;
};

// 503 + Retry-After while the service stops.
bool RefuseWhileDraining(const std::atomic<bool>& draining, httplib::Response& res) {
  if (!draining) return false;
  res.status = 503;
  res.set_header("Retry-After", "5");
  res.set_content(R"({"error":"the service is stopping; retry"})", "application/json");
  return true;
}

}  // namespace

bool TokenMatches(const std::string& presented, const std::string& expected) {
  if (expected.empty() || presented.size() != expected.size()) return false;
  return CRYPTO_memcmp(presented.data(), expected.data(), expected.size()) == 0;
}

namespace {

std::string Dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

int HttpStatusOf(Settlement s) {
  switch (s) {
    case Settlement::kDurable:
      return 200;
    case Settlement::kRefused:
      return 422;  // retrying cannot help; the refusal is logged and counted
    case Settlement::kMalformed:
      return 400;
    case Settlement::kRetry:
      return 500;  // nothing durable for some events: the sender must retry
  }
  return 500;
}

WebhookReply ReplyFor(const DocumentResult& d) {
  using nlohmann::json;
  if (d.settlement == Settlement::kMalformed) {
    return {HttpStatusOf(d.settlement), Dump(json{{"error", d.error}}), 0};
  }
  json out = {{"events", d.events},   {"applied", d.applied},
              {"queued", d.queued},   {"ignored", d.ignored + d.test_events},
              {"refused", d.refused}, {"failed", d.failed}};
  auto list = [](const std::vector<KeyProblem>& problems) {
    json a = json::array();
    for (const KeyProblem& p : problems)
      a.push_back({{"key", PrintableKey(p.key)}, {"error", p.error}});
    return a;
  };
  if (!d.refusals.empty()) out["refusals"] = list(d.refusals);
  if (!d.failures.empty()) out["failures"] = list(d.failures);
  if (d.settlement == Settlement::kRetry) {
    out["error"] = "some events could not be applied; retry";
  } else if (d.settlement == Settlement::kRefused) {
    out["error"] = "some keys cannot be cache paths and were refused";
  }
  return {HttpStatusOf(d.settlement), Dump(out), d.queued};
}

WebhookReply HandleNotification(Engine& engine, const std::string& body) {
  return ReplyFor(ApplyDocuments(engine, {body})[0]);
}

WebhookServer::WebhookServer(Engine& engine, WebhookOptions opts, std::function<void()> on_queued)
    : engine_(engine), opts_(std::move(opts)), on_queued_(std::move(on_queued)) {}

WebhookServer::~WebhookServer() { Stop(); }

Status WebhookServer::Start() {
  if (opts_.token.empty()) {
    return Status::Invalid(
        "the webhook needs a token: set --webhook-token (or DELETE_SYNC_WEBHOOK_TOKEN)");
  }
  server_ = std::make_unique<httplib::Server>();
  httplib::Server& srv = *server_;
  int threads = opts_.threads;
  srv.new_task_queue = [this, threads] {
    return new CountingPool(static_cast<size_t>(threads), connections_);
  };
  srv.set_post_routing_handler([this, threads](const httplib::Request&, httplib::Response& res) {
    if (connections_.load() > threads) res.set_header("Connection", "close");
  });
  srv.set_payload_max_length(opts_.max_body);
  srv.set_read_timeout(opts_.read_timeout_s, 0);
  srv.set_write_timeout(30, 0);
  srv.set_keep_alive_timeout(2);  // bounds how long a stop waits for idle keep-alive senders
  // httplib writes an answer's headers and body separately: with Nagle's algorithm the body
  // waits for the sender's delayed ACK of the headers (up to 40 ms on Linux), and RGW holds
  // the client's S3 call for the whole answer.
  srv.set_tcp_nodelay(true);

  srv.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain");
  });

  auto authorised = [this](const httplib::Request& req) {
    std::string auth = req.get_header_value("Authorization");
    const std::string bearer = "Bearer ";
    if (auth.compare(0, bearer.size(), bearer) == 0 &&
        TokenMatches(auth.substr(bearer.size()), opts_.token)) {
      return true;
    }
    return req.has_param("token") && TokenMatches(req.get_param_value("token"), opts_.token);
  };

  AddOpsRoutes(srv, ops_routes_, opts_.token, /*require_token=*/true);

  srv.Post("/erase", [this, authorised](const httplib::Request& req, httplib::Response& res) {
    InflightScope inflight(inflight_);
    if (RefuseWhileDraining(draining_, res)) return;
    if (!authorised(req)) {
      spdlog::warn("webhook: unauthorised POST /erase from {}", req.remote_addr);
      res.status = 401;
      res.set_header("WWW-Authenticate", "Bearer");
      res.set_content(R"({"error":"missing or wrong token"})", "application/json");
      return;
    }
    if (!erase_handler_) {
      res.status = 404;
      res.set_content(R"({"error":"erasure is not enabled on this service"})", "application/json");
      return;
    }
    WebhookReply reply = erase_handler_(req.body);
    res.status = reply.status;
    res.set_content(reply.body, "application/json");
  });

  srv.Post(R"(/.*)", [this, authorised](const httplib::Request& req, httplib::Response& res) {
    InflightScope inflight(inflight_);
    if (RefuseWhileDraining(draining_, res)) return;
    if (!authorised(req)) {
      spdlog::warn("webhook: unauthorised POST {} from {} (missing or wrong token)", req.path,
                   req.remote_addr);
      res.status = 401;
      res.set_header("WWW-Authenticate", "Bearer");
      res.set_content(R"({"error":"missing or wrong token"})", "application/json");
      return;
    }
    WebhookReply reply = HandleNotification(engine_, req.body);
    res.status = reply.status;
    res.set_content(reply.body, "application/json");
    if (reply.queued > 0 && on_queued_) on_queued_();
  });

  // Anything else (other methods, GETs other than /healthz) answers 404/405 by httplib.
  srv.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (res.status == 413) {
      res.set_content(R"j({"error":"request body over the size limit (--webhook-max-body)"})j",
                      "application/json");
    } else if (res.body.empty()) {
      res.set_content("{\"error\":\"" + std::to_string(res.status) + " for " + req.method + "\"}",
                      "application/json");
    }
  });

  if (opts_.port == 0) {
    port_ = srv.bind_to_any_port(opts_.host);
    if (port_ <= 0) return Status::Unavailable("cannot bind the webhook on " + opts_.host);
  } else {
    if (!srv.bind_to_port(opts_.host, opts_.port)) {
      return Status::Unavailable("cannot listen on " + opts_.host + ":" +
                                 std::to_string(opts_.port) + " (address in use or not available)");
    }
    port_ = opts_.port;
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  spdlog::info("webhook listening on http://{}:{}/", opts_.host, port_);
  return Status::Ok();
}

void WebhookServer::Stop() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace ds
