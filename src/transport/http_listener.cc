#include "transport/http_listener.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <netdb.h>
#include <openssl/crypto.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdarg>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include "transport/tls_credentials.h"

namespace ds {
namespace {

// How old an unauthenticated connection must be before it may be closed to make room.
constexpr int64_t kEvictionGraceMs = 1000;
// The largest body of an unauthenticated request read (and dropped) before its 401.
constexpr uint64_t kDrainUnauthenticatedBytes = 64 * 1024;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

bool EqualsIgnoringCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  }
  return true;
}

std::string AddressText(const sockaddr* sa) {
  if (sa == nullptr) return "?";
  char buf[INET6_ADDRSTRLEN] = "?";
  if (sa->sa_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, buf, sizeof buf);
  } else if (sa->sa_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, buf, sizeof buf);
  }
  return buf;
}

}  // namespace

// Named rather than anonymous: HttpListener::Impl holds Lanes (GCC's -Wsubobject-linkage when
// this file is compiled in a unity batch, where it counts as an included file).
namespace listener_internal {

// A fixed set of threads running queued jobs in order; counts the busy ones.
class Lanes {
 public:
  explicit Lanes(int threads) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Run(); });
  }
  ~Lanes() { Shutdown(); }
  void Enqueue(std::function<void()> job) {
    {
      std::lock_guard<std::mutex> l(mu_);
      jobs_.push_back(std::move(job));
    }
    cv_.notify_one();
  }
  // Runs what is queued, then joins the threads.
  void Shutdown() {
    {
      std::lock_guard<std::mutex> l(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (std::thread& t : threads_) {
      if (t.joinable()) t.join();
    }
    threads_.clear();
  }
  int64_t busy() const { return busy_; }
  int64_t queued() const {
    std::lock_guard<std::mutex> l(mu_);
    return static_cast<int64_t>(jobs_.size());
  }

 private:
  void Run() {
    while (true) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> l(mu_);
        cv_.wait(l, [this] { return stopping_ || !jobs_.empty(); });
        if (jobs_.empty()) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
        ++busy_;
      }
      job();
      --busy_;
    }
  }

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::atomic<int64_t> busy_{0};
  std::vector<std::thread> threads_;
};

}  // namespace listener_internal

bool TokenMatches(const std::string& presented, const std::string& expected) {
  if (expected.empty() || presented.size() != expected.size()) return false;
  return CRYPTO_memcmp(presented.data(), expected.data(), expected.size()) == 0;
}

bool HeadHasToken(const RequestHead& head, const std::string& token) {
  const std::string& auth = head.authorization;
  size_t space = auth.find(' ');
  if (space != std::string::npos && EqualsIgnoringCase(auth.substr(0, space), "Bearer")) {
    size_t start = auth.find_first_not_of(' ', space);
    if (start != std::string::npos && TokenMatches(auth.substr(start), token)) return true;
  }
  return head.token_param && TokenMatches(*head.token_param, token);
}

void TokenSet::Replace(std::vector<std::string> tokens) {
  std::vector<std::string> kept;
  for (std::string& t : tokens) {
    if (!t.empty()) kept.push_back(std::move(t));
  }
  std::lock_guard<std::mutex> l(mu_);
  tokens_ = std::move(kept);
}

bool TokenSet::Accepts(const RequestHead& head) const {
  std::lock_guard<std::mutex> l(mu_);
  bool ok = false;
  for (const std::string& t : tokens_) ok = HeadHasToken(head, t) || ok;  // no early exit
  return ok;
}

size_t TokenSet::size() const {
  std::lock_guard<std::mutex> l(mu_);
  return tokens_.size();
}

std::string ListenerUrl(const ListenerOptions& opts, int port) {
  const std::string host =
      opts.host.find(':') != std::string::npos ? "[" + opts.host + "]" : opts.host;
  return std::string(opts.tls ? "https://" : "http://") + host + ":" + std::to_string(port) + "/";
}

Result<int> ListenExclusive(const std::string& host, int port, int backlog,
                            const std::string& setting, int* bound_port) {
  const std::string where =
      (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found);
  if (rc != 0) {
    return Status::Invalid("cannot listen on " + where + ": " + gai_strerror(rc) + " (" + setting +
                           ")");
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> guard(found, freeaddrinfo);
  int err = 0;
  for (addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
    int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
      err = errno;
      continue;
    }
    // SO_REUSEADDR lets a restart bind while old connections linger in TIME_WAIT; it does not
    // let two processes listen on one address (SO_REUSEPORT would: not set).
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ai->ai_family == AF_INET6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || ::listen(fd, backlog) != 0) {
      err = errno;
      ::close(fd);
      continue;
    }
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
      *bound_port = ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                                   : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    }
    return fd;
  }
  std::string why;
  switch (err) {
    case EADDRINUSE:
      why = "in use (another process listens there)";
      break;
    case EADDRNOTAVAIL:
      why = "the address is not one of this host's";
      break;
    case EACCES:
      why = "permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)";
      break;
    default:
      why = std::strerror(err);
  }
  return Status::Unavailable("cannot listen on " + where + ": " + why + " (" + setting + ")");
}

// One TCP connection.
struct Conn {
  const TlsCredentials* tls = nullptr;  // the listener's, for the TLS handshake
  bool client_verified = false;         // its client certificate was accepted
  int fd = -1;
  std::string addr;
  uint64_t id = 0;
  int64_t since_ms = 0;  // connected, or (reading a body) the head arrived
  bool authenticated = false;
  bool reading_body = false;
  bool working = false;  // suspended while a worker handles its request
  bool cut = false;
  bool counted = false;  // in the unauthenticated counts
};

// One request on a connection.
struct Req {
  Conn* conn = nullptr;
  RequestHead head;
  std::string body;
  bool too_large = false;
  Lane lane = Lane::kSenders;
  // kDraining: the reply is decided (401, 413) and the body is read and dropped before it is
  // sent, so that the client, still sending, gets the answer rather than a reset connection.
  enum State { kReading, kDraining, kWorking, kDone } state = kReading;
  HttpReply reply;
};

struct HttpListener::Impl {
  Impl(const ListenerOptions& o, HttpHandler& h)
      : opts(o), handler(h), senders(o.workers), operators(2) {}

  const ListenerOptions& opts;
  HttpHandler& handler;
  MHD_Daemon* daemon = nullptr;
  listener_internal::Lanes senders;
  listener_internal::Lanes operators;

  // Connections by id (oldest first), shared by the I/O thread and the sweeper.
  mutable std::mutex mu;
  std::map<uint64_t, Conn*> conns;
  uint64_t next_id = 1;
  int64_t unauthenticated = 0;
  std::map<std::string, int64_t> unauthenticated_by_addr;
  std::atomic<int64_t> timed_out{0}, evicted{0}, unauthorised{0}, no_client_cert{0};
  std::atomic<int64_t> last_403_log_ms{0};
  std::atomic<int64_t> last_401_log_ms{0}, unlogged_401{0};

  std::mutex dispatch_mu;  // orders "suspend and queue" with the start of Stop
  bool closing = false;
  std::mutex sweep_mu;
  std::condition_variable sweep_cv;
  bool stopping = false;
  std::thread sweeper;

  // Counts `c` as unauthenticated (on) or not, in the total and in its address's count.
  void CountLocked(Conn* c, bool on) {
    if (c->counted == on) return;
    c->counted = on;
    int64_t d = on ? 1 : -1;
    unauthenticated += d;
    int64_t& n = unauthenticated_by_addr[c->addr];
    n += d;
    if (n == 0) unauthenticated_by_addr.erase(c->addr);
  }

  // Closes the connection from outside MHD: MHD sees the end of the stream and cleans up. The
  // descriptor stays MHD's (closed only after the CLOSED notification, which takes `mu`).
  void CutLocked(Conn* c) {
    if (c->cut) return;
    c->cut = true;
    ::shutdown(c->fd, SHUT_RDWR);
    CountLocked(c, false);
  }

  void SetAuthenticatedLocked(Conn* c, bool yes) {
    c->authenticated = yes;
    CountLocked(c, !yes && !c->cut);
  }

  // Keeps the unauthenticated connections within both limits by closing the oldest ones (the
  // oldest of an address when only its own limit is passed). A connection younger than the
  // grace is never closed: a sender shows its token in its first packet, so a burst of new
  // connections (RGW's persistent topics open hundreds at once) is left to authenticate; a
  // connection that has sent nothing useful for a second is fair game.
  void EnforceLimitsLocked(int64_t now) {
    auto over_addr = [&](const std::string& addr) {
      auto it = unauthenticated_by_addr.find(addr);
      return it != unauthenticated_by_addr.end() &&
             it->second > opts.max_unauthenticated_per_address;
    };
    for (auto& [id, c] : conns) {
      if (!c->counted || c->working || now - c->since_ms < kEvictionGraceMs) continue;
      if (unauthenticated > opts.max_unauthenticated || over_addr(c->addr)) {
        CutLocked(c);
        ++evicted;
      }
    }
  }

  void OnConnection(MHD_Connection* connection, void** socket_context,
                    MHD_ConnectionNotificationCode toe) {
    std::lock_guard<std::mutex> l(mu);
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
      auto* c = new Conn;
      const MHD_ConnectionInfo* fd_info =
          MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
      c->fd = fd_info ? fd_info->connect_fd : -1;
      const MHD_ConnectionInfo* addr_info =
          MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
      c->addr = AddressText(addr_info ? addr_info->client_addr : nullptr);
      c->id = next_id++;
      c->tls = opts.tls.get();
      c->since_ms = NowMs();
      conns[c->id] = c;
      CountLocked(c, true);
      *socket_context = c;
      EnforceLimitsLocked(c->since_ms);
      return;
    }
    auto* c = static_cast<Conn*>(*socket_context);
    if (c == nullptr) return;
    *socket_context = nullptr;
    CountLocked(c, false);
    conns.erase(c->id);
    delete c;
  }

  static MHD_Result Queue(MHD_Connection* connection, const HttpReply& r) {
    MHD_Response* resp = MHD_create_response_from_buffer(
        r.body.size(), const_cast<char*>(r.body.data()), MHD_RESPMEM_MUST_COPY);
    if (resp == nullptr) return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", r.content_type.c_str());
    for (const auto& [k, v] : r.headers) MHD_add_response_header(resp, k.c_str(), v.c_str());
    if (r.close) MHD_add_response_header(resp, "Connection", "close");
    MHD_Result ok = MHD_queue_response(connection, static_cast<unsigned>(r.status), resp);
    MHD_destroy_response(resp);
    return ok;
  }

  static HttpReply Error(int status, const std::string& message) {
    HttpReply r;
    r.status = status;
    r.body = "{\"error\":\"" + message + "\"}";
    r.close = true;
    return r;
  }

  MHD_Result OnRequest(MHD_Connection* connection, const char* url, const char* method,
                       const char* upload_data, size_t* upload_data_size, void** con_cls) {
    auto* req = static_cast<Req*>(*con_cls);
    if (req == nullptr) return OnHead(connection, url, method, con_cls);
    if (*upload_data_size > 0 && req->state == Req::kDraining) {
      *upload_data_size = 0;
      return MHD_YES;
    }
    if (req->state == Req::kDraining) {
      req->state = Req::kDone;
      return Queue(connection, req->reply);
    }
    if (*upload_data_size > 0) {
      if (!req->too_large && req->body.size() + *upload_data_size <= opts.max_body) {
        req->body.append(upload_data, *upload_data_size);
      } else {
        req->too_large = true;
        req->body.clear();
      }
      *upload_data_size = 0;
      return MHD_YES;
    }
    if (req->state == Req::kReading) {
      if (req->too_large) {
        req->state = Req::kDone;
        return Queue(connection, Error(413, "request body over the size limit"));
      }
      req->state = Req::kWorking;
      {
        std::lock_guard<std::mutex> l(mu);
        if (req->conn) {
          req->conn->reading_body = false;
          req->conn->working = true;
        }
      }
      // Suspended before its job is queued (the job resumes it), and never after Stop began:
      // a connection left suspended when the daemon stops would never be released.
      std::lock_guard<std::mutex> l(dispatch_mu);
      if (closing) {
        req->state = Req::kDone;
        HttpReply r = Error(503, "the service is stopping; retry");
        r.headers.push_back({"Retry-After", "5"});
        return Queue(connection, r);
      }
      MHD_suspend_connection(connection);
      listener_internal::Lanes& lane = req->lane == Lane::kOperators ? operators : senders;
      lane.Enqueue([this, req, connection] {
        req->reply = handler.Handle(req->head, std::move(req->body));
        req->state = Req::kDone;
        MHD_resume_connection(connection);
      });
      return MHD_YES;
    }
    if (req->state == Req::kDone) return Queue(connection, req->reply);
    return MHD_YES;
  }

  MHD_Result OnHead(MHD_Connection* connection, const char* url, const char* method,
                    void** con_cls) {
    auto* req = new Req;
    *con_cls = req;
    const MHD_ConnectionInfo* ctx_info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    req->conn = ctx_info ? static_cast<Conn*>(ctx_info->socket_context) : nullptr;
    RequestHead& h = req->head;
    h.method = method ? method : "";
    h.path = url ? url : "";
    if (req->conn) h.remote_addr = req->conn->addr;
    if (const char* v = MHD_lookup_connection_value(connection, MHD_HEADER_KIND, "Authorization"))
      h.authorization = v;
    if (const char* v = MHD_lookup_connection_value(connection, MHD_GET_ARGUMENT_KIND, "token"))
      h.token_param = v;
    const char* te = MHD_lookup_connection_value(connection, MHD_HEADER_KIND, "Transfer-Encoding");
    h.chunked = te != nullptr && EqualsIgnoringCase(te, "chunked");
    if (const char* cl =
            MHD_lookup_connection_value(connection, MHD_HEADER_KIND, "Content-Length")) {
      char* end = nullptr;
      errno = 0;
      unsigned long long n = std::strtoull(cl, &end, 10);
      if (errno == 0 && end != cl && *end == '\0') h.content_length = n;
    }

    Admission a;
    if (std::optional<HttpReply> refused = CheckClientCertificate(connection, req->conn, h)) {
      a.reply = std::move(refused);
    } else {
      a = handler.Admit(h);
      if (a.reply && a.reply->status == 401) CountUnauthorisedAndLog(h);
    }
    const bool wants_body = h.method == "POST" || h.method == "PUT" || h.method == "PATCH";
    const bool has_body = h.chunked || (h.content_length && *h.content_length > 0);
    if (!a.reply && wants_body && !h.content_length && !h.chunked) {
      a.reply = Error(411, "Content-Length required");
    } else if (!a.reply && h.content_length && *h.content_length > opts.max_body) {
      a.reply = Error(
          413, "request body over the size limit of " + std::to_string(opts.max_body) + " bytes");
    }
    // A refused body small enough is read and dropped before the answer (the client, still
    // sending, would otherwise see a reset instead of it); a larger one is not read at all.
    const uint64_t drain_limit =
        a.authenticated ? std::max<uint64_t>(opts.max_body, 1) * 2 : kDrainUnauthenticatedBytes;
    const bool drain = a.reply && has_body && !h.chunked && *h.content_length <= drain_limit;
    {
      std::lock_guard<std::mutex> l(mu);
      if (req->conn) {
        // The token shown makes the connection trusted; a wrong one (401) makes it untrusted
        // again; a request that needs none (/healthz, /readyz) changes nothing.
        if (a.authenticated) {
          SetAuthenticatedLocked(req->conn, true);
        } else if (a.reply && a.reply->status == 401) {
          SetAuthenticatedLocked(req->conn, false);
        }
        if (!a.reply || drain) {
          req->conn->reading_body = true;
          req->conn->since_ms = NowMs();
        }
      }
    }
    if (a.reply) {
      req->reply = *a.reply;
      if (has_body || req->reply.status == 401) req->reply.close = true;
      if (drain) {
        req->state = Req::kDraining;
        return MHD_YES;
      }
      req->state = Req::kDone;
      return Queue(connection, req->reply);
    }
    req->lane = a.lane;
    return MHD_YES;
  }

  // With a client CA: a 403 for a connection without an accepted client certificate (checked
  // once per connection); nullopt otherwise.
  std::optional<HttpReply> CheckClientCertificate(MHD_Connection* connection, Conn* conn,
                                                  const RequestHead& h) {
    if (!opts.tls || !opts.tls->requires_client_certificate()) return std::nullopt;
    if (conn != nullptr && conn->client_verified) return std::nullopt;
    const MHD_ConnectionInfo* info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    Status st = info && info->tls_session
                    ? opts.tls->VerifyClient(static_cast<gnutls_session_t>(info->tls_session))
                    : Status::Denied("no TLS session");
    if (st.ok()) {
      if (conn != nullptr) conn->client_verified = true;
      return std::nullopt;
    }
    ++no_client_cert;
    int64_t now = NowMs();
    int64_t last = last_403_log_ms.load();
    if (now - last >= 1000 && last_403_log_ms.compare_exchange_strong(last, now)) {
      spdlog::warn("{}: refused {} {} from {}: {}", opts.setting, h.method, h.path, h.remote_addr,
                   st.message());
    }
    return Error(403, "a client certificate accepted by " + opts.tls->files().flag_prefix +
                          "-client-ca is required");
  }

  void CountUnauthorisedAndLog(const RequestHead& h) {
    ++unauthorised;
    // One line per second at most: a flood of bad tokens must not flood the log.
    int64_t now = NowMs();
    int64_t last = last_401_log_ms.load();
    if (now - last >= 1000 && last_401_log_ms.compare_exchange_strong(last, now)) {
      int64_t more = unlogged_401.exchange(0);
      spdlog::warn("{}: unauthorised {} {} from {} (missing or wrong token){}", opts.setting,
                   h.method, h.path, h.remote_addr,
                   more > 0 ? fmt::format("; {} more since the last such line", more) : "");
    } else {
      ++unlogged_401;
    }
  }

  void OnCompleted(void** con_cls) {
    auto* req = static_cast<Req*>(*con_cls);
    if (req == nullptr) return;
    *con_cls = nullptr;
    {
      std::lock_guard<std::mutex> l(mu);
      if (req->conn) {
        req->conn->reading_body = false;
        req->conn->working = false;
        // A whole request arrived in time: the next one (on a kept-alive connection) gets a
        // deadline of its own.
        req->conn->since_ms = NowMs();
      }
    }
    if (req->reply.after) req->reply.after();
    delete req;
  }

  // Closes connections that missed their deadline.
  void Sweep() {
    std::unique_lock<std::mutex> sl(sweep_mu);
    while (!stopping) {
      sweep_cv.wait_for(sl, std::chrono::milliseconds(250));
      if (stopping) break;
      int64_t now = NowMs();
      int64_t limit = static_cast<int64_t>(opts.request_timeout_s) * 1000;
      std::lock_guard<std::mutex> l(mu);
      EnforceLimitsLocked(now);
      for (auto& [id, c] : conns) {
        if (c->working || c->cut) continue;
        bool late = (!c->authenticated || c->reading_body) && now - c->since_ms > limit;
        if (!late) continue;
        CutLocked(c);
        ++timed_out;
        spdlog::debug("{}: closed a connection from {} that sent no complete request in {} s",
                      opts.setting, c->addr, opts.request_timeout_s);
      }
    }
  }
};

namespace {

MHD_Result AccessCallback(void* cls, MHD_Connection* connection, const char* url,
                          const char* method, const char*, const char* upload_data,
                          size_t* upload_data_size, void** con_cls) {
  return static_cast<HttpListener::Impl*>(cls)->OnRequest(connection, url, method, upload_data,
                                                          upload_data_size, con_cls);
}

void ConnectionCallback(void* cls, MHD_Connection* connection, void** socket_context,
                        MHD_ConnectionNotificationCode toe) {
  static_cast<HttpListener::Impl*>(cls)->OnConnection(connection, socket_context, toe);
}

void CompletedCallback(void* cls, MHD_Connection*, void** con_cls, MHD_RequestTerminationCode) {
  static_cast<HttpListener::Impl*>(cls)->OnCompleted(con_cls);
}

// gnutls_certificate_retrieve_function2: the listener's current certificate for a handshake.
// libmicrohttpd sets the session's pointer to its connection, whose socket context is ours.
int RetrieveCertificate(gnutls_session_t session, const gnutls_datum_t*, int,
                        const gnutls_pk_algorithm_t*, int, gnutls_pcert_st** pcert,
                        unsigned int* pcert_length, gnutls_privkey_t* key) {
  auto* connection = static_cast<MHD_Connection*>(gnutls_session_get_ptr(session));
  if (connection == nullptr) return -1;
  const MHD_ConnectionInfo* info =
      MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  const Conn* c = info ? static_cast<const Conn*>(info->socket_context) : nullptr;
  if (c == nullptr || c->tls == nullptr) return -1;
  c->tls->Select(pcert, pcert_length, key);
  return 0;
}

void LogCallback(void* cls, const char* fm, va_list ap) {
  char buf[512];
  vsnprintf(buf, sizeof buf, fm, ap);
  std::string line(buf);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
  spdlog::debug("{}: libmicrohttpd: {}", *static_cast<const std::string*>(cls), line);
}

}  // namespace

HttpListener::HttpListener(ListenerOptions opts, HttpHandler& handler)
    : opts_(std::move(opts)), handler_(handler) {}

HttpListener::~HttpListener() {
  Stop();
  std::lock_guard<std::mutex> l(impl_mu_);
  impl_.reset();
}

Status HttpListener::Start() {
  if (opts_.workers < 1) return Status::Invalid("a listener needs at least one worker");
  // Each connection is a descriptor: keep half of the process's for the rest (state, audit,
  // downloads), raising the soft limit toward the hard one when that is not enough.
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
    rlim_t want = static_cast<rlim_t>(opts_.max_connections) * 2 + 64;
    if (rl.rlim_cur < want) {
      rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ? want : std::min(want, rl.rlim_max);
      setrlimit(RLIMIT_NOFILE, &rl);
      getrlimit(RLIMIT_NOFILE, &rl);
    }
    int room = static_cast<int>((rl.rlim_cur > 128 ? rl.rlim_cur - 64 : 64) / 2);
    if (opts_.max_connections > room) {
      spdlog::warn(
          "{}: {} connections at most, not {}: the open-file limit is {} (raise LimitNOFILE)",
          opts_.setting, room, opts_.max_connections, static_cast<uint64_t>(rl.rlim_cur));
      opts_.max_connections = room;
      opts_.max_unauthenticated = std::min(opts_.max_unauthenticated, room / 2);
    }
  }
  Result<int> fd = ListenExclusive(opts_.host, opts_.port, opts_.backlog, opts_.setting, &port_);
  if (!fd.ok()) return fd.status();
  auto impl = std::make_unique<Impl>(opts_, handler_);
  Impl* raw = impl.get();
  unsigned int flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
  // TLS 1.2 and 1.3 only, GnuTLS's secure defaults otherwise.
  static const char kPriorities[] = "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2";
  std::vector<MHD_OptionItem> tls_options;
  if (opts_.tls) {
    if (MHD_is_feature_supported(MHD_FEATURE_HTTPS_CERT_CALLBACK) != MHD_YES) {
      ::close(*fd);
      return Status::Unavailable("this libmicrohttpd has no TLS certificate callback (" +
                                 opts_.setting + " with TLS)");
    }
    flags |= MHD_USE_TLS;
    tls_options.push_back(
        {MHD_OPTION_HTTPS_CERT_CALLBACK, 0, reinterpret_cast<void*>(&RetrieveCertificate)});
    tls_options.push_back({MHD_OPTION_HTTPS_PRIORITIES, 0, const_cast<char*>(kPriorities)});
    // With a client CA the server asks for a client certificate (VerifyClient decides).
    if (opts_.tls->requires_client_certificate()) {
      tls_options.push_back(
          {MHD_OPTION_HTTPS_MEM_TRUST, 0, const_cast<char*>(opts_.tls->client_ca_pem().c_str())});
    }
  }
  tls_options.push_back({MHD_OPTION_END, 0, nullptr});
  raw->daemon = MHD_start_daemon(
      flags, 0, nullptr, nullptr, &AccessCallback, raw, MHD_OPTION_EXTERNAL_LOGGER, &LogCallback,
      &opts_.setting, MHD_OPTION_LISTEN_SOCKET, *fd, MHD_OPTION_CONNECTION_LIMIT,
      static_cast<unsigned>(opts_.max_connections), MHD_OPTION_CONNECTION_TIMEOUT,
      static_cast<unsigned>(opts_.idle_timeout_s), MHD_OPTION_NOTIFY_CONNECTION,
      &ConnectionCallback, raw, MHD_OPTION_NOTIFY_COMPLETED, &CompletedCallback, raw,
      MHD_OPTION_ARRAY, tls_options.data(), MHD_OPTION_END);
  if (raw->daemon == nullptr) {
    ::close(*fd);
    return Status::Unavailable("cannot start the HTTP listener on " + opts_.host + ":" +
                               std::to_string(port_) + " (" + opts_.setting + ")");
  }
  raw->sweeper = std::thread([raw] { raw->Sweep(); });
  std::lock_guard<std::mutex> l(impl_mu_);
  impl_ = std::move(impl);
  return Status::Ok();
}

void HttpListener::Stop() {
  // impl_ itself stays until the destructor: Stats() may be called (by /metrics on another
  // listener) while or after this one stops.
  if (!impl_ || impl_->daemon == nullptr) return;
  // No new connections; the queued and running requests finish (their connections are
  // resumed and answered while the daemon still runs); then every connection is closed.
  {
    std::lock_guard<std::mutex> l(impl_->dispatch_mu);
    impl_->closing = true;
  }
  int fd = MHD_quiesce_daemon(impl_->daemon);
  if (fd >= 0) ::close(fd);
  impl_->senders.Shutdown();
  impl_->operators.Shutdown();
  {
    std::lock_guard<std::mutex> l(impl_->sweep_mu);
    impl_->stopping = true;
  }
  impl_->sweep_cv.notify_all();
  if (impl_->sweeper.joinable()) impl_->sweeper.join();
  // Give resumed connections a moment to be answered before closing them.
  for (int i = 0; i < 100; ++i) {
    bool working = false;
    {
      std::lock_guard<std::mutex> l(impl_->mu);
      for (auto& [id, c] : impl_->conns) working = working || c->working;
    }
    if (!working) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  MHD_stop_daemon(impl_->daemon);
  impl_->daemon = nullptr;
}

ListenerStats HttpListener::Stats() const {
  ListenerStats s;
  std::lock_guard<std::mutex> guard(impl_mu_);
  if (!impl_) return s;
  {
    std::lock_guard<std::mutex> l(impl_->mu);
    s.connections = static_cast<int64_t>(impl_->conns.size());
    s.unauthenticated = impl_->unauthenticated;
  }
  s.busy_workers = impl_->senders.busy();
  s.queued = impl_->senders.queued();
  s.timed_out = impl_->timed_out;
  s.evicted = impl_->evicted;
  s.unauthorised = impl_->unauthorised;
  s.no_client_cert = impl_->no_client_cert;
  return s;
}

}  // namespace ds
