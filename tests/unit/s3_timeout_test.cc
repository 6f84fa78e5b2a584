// S3 timeouts against loopback servers: a server that accepts TCP and never answers fails a
// request at its deadline (s3-request-timeout) or, for a download, at the low-speed limit
// (s3-low-speed-timeout), with the limit named; each retry is logged as a warning; a download
// slower than the request deadline but steady is not cut.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <sstream>
#include <string>
#include <thread>

#include "s3/client.h"

namespace ds {
namespace {

// Listens on a loopback port and never accepts: the kernel completes the TCP handshake and
// buffers the request, nobody ever answers.
class SilentServer {
 public:
  SilentServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof(addr);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        ::listen(fd_, 64) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ADD_FAILURE() << "cannot listen on a loopback port";
    }
    port_ = ntohs(addr.sin_port);
  }
  ~SilentServer() { ::close(fd_); }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

// Routes spdlog's default logger into a string while alive.
class LogCapture {
 public:
  LogCapture() : saved_(spdlog::default_logger()) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out_);
    auto logger = std::make_shared<spdlog::logger>("capture", sink);
    logger->set_level(spdlog::level::info);
    logger->set_pattern("%l %v");
    spdlog::set_default_logger(logger);
  }
  ~LogCapture() { spdlog::set_default_logger(saved_); }
  std::string text() const { return out_.str(); }

 private:
  std::shared_ptr<spdlog::logger> saved_;
  std::ostringstream out_;
};

constexpr char kTimeoutSecret[] = "loopback-secret-never-shown";

void SetRequestTimeout(S3Config* c, std::chrono::milliseconds d) { c->request_timeout = d; }

S3Config LoopbackConfig(int port) {
  S3Config c;
  c.endpoint = "http://127.0.0.1:" + std::to_string(port);
  c.access_key_id = "AKIDLOOPBACK0000";
  c.secret_access_key = kTimeoutSecret;
  c.max_attempts = 1;
  c.backoff_base = std::chrono::milliseconds(1);
  c.backoff_max = std::chrono::milliseconds(5);
  c.connect_timeout = std::chrono::milliseconds(1000);
  SetRequestTimeout(&c, std::chrono::milliseconds(1000));
  c.low_speed_time = std::chrono::seconds(1);
  return c;
}

TEST(S3TimeoutTest, ListingOfAServerThatNeverAnswersFailsAtTheRequestTimeout) {
  SilentServer server;
  S3Config c = LoopbackConfig(server.port());
  c.low_speed_time = std::chrono::seconds(30);  // the request deadline must be what stops it
  S3Client client(c);
  Status s = client.ListObjects("b", "", [](const ObjectInfo&) { return true; });
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Code::kUnavailable) << s.ToString();
  EXPECT_NE(s.message().find("timed out"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("s3-request-timeout 1s"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("ListObjectsV2"), std::string::npos) << s.message();
  EXPECT_EQ(s.message().find(kTimeoutSecret), std::string::npos);
}

TEST(S3TimeoutTest, HeadOfAServerThatNeverAnswersFailsAtTheRequestTimeout) {
  SilentServer server;
  S3Config c = LoopbackConfig(server.port());
  c.low_speed_time = std::chrono::seconds(30);
  S3Client client(c);
  Result<ObjectInfo> r = client.HeadObject("b", "k", "");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kUnavailable) << r.status().ToString();
  EXPECT_NE(r.status().message().find("s3-request-timeout 1s"), std::string::npos)
      << r.status().message();
}

TEST(S3TimeoutTest, DownloadFromAServerThatNeverAnswersFailsAtTheLowSpeedLimit) {
  SilentServer server;
  S3Config c = LoopbackConfig(server.port());
  SetRequestTimeout(&c, std::chrono::milliseconds(600000));  // does not apply to downloads
  S3Client client(c);
  Result<ObjectInfo> r =
      client.GetObject("b", "k", "", [](const char*, size_t) { return Status::Ok(); });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kUnavailable) << r.status().ToString();
  EXPECT_NE(r.status().message().find("s3-low-speed-timeout 1s"), std::string::npos)
      << r.status().message();
  EXPECT_EQ(r.status().message().find("s3-request-timeout"), std::string::npos)
      << r.status().message();
}

TEST(S3TimeoutTest, EachRetryIsLoggedAsAWarningNamingOperationAttemptAndError) {
  SilentServer server;
  S3Config c = LoopbackConfig(server.port());
  c.max_attempts = 2;
  S3Client client(c);
  LogCapture log;
  Status s = client.ListObjects("b", "p/", [](const ObjectInfo&) { return true; });
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("after 2 attempts"), std::string::npos) << s.message();
  const std::string text = log.text();
  EXPECT_NE(text.find("warning s3 ListObjectsV2 s3://b: attempt 1/2 failed (timed out"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find("attempt 2/2 failed"), std::string::npos) << text;  // no retry after it
  EXPECT_EQ(text.find(kTimeoutSecret), std::string::npos);
}

TEST(S3TimeoutTest, ASteadyDownloadLongerThanTheRequestTimeoutIsNotCut) {
  // 12 chunks of 4 KiB, one every 100 ms: about 1.2 s at 40 KiB/s, over a 300 ms deadline.
  constexpr int kChunks = 12;
  const std::string chunk(4096, 'x');
  httplib::Server server;
  server.Get(".*", [&](const httplib::Request&, httplib::Response& res) {
    res.set_header("ETag", "\"e\"");
    res.set_chunked_content_provider("application/octet-stream",
                                     [&, sent = 0](size_t, httplib::DataSink& sink) mutable {
                                       if (sent == kChunks) {
                                         sink.done();
                                         return true;
                                       }
                                       std::this_thread::sleep_for(std::chrono::milliseconds(100));
                                       ++sent;
                                       return sink.write(chunk.data(), chunk.size());
                                     });
  });
  int port = server.bind_to_any_port("127.0.0.1");
  std::thread t([&] { server.listen_after_bind(); });
  while (!server.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));

  S3Config c = LoopbackConfig(port);
  SetRequestTimeout(&c, std::chrono::milliseconds(300));
  size_t received = 0;
  Result<ObjectInfo> r = Status::Internal("not run");
  {
    S3Client client(c);  // closes its kept-alive connection before the server stops
    r = client.GetObject("b", "big", "", [&](const char*, size_t n) {
      received += n;
      return Status::Ok();
    });
  }
  server.stop();
  t.join();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(received, chunk.size() * kChunks);
}

}  // namespace
}  // namespace ds
