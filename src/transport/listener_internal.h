// Internals of HttpListener shared by its source files; private to src/transport/ (nothing
// outside the listener's files includes this header). HttpListener is defined in several files,
// one idea each:
//  - http_listener.cc: HttpListener's lifetime (Start, Stop, Stats) and libmicrohttpd's
//    callbacks, which hand every event to Impl (and the TLS certificate callback);
//  - listener_connections.cc: the connections (Conn): their counts, the limits on
//    unauthenticated ones, the sweeper that closes those that miss request_timeout_s;
//  - listener_requests.cc: one request (Req): its head and Admit, its body, the handoff to a
//    worker lane (listener_lanes.h), the reply;
//  - listen_socket.cc: the exclusive listening socket (ListenExclusive) and ListenerUrl;
//  - listener_tokens.cc: tokens (TokenMatches, HeadHasToken, TokenSet).
//
// Threads: libmicrohttpd's I/O thread calls the On* functions; the sweeper runs Sweep; the lanes'
// workers call HttpHandler::Handle; Stop and Stats come from the owner. `mu` guards the
// connections and their counts; `dispatch_mu` orders a request's handoff to a lane with Stop.
//
// Helpers live in ds::listener_internal (the library may be compiled as a unity build, in which
// anonymous-namespace names of different files must not meet).
#pragma once

#include <microhttpd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "transport/http_listener.h"
#include "transport/listener_lanes.h"

namespace ds {
namespace listener_internal {

// The steady clock in milliseconds: connection deadlines and log rate limits.
inline int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// ASCII case-insensitive equality (header values, the Bearer scheme).
inline bool EqualsIgnoringCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  }
  return true;
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

}  // namespace listener_internal

struct HttpListener::Impl {
  using Conn = listener_internal::Conn;
  using Req = listener_internal::Req;

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

  // ---- Connections (listener_connections.cc) ----------------------------------------------

  void CountLocked(Conn* c, bool on);
  void CutLocked(Conn* c);
  void SetAuthenticatedLocked(Conn* c, bool yes);
  void EnforceLimitsLocked(int64_t now);
  void OnConnection(MHD_Connection* connection, void** socket_context,
                    MHD_ConnectionNotificationCode toe);
  void Sweep();

  // ---- Requests (listener_requests.cc) ----------------------------------------------------

  static MHD_Result Queue(MHD_Connection* connection, const HttpReply& r);
  static HttpReply Error(int status, const std::string& message);
  MHD_Result OnRequest(MHD_Connection* connection, const char* url, const char* method,
                       const char* upload_data, size_t* upload_data_size, void** con_cls);
  MHD_Result OnHead(MHD_Connection* connection, const char* url, const char* method,
                    void** con_cls);
  std::optional<HttpReply> CheckClientCertificate(MHD_Connection* connection, Conn* conn,
                                                  const RequestHead& h);
  void CountUnauthorisedAndLog(const RequestHead& h);
  void OnCompleted(void** con_cls);
};

}  // namespace ds
