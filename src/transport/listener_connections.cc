// HttpListener's connections (see listener_internal.h): the unauthenticated counts and their
// limits (the oldest such connection closed to make room), and the sweeper that closes a
// connection missing request_timeout_s.
#include <arpa/inet.h>
#include <microhttpd.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

#include "transport/http_listener.h"
#include "transport/listener_internal.h"
#include "transport/tls_credentials.h"

namespace ds {
namespace {

// How old an unauthenticated connection must be before it may be closed to make room.
constexpr int64_t kEvictionGraceMs = 1000;

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

// Counts `c` as unauthenticated (on) or not, in the total and in its address's count.
void HttpListener::Impl::CountLocked(Conn* c, bool on) {
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
void HttpListener::Impl::CutLocked(Conn* c) {
  if (c->cut) return;
  c->cut = true;
  ::shutdown(c->fd, SHUT_RDWR);
  CountLocked(c, false);
}

void HttpListener::Impl::SetAuthenticatedLocked(Conn* c, bool yes) {
  c->authenticated = yes;
  CountLocked(c, !yes && !c->cut);
}

// Keeps the unauthenticated connections within both limits by closing the oldest ones (the
// oldest of an address when only its own limit is passed). A connection younger than the
// grace is never closed: a sender shows its token in its first packet, so a burst of new
// connections (RGW's persistent topics open hundreds at once) is left to authenticate; a
// connection that has sent nothing useful for a second is fair game.
void HttpListener::Impl::EnforceLimitsLocked(int64_t now) {
  auto over_addr = [&](const std::string& addr) {
    auto it = unauthenticated_by_addr.find(addr);
    return it != unauthenticated_by_addr.end() && it->second > opts.max_unauthenticated_per_address;
  };
  for (auto& [id, c] : conns) {
    if (!c->counted || c->working || now - c->since_ms < kEvictionGraceMs) continue;
    if (unauthenticated > opts.max_unauthenticated || over_addr(c->addr)) {
      CutLocked(c);
      ++evicted;
    }
  }
}

void HttpListener::Impl::OnConnection(MHD_Connection* connection, void** socket_context,
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
    c->since_ms = listener_internal::NowMs();
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

// Closes connections that missed their deadline.
void HttpListener::Impl::Sweep() {
  std::unique_lock<std::mutex> sl(sweep_mu);
  while (!stopping) {
    sweep_cv.wait_for(sl, std::chrono::milliseconds(250));
    if (stopping) break;
    int64_t now = listener_internal::NowMs();
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

}  // namespace ds
