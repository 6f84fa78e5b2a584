#include "transport/http_webhook.h"

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

HttpReply JsonReply(int status, std::string body) {
  HttpReply r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

}  // namespace

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

std::optional<WebhookReply> ReplyForSns(const SnsDecision& d) {
  using nlohmann::json;
  using Kind = SnsDecision::Kind;
  switch (d.kind) {
    case Kind::kNotSns:
    case Kind::kUnverified:
    case Kind::kVerified:
      return std::nullopt;
    case Kind::kConfirmed:
      return WebhookReply{200, Dump(json{{"sns", "confirmed"}, {"topic", d.topic_arn}}), 0};
    case Kind::kUnsubscribed:
      return WebhookReply{200, Dump(json{{"sns", "unsubscribed"}, {"topic", d.topic_arn}}), 0};
    case Kind::kRefused:
      return WebhookReply{
          403,
          Dump(json{{"error", "SNS message refused: " + d.detail},
                    {"refusal", SnsRefusalName(d.refusal.value_or(SnsRefusal::kUnsigned))},
                    {"topic", d.topic_arn}}),
          0};
    case Kind::kMalformed:
      return WebhookReply{400, Dump(json{{"error", "malformed notification: " + d.detail}}), 0};
    case Kind::kRetry:
      return WebhookReply{503, Dump(json{{"error", "SNS message not checked now: " + d.detail}}),
                          0};
  }
  return std::nullopt;
}

WebhookReply HandleWebhookPost(Engine& engine, SnsGate* gate, const std::string& body) {
  if (gate != nullptr) {
    const SnsDecision d = gate->Screen(body);
    if (std::optional<WebhookReply> r = ReplyForSns(d)) return *r;
    // Only what the signature covers is applied.
    if (d.kind == SnsDecision::Kind::kVerified) {
      return HandleNotification(engine, d.verified_document);
    }
  }
  return HandleNotification(engine, body);
}

namespace {

ListenerOptions WebhookListenerOptions(ListenerOptions o) {
  o.setting = "--webhook-listen";
  return o;
}

}  // namespace

WebhookServer::WebhookServer(Engine& engine, WebhookOptions opts, std::function<void()> on_queued)
    : engine_(engine),
      opts_(std::move(opts)),
      tokens_(opts_.tokens ? opts_.tokens
                           : std::make_shared<TokenSet>(std::vector<std::string>{opts_.token})),
      on_queued_(std::move(on_queued)),
      listener_(WebhookListenerOptions(opts_.listener), *this) {}

WebhookServer::~WebhookServer() { Stop(); }

Status WebhookServer::Start() {
  if (tokens_->size() == 0) {
    return Status::Invalid(
        "the webhook needs a token: set --webhook-token (or DELETE_SYNC_WEBHOOK_TOKEN)");
  }
  DS_RETURN_IF_ERROR(listener_.Start());
  spdlog::info("webhook listening on {} ({} workers)",
               ListenerUrl(opts_.listener, listener_.port()), listener_.workers());
  return Status::Ok();
}

void WebhookServer::Stop() { listener_.Stop(); }

Admission WebhookServer::Admit(const RequestHead& head) {
  Admission a;
  if (head.method == "GET" || head.method == "HEAD") {
    if (head.path == "/healthz") {  // liveness: no token, answered on the I/O thread
      HttpReply ok;
      ok.content_type = "text/plain";
      ok.body = "ok\n";
      a.reply = ok;
      return a;
    }
    if (std::optional<Admission> ops = AdmitOpsRoute(ops_routes_, head, *tokens_, true)) {
      return *ops;
    }
    a.reply = JsonReply(404, R"({"error":"no such route"})");
    return a;
  }
  if (head.method != "POST") {
    a.reply = JsonReply(405, "{\"error\":\"" + head.method + " is not served here\"}");
    a.reply->headers.push_back({"Allow", "GET, POST"});
    return a;
  }
  if (draining_) {  // the sender retries against the next instance or after the restart
    a.reply = JsonReply(503, R"({"error":"the service is stopping; retry"})");
    a.reply->headers.push_back({"Retry-After", "5"});
    return a;
  }
  if (!tokens_->Accepts(head)) {
    a.reply = Unauthorised();
    return a;
  }
  a.authenticated = true;
  if (head.path == "/erase" && !erase_handler_) {
    a.reply = JsonReply(404, R"({"error":"erasure is not enabled on this service"})");
  }
  return a;
}

HttpReply WebhookServer::Handle(const RequestHead& head, std::string body) {
  if (head.method != "POST") return ReplyOfOpsRoute(ops_routes_, head);
  InflightScope inflight(inflight_);
  if (head.path == "/erase") {
    WebhookReply reply = erase_handler_(body);
    return JsonReply(reply.status, std::move(reply.body));
  }
  WebhookReply reply = HandleWebhookPost(engine_, sns_gate_, body);
  HttpReply r = JsonReply(reply.status, std::move(reply.body));
  if (reply.status == 503) r.headers.push_back({"Retry-After", "5"});
  // The downloads start once the answer is out: the sender (RGW's PUT) is not kept waiting by
  // them, and a download that fails (or crashes the process) cannot cost a durable document
  // its answer.
  if (reply.queued > 0 && on_queued_) r.after = on_queued_;
  return r;
}

}  // namespace ds
