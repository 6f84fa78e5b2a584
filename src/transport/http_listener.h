// An HTTP listener that serves its authenticated senders first (issue 19), shared by the
// webhook and the --metrics-listen port. Built on libmicrohttpd's event loop: a connection
// costs a file descriptor and a little memory while its request arrives, never a thread, so
// slow or idle clients cannot hold the workers that apply documents.
//
// The life of a request:
//   1. The I/O thread reads the request line and headers and calls HttpHandler::Admit at once.
//      Admit decides authentication and may answer right away (401, 404, 503 while draining,
//      /healthz): the body of a request answered that way is never read and the connection is
//      closed after the answer.
//   2. Otherwise the body is read (Content-Length required for a body: 411 without it; 413
//      over max_body, without reading it) and the request is handed to a worker of its lane:
//      kSenders (notification documents, erasure requests; `workers` threads) or kOperators
//      (metrics, readiness, status page; two threads), so that operators' probes are answered
//      while every sender worker is busy.
//   3. The worker's reply is sent; the connection stays open for the next request unless the
//      reply or the client asks to close.
//
// Limits against slow and unauthenticated clients:
//   - A connection that has not shown the token (unauthenticated) must deliver a complete
//     request head within `request_timeout_s` of connecting, and an admitted request its body
//     within `request_timeout_s` of its head: a client that dribbles bytes is disconnected.
//   - At most `max_unauthenticated` unauthenticated connections, `max_unauthenticated_per_address`
//     from one address: past either, the oldest such connection is closed to make room, so a
//     flood of them cannot keep a sender's new connection out (a sender shows its token in its
//     first packet).
//   - At most `max_connections` connections in all; kept-alive idle connections are closed after
//     `idle_timeout_s`.
//   - The listening socket is exclusive (no SO_REUSEPORT): a second listener on the same address
//     fails to start ("cannot listen on HOST:PORT: in use").
//
// TLS (ListenerOptions::tls): every connection is TLS 1.2 or 1.3 with the credentials' current
// certificate (replaced for new handshakes by TlsCredentials::Reload). A client that speaks
// plain HTTP gets no HTTP answer: its bytes fail the handshake and the connection is closed.
// The handshake counts against the connection's request_timeout_s like the head does. With a
// client CA, a request from a connection without an accepted client certificate is answered
// 403 and the connection closed, before Admit is called (so before the token is looked at).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace ds {

class TlsCredentials;

struct HttpReply {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  bool close = false;  // "Connection: close" after this reply
  // Called once the reply went out (or the client went away), on the I/O thread; must be
  // quick. The webhook wakes the fetch workers here, so that a download never races its
  // document's answer.
  std::function<void()> after;
};

// What is known of a request once its line and headers are in.
struct RequestHead {
  std::string method;
  std::string path;  // without the query
  std::string remote_addr;
  std::string authorization;               // the Authorization header ("" without one)
  std::optional<std::string> token_param;  // the query parameter token=
  std::optional<uint64_t> content_length;  // nullopt: no (valid) Content-Length
  bool chunked = false;                    // Transfer-Encoding: chunked
};

// Constant-time comparison of a presented token with the configured one; an empty configured
// token never matches.
bool TokenMatches(const std::string& presented, const std::string& expected);

// Whether a request head carries `token`: "Authorization: Bearer <token>" (the scheme in any
// case, RFC 7235) or the query parameter token=<token>. Constant-time comparison.
bool HeadHasToken(const RequestHead& head, const std::string& token);

// The tokens a listener accepts: one, or several while a token is being rotated (the old one
// until every sender has the new one). Replaceable while serving (SIGHUP re-reads
// --webhook-token-file); safe from any thread.
class TokenSet {
 public:
  explicit TokenSet(std::vector<std::string> tokens = {}) { Replace(std::move(tokens)); }
  // Empty tokens are dropped.
  void Replace(std::vector<std::string> tokens);
  // Whether the head carries one of the tokens (HeadHasToken, each compared in constant time).
  bool Accepts(const RequestHead& head) const;
  size_t size() const;

 private:
  mutable std::mutex mu_;
  std::vector<std::string> tokens_;
};

enum class Lane { kSenders, kOperators };

struct Admission {
  // Set: sent now, the body is not read. Unset: the body is read and Handle is called.
  std::optional<HttpReply> reply;
  // The head showed the token: the connection is no longer counted as unauthenticated.
  bool authenticated = false;
  Lane lane = Lane::kSenders;
};

class HttpHandler {
 public:
  virtual ~HttpHandler() = default;
  // On the I/O thread, as soon as the request line and headers are in. Must not block.
  virtual Admission Admit(const RequestHead& head) = 0;
  // On a worker of the admitted lane, with the whole body.
  virtual HttpReply Handle(const RequestHead& head, std::string body) = 0;
};

struct ListenerOptions {
  std::string host = "127.0.0.1";
  int port = 0;                              // 0 picks a free port (see port())
  std::string setting = "--webhook-listen";  // named in errors
  int workers = 8;                           // the sender lane
  int backlog = 1024;                        // listen(2) backlog
  int max_connections = 1000;
  int max_unauthenticated = 256;
  int max_unauthenticated_per_address = 32;
  int request_timeout_s = 10;
  int idle_timeout_s = 60;
  uint64_t max_body = 8ull * 1024 * 1024;
  std::shared_ptr<TlsCredentials> tls;  // null: plain HTTP
};

// Counts since Start, for metrics and readiness.
struct ListenerStats {
  int64_t connections = 0;      // open now
  int64_t unauthenticated = 0;  // open now and not (yet) authenticated
  int64_t busy_workers = 0;     // sender workers handling a request now
  int64_t queued = 0;           // sender requests waiting for a worker
  int64_t timed_out = 0;        // connections closed for missing request_timeout_s
  int64_t evicted = 0;          // unauthenticated connections closed to make room
  int64_t unauthorised = 0;     // requests answered 401 (counted by the listener)
  int64_t no_client_cert = 0;   // requests answered 403 for want of an accepted client certificate
};

class HttpListener {
 public:
  HttpListener(ListenerOptions opts, HttpHandler& handler);
  ~HttpListener();
  HttpListener(const HttpListener&) = delete;
  HttpListener& operator=(const HttpListener&) = delete;

  // Binds (exclusively) and starts serving. kUnavailable with "cannot listen on HOST:PORT: in
  // use" (or the system's reason) when the address cannot be had.
  Status Start();
  // Stops accepting, lets the requests being handled finish, closes every connection.
  void Stop();
  int port() const { return port_; }
  int workers() const { return opts_.workers; }
  const ListenerOptions& options() const { return opts_; }
  // Safe to call from any thread, also while or after the listener stops.
  ListenerStats Stats() const;

  struct Impl;

 private:
  ListenerOptions opts_;
  HttpHandler& handler_;
  mutable std::mutex impl_mu_;  // guards impl_ against Stats() on other threads
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

// "http://HOST:PORT/" or "https://HOST:PORT/" (an IPv6 host in brackets), for logs.
std::string ListenerUrl(const ListenerOptions& opts, int port);

// Binds and listens on HOST:PORT without SO_REUSEPORT. Returns the descriptor and sets *port
// to the bound port (useful with port 0). The error names the address and `setting`.
Result<int> ListenExclusive(const std::string& host, int port, int backlog,
                            const std::string& setting, int* bound_port);

}  // namespace ds
