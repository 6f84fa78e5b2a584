#include "transport/ops_http.h"

#include <arpa/inet.h>
#include <spdlog/spdlog.h>

namespace ds {

bool IsLoopbackHost(const std::string& host) {
  std::string h = host;
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  if (h == "localhost") return true;
  in_addr v4{};
  if (inet_pton(AF_INET, h.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (inet_pton(AF_INET6, h.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;
}

HttpReply Unauthorised() {
  HttpReply r;
  r.status = 401;
  r.headers.push_back({"WWW-Authenticate", "Bearer"});
  r.body = R"({"error":"missing or wrong token"})";
  r.close = true;
  return r;
}

namespace {

const OpsRoute* Find(const std::vector<OpsRoute>& routes, const std::string& path) {
  for (const OpsRoute& r : routes) {
    if (r.path == path) return &r;
  }
  return nullptr;
}

}  // namespace

std::optional<Admission> AdmitOpsRoute(const std::vector<OpsRoute>& routes, const RequestHead& head,
                                       const TokenSet& tokens, bool require_token) {
  if (head.method != "GET" && head.method != "HEAD") return std::nullopt;
  const OpsRoute* route = Find(routes, head.path);
  if (route == nullptr) return std::nullopt;
  Admission a;
  a.lane = Lane::kOperators;
  bool has_token = tokens.Accepts(head);
  if (require_token && route->needs_token && !has_token) {
    a.reply = Unauthorised();
    return a;
  }
  a.authenticated = has_token || !require_token;
  return a;
}

HttpReply ReplyOfOpsRoute(const std::vector<OpsRoute>& routes, const RequestHead& head) {
  HttpReply r;
  const OpsRoute* route = Find(routes, head.path);
  if (route == nullptr) {
    r.status = 404;
    r.body = R"({"error":"no such route"})";
    return r;
  }
  OpsReply reply = route->handler();
  r.status = reply.status;
  r.content_type = reply.content_type;
  r.body = std::move(reply.body);
  if (reply.retry_after_s > 0)
    r.headers.push_back({"Retry-After", std::to_string(reply.retry_after_s)});
  r.headers.push_back({"Cache-Control", "no-store"});
  return r;
}

namespace {

ListenerOptions OpsListenerOptions(ListenerOptions o) {
  o.workers = 1;  // the routes run on the operator lane
  return o;
}

}  // namespace

OpsServer::OpsServer(std::vector<OpsRoute> routes, ListenerOptions listen, std::string token)
    : OpsServer(std::move(routes), std::move(listen),
                std::make_shared<const TokenSet>(std::vector<std::string>{std::move(token)})) {}

OpsServer::OpsServer(std::vector<OpsRoute> routes, ListenerOptions listen,
                     std::shared_ptr<const TokenSet> tokens)
    : routes_(std::move(routes)),
      host_(listen.host),
      tokens_(std::move(tokens)),
      require_token_(!IsLoopbackHost(host_)),
      listener_(OpsListenerOptions(std::move(listen)), *this) {}

OpsServer::~OpsServer() { Stop(); }

Status OpsServer::Start() {
  if (require_token_ && tokens_->size() == 0) {
    return Status::Invalid("a non-loopback --metrics-listen needs the webhook token");
  }
  DS_RETURN_IF_ERROR(listener_.Start());
  spdlog::info("metrics and status listening on {} ({})",
               ListenerUrl(listener_.options(), listener_.port()),
               require_token_ ? "token required" : "loopback, no token");
  return Status::Ok();
}

void OpsServer::Stop() { listener_.Stop(); }

Admission OpsServer::Admit(const RequestHead& head) {
  if (std::optional<Admission> a = AdmitOpsRoute(routes_, head, *tokens_, require_token_))
    return *a;
  Admission a;
  HttpReply r;
  bool get = head.method == "GET" || head.method == "HEAD";
  r.status = get ? 404 : 405;
  r.body = get ? R"({"error":"no such route"})" : R"({"error":"only GET is served here"})";
  if (!get) r.headers.push_back({"Allow", "GET"});
  a.reply = r;
  return a;
}

HttpReply OpsServer::Handle(const RequestHead& head, std::string) {
  return ReplyOfOpsRoute(routes_, head);
}

}  // namespace ds
