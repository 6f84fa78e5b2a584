// A loopback TCP proxy for outage tests: it forwards connections to a target (the local RGW)
// until SetDown(true), which closes every open connection and stops listening (a client then
// gets "connection refused", as from a stopped server); SetDown(false) listens again on the
// same port. Header-only, threads of its own, no dependency beyond POSIX sockets.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace ds::itest {

class TcpProxy {
 public:
  // Forwards 127.0.0.1:<port()> to 127.0.0.1:<target_port>.
  explicit TcpProxy(int target_port) : target_port_(target_port) {
    Listen(0);
    sockaddr_in a{};
    socklen_t len = sizeof a;
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    acceptor_ = std::thread([this] { AcceptLoop(); });
  }
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  ~TcpProxy() {
    stop_ = true;
    SetDown(true);
    acceptor_.join();
    std::vector<std::thread> pumps;
    {
      std::lock_guard<std::mutex> l(mu_);
      pumps.swap(pumps_);
    }
    for (auto& t : pumps) t.join();
  }

  int port() const { return port_; }

  // Down: every open connection is closed and new ones are refused. Up: forwarding again.
  void SetDown(bool down) {
    std::lock_guard<std::mutex> l(mu_);
    if (down && listen_fd_ >= 0) {
      ::shutdown(listen_fd_, SHUT_RDWR);
      ::close(listen_fd_);
      listen_fd_ = -1;
      for (int fd : open_) ::shutdown(fd, SHUT_RDWR);
    } else if (!down && listen_fd_ < 0 && !stop_) {
      Listen(port_);
    }
  }

 private:
  void Listen(int port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 64) != 0) {
      ::close(fd);
      throw std::runtime_error("TcpProxy: cannot listen: " + std::string(std::strerror(errno)));
    }
    listen_fd_ = fd;
  }

  void AcceptLoop() {
    while (!stop_) {
      int lfd;
      {
        std::lock_guard<std::mutex> l(mu_);
        lfd = listen_fd_;
      }
      if (lfd < 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        continue;
      }
      pollfd p{lfd, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      std::lock_guard<std::mutex> l(mu_);
      if (listen_fd_ != lfd) continue;  // went down meanwhile
      int client = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) continue;
      int server = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      a.sin_port = htons(static_cast<uint16_t>(target_port_));
      if (::connect(server, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(server);
        ::close(client);
        continue;
      }
      open_.insert(client);
      open_.insert(server);
      pumps_.emplace_back([this, client, server] { Pump(client, server); });
    }
  }

  // Copies bytes both ways until either side closes (or the proxy goes down).
  void Pump(int a, int b) {
    char buf[64 * 1024];
    bool open = true;
    while (open && !stop_) {
      pollfd p[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
      if (::poll(p, 2, 100) < 0) break;
      for (int i = 0; i < 2 && open; ++i) {
        if (p[i].revents == 0) continue;
        ssize_t n = ::read(p[i].fd, buf, sizeof buf);
        if (n <= 0) {
          open = false;
          break;
        }
        const int to = p[i].fd == a ? b : a;
        for (ssize_t off = 0; off < n;) {
          ssize_t w = ::write(to, buf + off, static_cast<size_t>(n - off));
          if (w <= 0) {
            open = false;
            break;
          }
          off += w;
        }
      }
    }
    std::lock_guard<std::mutex> l(mu_);
    open_.erase(a);
    open_.erase(b);
    ::close(a);
    ::close(b);
  }

  const int target_port_;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  int listen_fd_ = -1;              // guarded by mu_
  std::set<int> open_;              // guarded by mu_: sockets of live connections
  std::vector<std::thread> pumps_;  // guarded by mu_
  std::thread acceptor_;
};

}  // namespace ds::itest
