// The real `delete-sync` binary in Lambda mode against a test server that speaks the Lambda
// Runtime API as documented (next with its headers, response, error, init/error), with objects
// served by the real local Ceph RGW.
#include <gtest/gtest.h>
#include <httplib.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>

#include "fakes/notification_docs.h"
#include "runtime_api_server.h"
#include "service_harness.h"

namespace ds::itest {
namespace {

using nlohmann::json;

json S3Record(const std::string& bucket, const std::string& name, const std::string& key,
              const std::string& sequencer) {
  return testdocs::Aws(name, bucket, key, sequencer).Json();
}

std::string S3Doc(const std::string& bucket, const std::string& name, const std::string& key,
                  const std::string& sequencer) {
  return json{{"Records", json::array({S3Record(bucket, name, key, sequencer)})}}.dump();
}

json SqsRecord(const std::string& id, const std::string& body) {
  return testdocs::SqsMessage(id, body, "rh", "arn:aws:sqs:us-east-1:123456789012:delete-sync");
}

class LambdaModeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    rgw_.Create("ds-it-" + RandomSuffix());
    ASSERT_FALSE(HasFatalFailure());
    env_ = rgw_.env();
    s3_ = &rgw_.s3();
    bucket_ = rgw_.name();
    dir_ = std::filesystem::temp_directory_path() / ("ds-it-lambda-" + RandomSuffix());
    cache_ = dir_ + "/mnt/data";
    std::filesystem::create_directories(cache_);
    log_ = dir_ + "/lambda.log";
  }
  void TearDown() override {
    StopFunction();
    std::filesystem::remove_all(dir_);
  }

  // Starts the binary as Lambda does: no arguments, AWS_LAMBDA_RUNTIME_API set. With
  // DS_LAMBDA_BOOTSTRAP=<unzipped package>/bootstrap, starts that instead, in an environment
  // holding nothing but the function's variables (scripts/package-lambda.sh's output).
  void StartFunction(const std::map<std::string, std::string>& extra = {}) {
    const char* bootstrap_env = std::getenv("DS_LAMBDA_BOOTSTRAP");
    std::string program = bootstrap_env != nullptr && *bootstrap_env ? bootstrap_env : DS_BINARY;
    bool clean = program != DS_BINARY;
    function_.Start({program}, ChildOptions()
                                   .ClearEnv(clean)
                                   .Chdir(clean ? "/" : "")
                                   .Env(env_)
                                   .SetEnv("AWS_LAMBDA_RUNTIME_API", api_.Endpoint())
                                   .SetEnv("DELETE_SYNC_CACHE", cache_)
                                   .SetEnv("DELETE_SYNC_BUCKET", bucket_)
                                   .SetEnv("DELETE_SYNC_LOG_LEVEL", "debug")
                                   .Env(extra)
                                   .Log(log_)
                                   .TruncateLog());
  }
  // Waits for the function process to exit on its own; returns its exit code (-1: still runs).
  int WaitExit() { return function_.Wait(std::chrono::seconds(30)).value_or(-1); }
  void StopFunction() { function_.Kill(); }  // as Lambda ends a sandbox

  RgwBucket rgw_;
  RuntimeApiServer api_;
  std::map<std::string, std::string> env_;
  S3Client* s3_ = nullptr;
  std::string bucket_, dir_, cache_, log_;
  ChildProcess function_;
};

TEST_F(LambdaModeTest, DirectS3EventsCreateAndDeleteInTheCache) {
  ASSERT_TRUE(s3_->PutObject(bucket_, "docs/a b.txt", "hello lambda").ok());
  StartFunction();
  RuntimeApiServer::Answer a =
      api_.Invoke(S3Doc(bucket_, "ObjectCreated:Put", "docs/a+b.txt", "0A"));
  ASSERT_FALSE(a.error) << a.body << "\n" << ReadFile(log_);
  // Downloaded before the answer: the sandbox may be frozen right after it.
  EXPECT_EQ(ReadFile(cache_ + "/docs/a b.txt"), "hello lambda");
  EXPECT_EQ(json::parse(a.body)["downloaded"], 1) << a.body;

  ASSERT_TRUE(s3_->DeleteObject(bucket_, "docs/a b.txt").ok());
  a = api_.Invoke(S3Doc(bucket_, "ObjectRemoved:Delete", "docs/a+b.txt", "0B"));
  ASSERT_FALSE(a.error) << a.body;
  EXPECT_FALSE(Exists(cache_ + "/docs/a b.txt"));
  EXPECT_EQ(json::parse(a.body)["applied"], 1) << a.body;

  // Shared state lives on the mount, in rollback-journal mode (no WAL files).
  EXPECT_TRUE(Exists(cache_ + "/.delete-sync/state.db"));
  EXPECT_FALSE(Exists(cache_ + "/.delete-sync/state.db-wal"));
  // The trace header reached the invocation.
  EXPECT_NE(ReadFile(log_).find("Root=1-5759e988-bd862e3fe1be46a994272793"), std::string::npos);

  // A malformed event is an invocation error (Lambda retries it), naming the problem.
  a = api_.Invoke(R"({"Records":[{"eventSource":"aws:s3","eventName":"ObjectRemoved:Delete"}]})");
  ASSERT_TRUE(a.error);
  EXPECT_EQ(a.error_type_header, "DeleteSync.InvalidEvent");
  json err = json::parse(a.body);
  EXPECT_EQ(err["errorType"], "DeleteSync.InvalidEvent");
  EXPECT_NE(err["errorMessage"].get<std::string>().find("Records[0]"), std::string::npos) << a.body;
}

TEST_F(LambdaModeTest, SqsBatchReportsOnlyTheBadRecord) {
  ASSERT_TRUE(s3_->PutObject(bucket_, "new.txt", "fresh").ok());
  ASSERT_TRUE(s3_->PutObject(bucket_, "gone.txt", "old").ok());
  StartFunction();
  // gone.txt is in the cache first, then deleted from the bucket.
  RuntimeApiServer::Answer a = api_.Invoke(S3Doc(bucket_, "ObjectCreated:Put", "gone.txt", "01"));
  ASSERT_FALSE(a.error) << a.body << "\n" << ReadFile(log_);
  ASSERT_TRUE(Exists(cache_ + "/gone.txt"));
  ASSERT_TRUE(s3_->DeleteObject(bucket_, "gone.txt").ok());

  std::string sns = json{{"Type", "Notification"},
                         {"MessageId", "sns-1"},
                         {"TopicArn", "arn:aws:sns:us-east-1:123456789012:t"},
                         {"Message", S3Doc(bucket_, "ObjectRemoved:Delete", "gone.txt", "02")}}
                        .dump();
  json batch = {
      {"Records", json::array({
                      SqsRecord("m-create", S3Doc(bucket_, "ObjectCreated:Put", "new.txt", "0A")),
                      SqsRecord("m-bad", R"({"Records":[{"eventSource":"aws:s3"}]})"),
                      SqsRecord("m-sns-delete", sns),
                      SqsRecord("m-test", R"({"Service":"Amazon S3",)"
                                          R"("Event":"s3:TestEvent","Bucket":"b"})"),
                  })}};
  a = api_.Invoke(batch.dump());
  ASSERT_FALSE(a.error) << a.body << "\n" << ReadFile(log_);
  EXPECT_EQ(json::parse(a.body),
            json::parse(R"({"batchItemFailures":[{"itemIdentifier":"m-bad"}]})"));
  EXPECT_EQ(ReadFile(cache_ + "/new.txt"), "fresh");
  EXPECT_FALSE(Exists(cache_ + "/gone.txt"));
  // The failure's reason is in the log.
  EXPECT_NE(ReadFile(log_).find("m-bad failed"), std::string::npos);
}

TEST_F(LambdaModeTest, ScheduledEventReconcilesAndEraseReturnsAReceipt) {
  ASSERT_TRUE(s3_->PutObject(bucket_, "missed.txt", "never notified").ok());
  ASSERT_TRUE(s3_->PutObject(bucket_, "secret.txt", "personal").ok());
  std::filesystem::create_directories(cache_ + "/old");
  {
    std::ofstream orphan(cache_ + "/old/orphan.txt");
    orphan << "deleted long ago";
  }
  StartFunction();
  json scheduled = {{"version", "0"},
                    {"id", "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa"},
                    {"detail-type", "Scheduled Event"},
                    {"source", "aws.events"},
                    {"account", "123456789012"},
                    {"time", "2026-11-25T06:00:00Z"},
                    {"region", "us-east-1"},
                    {"resources", json::array({"arn:aws:events:us-east-1:123456789012:rule/r"})},
                    {"detail", json::object()}};
  RuntimeApiServer::Answer a = api_.Invoke(scheduled.dump());
  ASSERT_FALSE(a.error) << a.body << "\n" << ReadFile(log_);
  EXPECT_EQ(ReadFile(cache_ + "/missed.txt"), "never notified");
  EXPECT_EQ(ReadFile(cache_ + "/secret.txt"), "personal");
  EXPECT_FALSE(Exists(cache_ + "/old/orphan.txt"));
  EXPECT_EQ(json::parse(a.body)["downloads_waiting"], 0) << a.body;

  a = api_.Invoke(R"({"erase":{"keys":["secret.txt"],"request_id":"erase-it-1"}})");
  ASSERT_FALSE(a.error) << a.body << "\n" << ReadFile(log_);
  json receipt = json::parse(a.body);
  EXPECT_EQ(receipt["ok"], true) << a.body;
  EXPECT_EQ(receipt["request"]["request_id"], "erase-it-1") << a.body;
  EXPECT_FALSE(Exists(cache_ + "/secret.txt"));
  EXPECT_EQ(s3_->HeadObject(bucket_, "secret.txt", "").status().code(), Code::kNotFound);
  EXPECT_TRUE(Exists(cache_ + "/.delete-sync/receipts"));

  // Another bucket than the function's is refused, and nothing is erased.
  a = api_.Invoke(R"({"erase":{"keys":["missed.txt"],"bucket":"someone-elses"}})");
  ASSERT_TRUE(a.error);
  EXPECT_EQ(a.error_type_header, "DeleteSync.InvalidRequest");
  EXPECT_TRUE(Exists(cache_ + "/missed.txt"));
}

TEST_F(LambdaModeTest, MissingCacheFolderPostsInitErrorAndExits) {
  StartFunction({{"DELETE_SYNC_CACHE", dir_ + "/not-mounted"}});
  std::string type;
  std::string body = api_.WaitInitError(&type);
  ASSERT_FALSE(body.empty()) << ReadFile(log_);
  EXPECT_EQ(type, "Runtime.InvalidConfiguration");
  json err = json::parse(body);
  EXPECT_EQ(err["errorType"], "Runtime.InvalidConfiguration");
  EXPECT_NE(err["errorMessage"].get<std::string>().find("not-mounted"), std::string::npos) << body;
  int code = WaitExit();
  EXPECT_NE(code, 0);
  EXPECT_NE(code, -1) << "still running after init/error";
  EXPECT_FALSE(Exists(dir_ + "/not-mounted"));  // never created on the local disk
}

TEST_F(LambdaModeTest, InvalidSettingPostsInitError) {
  StartFunction({{"DELETE_SYNC_STATE_JOURNAL", "wal2"}});
  std::string type;
  std::string body = api_.WaitInitError(&type);
  ASSERT_FALSE(body.empty()) << ReadFile(log_);
  EXPECT_NE(body.find("state-journal"), std::string::npos) << body;
  EXPECT_EQ(WaitExit(), 2);
}

}  // namespace
}  // namespace ds::itest
