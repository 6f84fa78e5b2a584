#include "transport/ops_http.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <spdlog/spdlog.h>

#include "transport/http_webhook.h"

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

bool RequestHasToken(const httplib::Request& req, const std::string& token) {
  std::string auth = req.get_header_value("Authorization");
  const std::string bearer = "Bearer ";
  if (auth.compare(0, bearer.size(), bearer) == 0 &&
      TokenMatches(auth.substr(bearer.size()), token)) {
    return true;
  }
  return req.has_param("token") && TokenMatches(req.get_param_value("token"), token);
}

void AddOpsRoutes(httplib::Server& srv, const std::vector<OpsRoute>& routes,
                  const std::string& token, bool require_token) {
  for (const OpsRoute& route : routes) {
    bool check = require_token && route.needs_token;
    std::function<OpsReply()> handler = route.handler;
    srv.Get(route.path,
            [check, handler, token](const httplib::Request& req, httplib::Response& res) {
              if (check && !RequestHasToken(req, token)) {
                spdlog::warn("unauthorised GET {} from {} (missing or wrong token)", req.path,
                             req.remote_addr);
                res.status = 401;
                res.set_header("WWW-Authenticate", "Bearer");
                res.set_content(R"({"error":"missing or wrong token"})", "application/json");
                return;
              }
              OpsReply reply = handler();
              res.status = reply.status;
              if (reply.retry_after_s > 0)
                res.set_header("Retry-After", std::to_string(reply.retry_after_s));
              res.set_header("Cache-Control", "no-store");
              res.set_content(reply.body, reply.content_type);
            });
  }
}

OpsServer::OpsServer(std::vector<OpsRoute> routes, std::string host, int port, std::string token)
    : routes_(std::move(routes)),
      host_(std::move(host)),
      port_(port),
      token_(std::move(token)),
      require_token_(!IsLoopbackHost(host_)) {}

OpsServer::~OpsServer() { Stop(); }

Status OpsServer::Start() {
  if (require_token_ && token_.empty()) {
    return Status::Invalid("a non-loopback --metrics-listen needs the webhook token");
  }
  server_ = std::make_unique<httplib::Server>();
  server_->new_task_queue = [] { return new httplib::ThreadPool(2); };
  server_->set_read_timeout(10, 0);
  server_->set_write_timeout(10, 0);
  server_->set_keep_alive_timeout(2);
  AddOpsRoutes(*server_, routes_, token_, require_token_);
  if (port_ == 0) {
    port_ = server_->bind_to_any_port(host_);
    if (port_ <= 0) return Status::Unavailable("cannot bind --metrics-listen on " + host_);
  } else if (!server_->bind_to_port(host_, port_)) {
    return Status::Unavailable("cannot listen on " + host_ + ":" + std::to_string(port_) +
                               " (--metrics-listen: address in use or not available)");
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  spdlog::info("metrics and status listening on http://{}:{}/ ({})", host_, port_,
               require_token_ ? "token required" : "loopback, no token");
  return Status::Ok();
}

void OpsServer::Stop() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace ds
