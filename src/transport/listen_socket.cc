// The listener's exclusive listening socket (ListenExclusive: no SO_REUSEPORT) and ListenerUrl.
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>

#include "transport/http_listener.h"

namespace ds {

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

}  // namespace ds
