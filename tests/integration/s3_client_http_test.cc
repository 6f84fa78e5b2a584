// S3Client's HTTP layer against what a real store rarely does on demand: a closed port, and a
// loopback cpp-httplib server that plays a script of answers (server errors, client errors, a
// body cut off half-way) and records the requests it gets (retries, the headers S3 needs).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "integration/collecting_sink.h"
#include "s3/client.h"

namespace ds {
namespace {

using itest::Collected;
using itest::CollectInto;

// A port nothing listens on: bind an ephemeral port, then close it.
int ClosedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

S3Config LoopbackConfig(int port) {
  S3Config c;
  c.endpoint = "http://127.0.0.1:" + std::to_string(port);
  c.access_key_id = "AKIDLOOPBACK0000";
  c.secret_access_key = "loopback-secret-never-shown";
  c.max_attempts = 3;
  c.backoff_base = std::chrono::milliseconds(1);
  c.backoff_max = std::chrono::milliseconds(5);
  c.connect_timeout = std::chrono::milliseconds(2000);
  return c;
}

TEST(S3ClientConnectionTest, RefusedConnectionIsUnavailableAfterRetries) {
  const int port = ClosedPort();
  S3Config c = LoopbackConfig(port);
  S3Client client(c);
  auto start = std::chrono::steady_clock::now();
  Result<ObjectInfo> r = client.HeadObject("b", "k", "");
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kUnavailable);
  EXPECT_NE(r.status().message().find(c.endpoint), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("after 3 attempts"), std::string::npos)
      << r.status().message();
  EXPECT_NE(r.status().message().find("onnect"), std::string::npos) << r.status().message();
  EXPECT_EQ(r.status().message().find(c.secret_access_key), std::string::npos);
  EXPECT_LT(took, std::chrono::seconds(5));
}

// A loopback HTTP server that plays a script of answers and records requests.
class FakeS3 {
 public:
  FakeS3() {
    auto handler = [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard<std::mutex> lock(mu_);
      requests_.push_back(req);
      if (handler_) handler_(static_cast<int>(requests_.size()), req, res);
    };
    server_.Get(".*", handler);
    server_.Post(".*", handler);
    server_.Put(".*", handler);
    server_.Delete(".*", handler);
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~FakeS3() {
    server_.stop();
    thread_.join();
  }
  using Handler = std::function<void(int n, const httplib::Request&, httplib::Response&)>;
  void OnRequest(Handler h) { handler_ = std::move(h); }
  int port() const { return port_; }
  std::vector<httplib::Request> requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::mutex mu_;
  Handler handler_;
  std::vector<httplib::Request> requests_;
};

TEST(S3ClientFakeServerTest, RetriesServerErrorsThenSucceeds) {
  FakeS3 fake;
  fake.OnRequest([](int n, const httplib::Request&, httplib::Response& res) {
    if (n <= 2) {
      res.status = 503;
      res.set_content("<Error><Code>SlowDown</Code><Message>Please reduce</Message></Error>",
                      "application/xml");
      return;
    }
    res.set_header("ETag", "\"abc\"");
    res.set_content("hello", "application/octet-stream");
  });
  S3Client client(LoopbackConfig(fake.port()));
  Collected got;
  Result<ObjectInfo> r = client.GetObject("b", "k", "", CollectInto(&got));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(got.body, "hello");  // error bodies of the failed attempts never reached the sink
  EXPECT_EQ(r->etag, "abc");
  EXPECT_EQ(fake.requests().size(), 3u);
}

TEST(S3ClientFakeServerTest, GivesUpAfterMaxAttempts) {
  FakeS3 fake;
  fake.OnRequest([](int, const httplib::Request&, httplib::Response& res) {
    res.status = 500;
    res.set_content("<Error><Code>InternalError</Code><Message/></Error>", "application/xml");
  });
  S3Client client(LoopbackConfig(fake.port()));
  Status s = client.ListObjects("b", "", [](const ObjectInfo&) { return true; });
  EXPECT_EQ(s.code(), Code::kUnavailable);
  EXPECT_NE(s.message().find("InternalError"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("after 3 attempts"), std::string::npos) << s.message();
  EXPECT_EQ(fake.requests().size(), 3u);
}

TEST(S3ClientFakeServerTest, NoRetryOnClientErrors) {
  FakeS3 fake;
  fake.OnRequest([](int, const httplib::Request&, httplib::Response& res) {
    res.status = 403;
    res.set_content("<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>",
                    "application/xml");
  });
  S3Client client(LoopbackConfig(fake.port()));
  Collected got;
  Result<ObjectInfo> r = client.GetObject("b", "k", "", CollectInto(&got));
  EXPECT_EQ(r.status().code(), Code::kPermissionDenied);
  EXPECT_EQ(fake.requests().size(), 1u);
  EXPECT_TRUE(got.body.empty());
}

TEST(S3ClientFakeServerTest, NoRetryOnceBodyBytesWereDelivered) {
  FakeS3 fake;
  fake.OnRequest([](int, const httplib::Request&, httplib::Response& res) {
    res.set_content_provider(100000, "application/octet-stream",
                             [](size_t offset, size_t, httplib::DataSink& sink) {
                               if (offset > 0) return false;  // hang up half-way
                               std::string half(50000, 'x');
                               sink.write(half.data(), half.size());
                               return true;
                             });
  });
  S3Client client(LoopbackConfig(fake.port()));
  Collected got;
  Result<ObjectInfo> r = client.GetObject("b", "k", "", CollectInto(&got));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kUnavailable);
  EXPECT_NE(r.status().message().find("bytes were delivered"), std::string::npos)
      << r.status().message();
  EXPECT_EQ(got.body.size(), 50000u);
  EXPECT_EQ(fake.requests().size(), 1u);
}

TEST(S3ClientFakeServerTest, SignsAndSendsTheHeadersS3Needs) {
  FakeS3 fake;
  fake.OnRequest([](int, const httplib::Request& req, httplib::Response& res) {
    if (req.method == "POST") {
      res.set_content(
          "<DeleteResult><Deleted><Key>a&amp;b</Key></Deleted>"
          "<Error><Key>c d</Key><VersionId>v1</VersionId><Code>AccessDenied</Code>"
          "<Message>no</Message></Error></DeleteResult>",
          "application/xml");
    }
  });
  S3Config c = LoopbackConfig(fake.port());
  c.session_token = "session-token-value-never-logged";
  S3Client client(c);
  Result<std::vector<DeleteOutcome>> r =
      client.DeleteObjects("bkt", {{"c d", "v1"}, {"a&b", ""}, {"missing", ""}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[0].id.key, "c d");
  EXPECT_FALSE((*r)[0].deleted);
  EXPECT_EQ((*r)[0].error_code, "AccessDenied");
  EXPECT_TRUE((*r)[1].deleted);
  EXPECT_FALSE((*r)[2].deleted);
  EXPECT_EQ((*r)[2].error_code, "MissingFromResponse");

  std::vector<httplib::Request> reqs = fake.requests();
  ASSERT_EQ(reqs.size(), 1u);
  const httplib::Request& req = reqs[0];
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.path, "/bkt");
  EXPECT_TRUE(req.has_param("delete"));
  const std::string auth = req.get_header_value("Authorization");
  EXPECT_EQ(auth.rfind("AWS4-HMAC-SHA256 Credential=AKIDLOOPBACK0000/", 0), 0u) << auth;
  EXPECT_NE(auth.find("/us-east-1/s3/aws4_request"), std::string::npos) << auth;
  EXPECT_NE(auth.find("content-md5"), std::string::npos) << auth;
  EXPECT_NE(auth.find("x-amz-content-sha256"), std::string::npos) << auth;
  EXPECT_NE(auth.find("x-amz-security-token"), std::string::npos) << auth;
  EXPECT_EQ(req.get_header_value("x-amz-security-token"), "session-token-value-never-logged");
  EXPECT_FALSE(req.get_header_value("x-amz-date").empty());
  EXPECT_EQ(req.get_header_value("Content-Type"), "application/xml");

  // Content-MD5 and the payload hash describe the body actually sent.
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(req.body.data(), req.body.size(), md, &n, EVP_md5(), nullptr);
  unsigned char b64[64];
  int len = EVP_EncodeBlock(b64, md, static_cast<int>(n));
  EXPECT_EQ(req.get_header_value("Content-MD5"),
            std::string(reinterpret_cast<char*>(b64), static_cast<size_t>(len)));
  EVP_Digest(req.body.data(), req.body.size(), md, &n, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string sha;
  for (unsigned i = 0; i < n; ++i) {
    sha.push_back(kHex[md[i] >> 4]);
    sha.push_back(kHex[md[i] & 0xF]);
  }
  EXPECT_EQ(req.get_header_value("x-amz-content-sha256"), sha);
  EXPECT_NE(req.body.find("<Key>a&amp;b</Key>"), std::string::npos) << req.body;
}

}  // namespace
}  // namespace ds
