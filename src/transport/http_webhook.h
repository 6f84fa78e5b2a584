// The HTTP webhook transport: Ceph RGW and MinIO POST notification documents here.
//
//   POST <any path>   a notification document. 200 only after its effect is durable
//                     (removals applied, creations journaled); 400 malformed; 401 without the
//                     token; 413 over the size limit; 500 when applying failed (retry).
//   POST /erase       an erasure request (docs/ERASURE.md); the reply is the receipt: 200 when
//                     everything was verified gone, 500 when not, 400 for a bad request.
//   GET  /healthz     200 "ok" without a token (liveness for load balancers / systemd).
//   GET  other        the operator routes given with set_ops_routes (transport/ops_http.h).
// While draining (BeginDrain, on SIGTERM) POSTs answer 503 with Retry-After: the sender retries
// against the next instance or after the restart.
//
// With an SnsGate (set_sns_gate), a body that is an SNS envelope is screened first
// (core/sns.h): a verified or unverified Notification is applied as above; a confirmed
// SubscriptionConfirmation or an UnsubscribeConfirmation is answered 200 {"sns":...}; a refused
// envelope 403 {"error","refusal"}; a malformed one 400; one that could not be checked now (the
// certificate or the SubscribeURL did not answer) 503. Nothing changes unless it is applied.
//
// The token is accepted as "Authorization: Bearer <token>" (the scheme in any case) or as the
// query parameter "token=<token>" (RGW's push-endpoint can only carry it in the URL). Compared
// in constant time, as soon as the request's head is in: a request without it is answered 401
// without reading its body. The listener (http_listener.h) keeps slow and unauthenticated
// clients from holding the workers that apply documents.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "core/documents.h"
#include "core/engine.h"
#include "core/sns.h"
#include "transport/http_listener.h"
#include "transport/ops_http.h"

namespace ds {

struct WebhookOptions {
  // Address, workers and the limits on slow and unauthenticated clients (http_listener.h).
  ListenerOptions listener;
  std::string token;  // required unless `tokens` is set
  // Several tokens at once (rotation), replaceable while serving; when set, `token` is unused.
  std::shared_ptr<TokenSet> tokens;
};

// The JSON answer to one document, and the status code to send.
struct WebhookReply {
  int status = 200;
  std::string body;
  int64_t queued = 0;  // downloads journaled by this document
};

// The HTTP status of a settlement (core/documents.h): 200, 422 refused, 400 malformed, 500 retry.
int HttpStatusOf(Settlement s);
// The reply to a document: its status and a JSON summary (events, applied, queued, ignored,
// refused, failed, the refused and failed keys, an error for anything but 200).
WebhookReply ReplyFor(const DocumentResult& result);
// Applies one notification document with `engine` (ApplyDocuments) and builds the reply.
// Separate from the server so that it can be tested without sockets.
WebhookReply HandleNotification(Engine& engine, const std::string& body);
// The reply to an SNS envelope that is not applied (confirmed, unsubscribed, refused, malformed,
// retry); nullopt when the body is to be applied (kNotSns, kUnverified, kVerified).
std::optional<WebhookReply> ReplyForSns(const SnsDecision& d);
// A notification POST: screened by `gate` when not null, then applied with HandleNotification
// (a verified SNS Notification: only its signed Message).
WebhookReply HandleWebhookPost(Engine& engine, SnsGate* gate, const std::string& body);

class WebhookServer : private HttpHandler {
 public:
  // `on_queued` is called after a document queued at least one download (wakes fetch workers).
  WebhookServer(Engine& engine, WebhookOptions opts, std::function<void()> on_queued);
  ~WebhookServer() override;

  // Handles POST /erase (after the token check). Without one, /erase answers 404.
  void set_erase_handler(std::function<WebhookReply(const std::string& body)> handler) {
    erase_handler_ = std::move(handler);
  }

  // Screens SNS envelopes (null: none, every body is applied as a document). Set before Start;
  // must outlive the server.
  void set_sns_gate(SnsGate* gate) { sns_gate_ = gate; }

  // GET routes for operators (/metrics, /readyz, /): set before Start.
  void set_ops_routes(std::vector<OpsRoute> routes) { ops_routes_ = std::move(routes); }

  // From now on POSTs answer 503 + Retry-After; requests already running finish.
  void BeginDrain() { draining_ = true; }
  bool draining() const { return draining_; }
  // Requests being handled now.
  int64_t inflight() const { return inflight_; }
  // The listener's counts (connections, busy workers, slow clients cut, 401s).
  ListenerStats Stats() const { return listener_.Stats(); }
  int workers() const { return listener_.workers(); }
  // The TLS credentials served (null: plain HTTP).
  const std::shared_ptr<TlsCredentials>& tls() const { return opts_.listener.tls; }

  // Binds and starts serving. Fails with a clear message when the address is taken or the
  // token is empty.
  Status Start();
  void Stop();
  int port() const { return listener_.port(); }
  // The tokens accepted now (shared with --metrics-listen; Replace it to rotate).
  std::shared_ptr<TokenSet> tokens() const { return tokens_; }

 private:
  Admission Admit(const RequestHead& head) override;
  HttpReply Handle(const RequestHead& head, std::string body) override;

  Engine& engine_;
  WebhookOptions opts_;
  std::shared_ptr<TokenSet> tokens_;
  std::function<void()> on_queued_;
  std::function<WebhookReply(const std::string& body)> erase_handler_;
  std::vector<OpsRoute> ops_routes_;
  SnsGate* sns_gate_ = nullptr;
  std::atomic<bool> draining_{false};
  std::atomic<int64_t> inflight_{0};
  HttpListener listener_;
};

}  // namespace ds
