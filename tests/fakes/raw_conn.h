// Raw TCP clients that misbehave below HTTP, for tests of the listeners: a connection that
// sends what it is told and reads until the server closes, and a client that sends a request
// one byte every 100 ms (a "slow loris").
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <string>
#include <thread>

namespace ds::fakes {

// A raw TCP connection, for clients that misbehave below HTTP.
class RawConn {
 public:
  explicit RawConn(int port, const char* from = "127.0.0.1") {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    // The client's own address (e.g. 127.0.0.2, to tell attackers from senders).
    sockaddr_in self{};
    self.sin_family = AF_INET;
    inet_pton(AF_INET, from, &self.sin_addr);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&self), sizeof self);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    // A guard against a test hang only: the server is expected to answer or close long before.
    timeval tv{60, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~RawConn() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool connected() const { return connected_; }
  bool Send(const std::string& s) {
    return ::send(fd_, s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size());
  }
  // Everything the server sends until it closes the connection (or the guard fires:
  // `closed` false).
  std::string ReadUntilClosed(bool* closed) {
    std::string out;
    char buf[4096];
    while (true) {
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n > 0) {
        out.append(buf, static_cast<size_t>(n));
        continue;
      }
      *closed = n == 0 || errno == ECONNRESET;
      return out;
    }
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

// A client that sends one byte of a request at a time, until stopped or disconnected.
class Dribbler {
 public:
  Dribbler(int port, std::string request, const char* from = "127.0.0.1")
      : conn_(port, from), request_(std::move(request)) {
    thread_ = std::thread([this] {
      for (size_t i = 0; !stop_ && conn_.connected(); i = (i + 1) % request_.size()) {
        if (!conn_.Send(request_.substr(i, 1))) {
          closed_ = true;
          return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    });
  }
  ~Dribbler() {
    stop_ = true;
    thread_.join();
  }
  // The server closed the connection (a send failed, or the read side ended).
  bool WaitClosed() {
    bool closed = false;
    conn_.ReadUntilClosed(&closed);
    return closed;
  }

 private:
  RawConn conn_;
  std::string request_;
  std::atomic<bool> stop_{false}, closed_{false};
  std::thread thread_;
};

// The head of a POST that never ends (a thousand padding headers): what a slow client dribbles.
inline std::string EndlessHead() {
  std::string h = "POST / HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 1000; ++i) h += "X-Padding-" + std::to_string(i) + ": y\r\n";
  return h;
}

}  // namespace ds::fakes
