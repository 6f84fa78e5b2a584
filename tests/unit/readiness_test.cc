// /readyz's checks (app/ops_health.h) against a loopback S3 server: the s3 check lists the
// bucket itself (ListObjectsV2, max-keys=1, under the prefix) and is ready only when the store
// answers 200; a missing bucket, refused credentials and a store that never answers are not
// ready, with the cause in the detail and never a secret.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "app/ops_health.h"
#include "core/cache_fs.h"
#include "fakes/fakes.h"
#include "s3/client.h"

namespace ds::app {
namespace {

constexpr char kKeyId[] = "AKIDREADYZTEST123456";
constexpr char kReadyzSecret[] = "readyz-secret-never-shown";

// A loopback HTTP server answering every request with `status` and `body`; records requests.
class ScriptedS3 {
 public:
  ScriptedS3(int status, std::string body) : status_(status), body_(std::move(body)) {
    auto handler = [this](const httplib::Request& req, httplib::Response& res) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        requests_.push_back(req);
      }
      res.status = status_;
      res.set_content(body_, "application/xml");
    };
    server_.Get(".*", handler);
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~ScriptedS3() {
    server_.stop();
    thread_.join();
  }
  int port() const { return port_; }
  std::vector<httplib::Request> requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

 private:
  int status_;
  std::string body_;
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::vector<httplib::Request> requests_;
};

std::string ErrorXml(const std::string& code, const std::string& message) {
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>" + code + "</Code><Message>" +
         message + "</Message><BucketName>b</BucketName><RequestId>r1</RequestId></Error>";
}

void SetRequestTimeout(S3Config* c, std::chrono::milliseconds d) { c->request_timeout = d; }

std::unique_ptr<S3Client> ProbeClient(int port) {
  S3Config c;
  c.endpoint = "http://127.0.0.1:" + std::to_string(port);
  c.access_key_id = kKeyId;
  c.secret_access_key = kReadyzSecret;
  c.max_attempts = 1;
  c.connect_timeout = std::chrono::milliseconds(1000);
  SetRequestTimeout(&c, std::chrono::milliseconds(1000));
  c.low_speed_time = std::chrono::seconds(30);
  return std::make_unique<S3Client>(c);
}

class ReadinessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device rd;
    cache_ = (std::filesystem::temp_directory_path() /
              ("ds-readyz-" + std::to_string(getpid()) + "-" + std::to_string(rd())))
                 .string();
    std::filesystem::create_directories(cache_ + "/" + kReservedDir);
  }
  void TearDown() override { std::filesystem::remove_all(cache_); }

  // The s3 check of a readiness report for bucket "b", prefix "p/", against `port`.
  CheckResult S3Check(int port, ReadyReport* report) {
    ReadinessChecker checker(state_, cache_, ProbeClient(port), "b", "p/");
    *report = checker.Check(/*stopping=*/false);
    for (const CheckResult& c : report->checks) {
      if (c.name == "s3") return c;
    }
    ADD_FAILURE() << "no s3 check in " << report->ToJson();
    return {};
  }

  fakes::FakeStateStore state_;
  std::string cache_;
};

TEST_F(ReadinessTest, NoSuchBucketIsNotReadyAndNamesTheBucket) {
  ScriptedS3 s3(404, ErrorXml("NoSuchBucket", "The specified bucket does not exist"));
  ReadyReport report;
  CheckResult c = S3Check(s3.port(), &report);
  EXPECT_FALSE(report.ready) << report.ToJson();
  EXPECT_FALSE(c.ok);
  EXPECT_NE(c.detail.find("bucket 'b' does not exist"), std::string::npos) << c.detail;
}

TEST_F(ReadinessTest, UnknownAccessKeyIsNotReadyAndSaysWhatToCheck) {
  ScriptedS3 s3(403, ErrorXml("InvalidAccessKeyId",
                              "The AWS Access Key Id you provided does not exist in our records."));
  ReadyReport report;
  CheckResult c = S3Check(s3.port(), &report);
  EXPECT_FALSE(report.ready) << report.ToJson();
  EXPECT_FALSE(c.ok);
  EXPECT_NE(c.detail.find("access denied"), std::string::npos) << c.detail;
  EXPECT_NE(c.detail.find("InvalidAccessKeyId"), std::string::npos) << c.detail;
  EXPECT_NE(c.detail.find("check AWS_ACCESS_KEY_ID"), std::string::npos) << c.detail;
  EXPECT_EQ(report.ToJson().find(kReadyzSecret), std::string::npos);
  EXPECT_EQ(report.ToJson().find(kKeyId), std::string::npos);  // shortened, never whole
}

TEST_F(ReadinessTest, WrongSecretIsNotReadyAndSaysWhatToCheck) {
  ScriptedS3 s3(403, ErrorXml("SignatureDoesNotMatch",
                              "The request signature we calculated does not match the signature "
                              "you provided."));
  ReadyReport report;
  CheckResult c = S3Check(s3.port(), &report);
  EXPECT_FALSE(report.ready) << report.ToJson();
  EXPECT_NE(c.detail.find("check AWS_SECRET_ACCESS_KEY"), std::string::npos) << c.detail;
  EXPECT_EQ(report.ToJson().find(kReadyzSecret), std::string::npos);
}

TEST_F(ReadinessTest, AccessDeniedIsNotReadyAndNamesThePermission) {
  ScriptedS3 s3(403, ErrorXml("AccessDenied", "Access Denied"));
  ReadyReport report;
  CheckResult c = S3Check(s3.port(), &report);
  EXPECT_FALSE(report.ready) << report.ToJson();
  EXPECT_NE(c.detail.find("access denied to bucket 'b'"), std::string::npos) << c.detail;
  EXPECT_NE(c.detail.find("s3:ListBucket"), std::string::npos) << c.detail;
}

TEST_F(ReadinessTest, AListingAnsweredIsReadyAndListsOneKeyUnderThePrefix) {
  ScriptedS3 s3(200,
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult><Name>b</Name>"
                "<Prefix>p/</Prefix><KeyCount>0</KeyCount><MaxKeys>1</MaxKeys>"
                "<IsTruncated>false</IsTruncated></ListBucketResult>");
  ReadyReport report;
  CheckResult c = S3Check(s3.port(), &report);
  EXPECT_TRUE(report.ready) << report.ToJson();
  EXPECT_TRUE(c.ok) << c.detail;
  std::vector<httplib::Request> reqs = s3.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "GET");
  EXPECT_EQ(reqs[0].path, "/b");
  EXPECT_EQ(reqs[0].get_param_value("list-type"), "2");
  EXPECT_EQ(reqs[0].get_param_value("max-keys"), "1");
  EXPECT_EQ(reqs[0].get_param_value("prefix"), "p/");
}

TEST_F(ReadinessTest, AStoreThatNeverAnswersIsNotReadyWithTheTimeoutNamed) {
  // Listens, never accepts, never answers.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(fd, 16), 0);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  ReadyReport report;
  CheckResult c = S3Check(ntohs(addr.sin_port), &report);
  ::close(fd);
  EXPECT_FALSE(report.ready) << report.ToJson();
  EXPECT_FALSE(c.ok);
  EXPECT_NE(c.detail.find("timed out"), std::string::npos) << c.detail;
  EXPECT_NE(c.detail.find("s3-request-timeout 1s"), std::string::npos) << c.detail;
}

}  // namespace
}  // namespace ds::app
