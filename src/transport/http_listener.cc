// HttpListener's lifetime (Start: descriptor limits, the exclusive socket, libmicrohttpd's daemon
// with TLS; Stop; Stats) and libmicrohttpd's callbacks, which hand each event to Impl (see
// listener_internal.h), or select the certificate of a TLS handshake.
#include "transport/http_listener.h"

#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "transport/listener_internal.h"
#include "transport/tls_credentials.h"

namespace ds {
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
  const listener_internal::Conn* c =
      info ? static_cast<const listener_internal::Conn*>(info->socket_context) : nullptr;
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
