// Operator endpoints (GET /metrics, /readyz, /, /status.json) served on the webhook port and,
// with --metrics-listen, on a separate GET-only port.
//
// On the webhook port, routes marked `needs_token` require the webhook token. On the separate
// port they require it too unless that port listens on a loopback address (127.0.0.0/8, ::1,
// localhost): only local processes (a Prometheus agent on the host) reach it. The routes are
// answered by the listener's operator workers, apart from the workers that apply documents:
// /readyz answers while every one of those is busy.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "transport/http_listener.h"

namespace ds {

struct OpsReply {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  int retry_after_s = 0;  // > 0: a Retry-After header
};

struct OpsRoute {
  std::string path;  // exact path
  bool needs_token = true;
  std::function<OpsReply()> handler;
};

// True for 127.0.0.0/8, ::1 ("[::1]" too) and "localhost".
bool IsLoopbackHost(const std::string& host);

// The admission of a GET for one of `routes` (nullopt when the request is not one): 401 when
// the route needs a token (and `require_token`) and the head has none of `tokens`; else the
// operator lane.
std::optional<Admission> AdmitOpsRoute(const std::vector<OpsRoute>& routes, const RequestHead& head,
                                       const TokenSet& tokens, bool require_token);
// The reply of the route the head names (404 when none).
HttpReply ReplyOfOpsRoute(const std::vector<OpsRoute>& routes, const RequestHead& head);
// 401 with WWW-Authenticate: Bearer.
HttpReply Unauthorised();

// The GET-only server of --metrics-listen.
class OpsServer : private HttpHandler {
 public:
  OpsServer(std::vector<OpsRoute> routes, ListenerOptions listen, std::string token);
  // With the webhook's token set, so that a rotation (SIGHUP) applies here too.
  OpsServer(std::vector<OpsRoute> routes, ListenerOptions listen,
            std::shared_ptr<const TokenSet> tokens);
  ~OpsServer() override;
  Status Start();
  void Stop();
  int port() const { return listener_.port(); }
  bool requires_token() const { return require_token_; }

 private:
  Admission Admit(const RequestHead& head) override;
  HttpReply Handle(const RequestHead& head, std::string body) override;

  std::vector<OpsRoute> routes_;
  std::string host_;
  std::shared_ptr<const TokenSet> tokens_;
  bool require_token_;
  HttpListener listener_;
};

}  // namespace ds
