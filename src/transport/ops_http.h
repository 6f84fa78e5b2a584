// Operator endpoints (GET /metrics, /readyz, /, /status.json) served on the webhook port and,
// with --metrics-listen, on a separate GET-only port.
//
// On the webhook port, routes marked `needs_token` require the webhook token. On the separate
// port they require it too unless that port listens on a loopback address (127.0.0.0/8, ::1,
// localhost): only local processes (a Prometheus agent on the host) reach it.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"

namespace httplib {
class Server;
struct Request;
}  // namespace httplib

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

// Whether a request carries `token` (Authorization: Bearer, or ?token=), constant time.
bool RequestHasToken(const httplib::Request& req, const std::string& token);

// Registers `routes` as GET handlers on `srv`. `require_token`: whether routes marked
// needs_token check the token.
void AddOpsRoutes(httplib::Server& srv, const std::vector<OpsRoute>& routes,
                  const std::string& token, bool require_token);

// The GET-only server of --metrics-listen.
class OpsServer {
 public:
  OpsServer(std::vector<OpsRoute> routes, std::string host, int port, std::string token);
  ~OpsServer();
  Status Start();
  void Stop();
  int port() const { return port_; }
  bool requires_token() const { return require_token_; }

 private:
  std::vector<OpsRoute> routes_;
  std::string host_;
  int port_;
  std::string token_;
  bool require_token_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
};

}  // namespace ds
