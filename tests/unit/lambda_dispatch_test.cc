// Lambda dispatch without sockets: which answer each kind of event gets, and that an SQS batch
// names exactly its failed records in batchItemFailures.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>

#include "fakes/fakes.h"
#include "fakes/notification_docs.h"
#include "transport/lambda_runtime.h"

namespace ds::lambda {
namespace {

using nlohmann::json;

// One AWS S3 notification record (keys URL-encoded).
json S3Record(const std::string& name, const std::string& key, const std::string& bucket = "b") {
  testdocs::Record r = testdocs::Aws(name, bucket, key, "0A");
  r.size = 1;
  r.etag = "e";
  return r.Json();
}

std::string S3Doc(const std::string& name, const std::string& key) {
  return json{{"Records", json::array({S3Record(name, key)})}}.dump();
}

json SqsRecord(const std::string& id, const std::string& body) {
  return testdocs::SqsMessage(id, body, "rh-" + id, "arn:aws:sqs:us-east-1:123456789012:q");
}

std::string SnsEnvelope(const std::string& message) {
  return json{{"Type", "Notification"},
              {"MessageId", "m"},
              {"TopicArn", "arn:aws:sns:us-east-1:123456789012:t"},
              {"Message", message}}
      .dump();
}

std::set<std::string> FailedIds(const InvocationResult& r) {
  std::set<std::string> ids;
  json j = json::parse(r.body);
  for (const json& f : j.at("batchItemFailures")) ids.insert(f.at("itemIdentifier"));
  return ids;
}

class LambdaDispatchTest : public ::testing::Test {
 protected:
  LambdaDispatchTest() {
    EngineOptions o;
    o.bucket = "b";
    o.max_fetch_attempts = 8;
    engine_ = std::make_unique<Engine>(&store_, cache_, state_, clock_, o);
    DispatchOptions d;
    d.deadline_margin_ms = 1000;
    d.poll_ms = 100;
    DispatchHooks hooks;
    hooks.reconcile = [this](const Invocation&) {
      ++reconciles_;
      return InvocationResult::Response(R"({"reconciled":true})");
    };
    hooks.erase = [this](const Invocation&, const json& req) {
      erase_requests_.push_back(req);
      return InvocationResult::Response(R"({"receipt":1})");
    };
    dispatcher_ = std::make_unique<Dispatcher>(*engine_, state_, clock_, d, std::move(hooks));
    dispatcher_->sleep = [this](int64_t ms) {
      ++sleeps_;
      clock_.Advance(ms);
    };
  }
  Invocation Inv(const std::string& body, int64_t seconds_left = 60) {
    Invocation inv;
    inv.request_id = "req-1";
    inv.body = body;
    inv.deadline_ms = clock_.NowMillis() + seconds_left * 1000;
    return inv;
  }

  fakes::FakeObjectStore store_;
  fakes::FakeCacheFs cache_;
  fakes::FakeStateStore state_;
  fakes::FakeClock clock_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<Dispatcher> dispatcher_;
  int reconciles_ = 0, sleeps_ = 0;
  std::vector<json> erase_requests_;
};

TEST_F(LambdaDispatchTest, DirectS3CreationIsDownloadedBeforeTheAnswer) {
  store_.Put("b", "dir/a b.txt", "hello");
  InvocationResult r = dispatcher_->Handle(Inv(S3Doc("ObjectCreated:Put", "dir/a+b.txt")));
  ASSERT_TRUE(r.ok) << r.error_message;
  EXPECT_EQ(cache_.Read("dir/a b.txt"), "hello");
  EXPECT_EQ(json::parse(r.body)["downloaded"], 1) << r.body;
  EXPECT_EQ(state_.JobCounts()->first, 0);
}

TEST_F(LambdaDispatchTest, DirectS3RemovalIsApplied) {
  cache_.PutFile("k", "x");
  InvocationResult r = dispatcher_->Handle(Inv(S3Doc("ObjectRemoved:Delete", "k")));
  ASSERT_TRUE(r.ok) << r.error_message;
  EXPECT_FALSE(cache_.Has("k"));
  EXPECT_EQ(json::parse(r.body)["applied"], 1);
}

TEST_F(LambdaDispatchTest, MalformedDirectEventIsAnInvocationErrorAndChangesNothing) {
  cache_.PutFile("k", "x");
  InvocationResult r = dispatcher_->Handle(Inv(R"({"Records":[{"eventSource":"aws:s3"}]})"));
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error_type, "DeleteSync.InvalidEvent");
  EXPECT_NE(r.error_message.find("malformed notification"), std::string::npos) << r.error_message;
  EXPECT_TRUE(cache_.Has("k"));

  r = dispatcher_->Handle(Inv("not json"));
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error_type, "DeleteSync.InvalidEvent");
}

TEST_F(LambdaDispatchTest, FailedRemovalIsAnInvocationError) {
  cache_.PutFile("k", "x");
  cache_.fail_remove = Status::Io("disk on fire");
  InvocationResult r = dispatcher_->Handle(Inv(S3Doc("ObjectRemoved:Delete", "k")));
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error_type, "DeleteSync.ApplyFailed");
  EXPECT_NE(r.error_message.find("disk on fire"), std::string::npos) << r.error_message;
}

TEST_F(LambdaDispatchTest, DownloadThatFailsForGoodFailsTheDirectInvocation) {
  // Not in the store: a 404 means "gone", which is a settled outcome; a store error is not.
  store_.Put("b", "k", "v");
  store_.fail_with = Status::Denied("access denied");
  store_.fail_times = 100;
  InvocationResult r = dispatcher_->Handle(Inv(S3Doc("ObjectCreated:Put", "k")));
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error_message.find("did not finish"), std::string::npos) << r.error_message;
  EXPECT_FALSE(cache_.Has("k"));
}

TEST_F(LambdaDispatchTest, SqsBatchNamesExactlyTheFailedRecords) {
  store_.Put("b", "good", "1");
  store_.Put("b", "sns", "2");
  cache_.PutFile("old", "x");
  json batch = {
      {"Records", json::array({
                      SqsRecord("m-good", S3Doc("ObjectCreated:Put", "good")),
                      SqsRecord("m-bad", R"({"Records":[{"eventSource":"aws:s3"}]})"),
                      SqsRecord("m-sns", SnsEnvelope(S3Doc("ObjectCreated:Put", "sns"))),
                      SqsRecord("m-remove", S3Doc("ObjectRemoved:Delete", "old")),
                      SqsRecord("m-test", R"({"Service":"Amazon S3","Event":"s3:TestEvent",)"
                                          R"("Time":"2026-11-25T00:00:00Z","Bucket":"b"})"),
                      SqsRecord("m-notjson", "{{{"),
                  })}};
  InvocationResult r = dispatcher_->Handle(Inv(batch.dump()));
  ASSERT_TRUE(r.ok) << r.error_message;
  EXPECT_EQ(FailedIds(r), (std::set<std::string>{"m-bad", "m-notjson"})) << r.body;
  EXPECT_EQ(cache_.Read("good"), "1");
  EXPECT_EQ(cache_.Read("sns"), "2");
  EXPECT_FALSE(cache_.Has("old"));
}

TEST_F(LambdaDispatchTest, SqsBatchWithNothingFailedAnswersAnEmptyList) {
  cache_.PutFile("k", "x");
  json batch = {{"Records", json::array({SqsRecord("m1", S3Doc("ObjectRemoved:Delete", "k"))})}};
  InvocationResult r = dispatcher_->Handle(Inv(batch.dump()));
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(json::parse(r.body), json::parse(R"({"batchItemFailures":[]})"));
}

TEST_F(LambdaDispatchTest, SqsRecordWhoseDownloadFailsIsReportedAndOthersAreNot) {
  store_.Put("b", "a", "1");
  store_.Put("b", "denied", "2");
  store_.fail_with = Status::Denied("access denied");
  store_.fail_times = 1;  // the first GET: the queue claims oldest first, "denied" first
  json batch = {
      {"Records", json::array({SqsRecord("m-denied", S3Doc("ObjectCreated:Put", "denied")),
                               SqsRecord("m-a", S3Doc("ObjectCreated:Put", "a"))})}};
  InvocationResult r = dispatcher_->Handle(Inv(batch.dump()));
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(FailedIds(r), (std::set<std::string>{"m-denied"})) << r.body;
  EXPECT_EQ(cache_.Read("a"), "1");
  EXPECT_FALSE(cache_.Has("denied"));
}

TEST_F(LambdaDispatchTest, RefusedKeyFailsItsRecord) {
  json batch = {{"Records", json::array({SqsRecord("m-dots", S3Doc("ObjectRemoved:Delete",
                                                                   "..%2F..%2Fetc%2Fpasswd"))})}};
  InvocationResult r = dispatcher_->Handle(Inv(batch.dump()));
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(FailedIds(r), (std::set<std::string>{"m-dots"}));
}

TEST_F(LambdaDispatchTest, TransientDownloadErrorsAreRetriedWithinTheInvocation) {
  store_.Put("b", "k", "v");
  store_.fail_with = Status::Unavailable("503 slow down");
  store_.fail_times = 2;
  json batch = {{"Records", json::array({SqsRecord("m1", S3Doc("ObjectCreated:Put", "k"))})}};
  InvocationResult r = dispatcher_->Handle(Inv(batch.dump()));
  ASSERT_TRUE(r.ok);
  EXPECT_TRUE(FailedIds(r).empty()) << r.body;
  EXPECT_EQ(cache_.Read("k"), "v");
  EXPECT_GT(sleeps_, 0);  // waited for the retry's backoff
}

TEST_F(LambdaDispatchTest, DownloadNotDoneByTheDeadlineFailsItsRecordAndStaysJournaled) {
  store_.Put("b", "k", "v");
  store_.fail_with = Status::Unavailable("503 slow down");
  store_.fail_times = 1000;
  json batch = {{"Records", json::array({SqsRecord("m1", S3Doc("ObjectCreated:Put", "k"))})}};
  InvocationResult r = dispatcher_->Handle(Inv(batch.dump(), /*seconds_left=*/3));
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(FailedIds(r), (std::set<std::string>{"m1"}));
  EXPECT_FALSE(cache_.Has("k"));
  EXPECT_EQ(state_.JobCounts()->first, 1);  // kept for the retry / the next invocation
}

// Several hosts share the journal (docs/SEMANTICS.md section 9): while this invocation waits for
// the retry of its download, another process (a serve on another host) runs the job. The
// invocation sees the job leave the journal and succeeds, instead of waiting to its deadline.
TEST_F(LambdaDispatchTest, DownloadFinishedByAnotherProcessSucceedsTheInvocation) {
  store_.Put("b", "k", "v");
  store_.fail_with = Status::Unavailable("503 slow down");
  store_.fail_times = 1;
  EngineOptions o;
  o.bucket = "b";
  Engine other(&store_, cache_, state_, clock_, o);
  int other_ran = 0;
  dispatcher_->sleep = [&](int64_t ms) {
    ++sleeps_;
    if (other_ran == 0) {
      // The other process claims the job ahead of its backoff (its lease expired, say) and
      // publishes it.
      auto jobs = state_.ClaimJobs(clock_.NowMillis() + 3600 * 1000, 1);
      ASSERT_TRUE(jobs.ok());
      ASSERT_EQ(jobs->size(), 1u);
      EXPECT_EQ(other.RunJob(jobs->front()), JobOutcome::kPublished);
      ++other_ran;
    }
    clock_.Advance(ms);
  };
  json batch = {{"Records", json::array({SqsRecord("m1", S3Doc("ObjectCreated:Put", "k"))})}};
  const int64_t start = clock_.NowMillis();
  InvocationResult r = dispatcher_->Handle(Inv(batch.dump(), /*seconds_left=*/600));
  ASSERT_TRUE(r.ok);
  EXPECT_TRUE(FailedIds(r).empty()) << r.body;
  EXPECT_EQ(other_ran, 1);
  EXPECT_EQ(cache_.Read("k"), "v");
  // Answered at the next poll, not at the deadline.
  EXPECT_LT(clock_.NowMillis() - start, 60 * 1000);
}

TEST_F(LambdaDispatchTest, RecordsPastTheDeadlineMarginAreNotStartedButReported) {
  cache_.PutFile("k", "x");
  json batch = {{"Records", json::array({SqsRecord("m1", S3Doc("ObjectRemoved:Delete", "k"))})}};
  Invocation inv = Inv(batch.dump());
  inv.deadline_ms = clock_.NowMillis() + 500;  // inside the 1000 ms margin
  InvocationResult r = dispatcher_->Handle(inv);
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(FailedIds(r), (std::set<std::string>{"m1"}));
  EXPECT_TRUE(cache_.Has("k"));
}

TEST_F(LambdaDispatchTest, SqsRecordWithoutMessageIdFailsTheWholeInvocation) {
  json rec = SqsRecord("m1", S3Doc("ObjectRemoved:Delete", "k"));
  rec.erase("messageId");
  InvocationResult r = dispatcher_->Handle(Inv(json{{"Records", json::array({rec})}}.dump()));
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error_message.find("messageId"), std::string::npos);
}

TEST_F(LambdaDispatchTest, ScheduledEventRunsTheReconcileHook) {
  json ev = {{"version", "0"},
             {"id", "x"},
             {"detail-type", "Scheduled Event"},
             {"source", "aws.events"},
             {"time", "2026-11-25T00:00:00Z"},
             {"resources", json::array({"arn:aws:events:us-east-1:1:rule/r"})},
             {"detail", json::object()}};
  InvocationResult r = dispatcher_->Handle(Inv(ev.dump()));
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(reconciles_, 1);
  EXPECT_EQ(r.body, R"({"reconciled":true})");
}

TEST_F(LambdaDispatchTest, EraseRequestGoesToTheEraseHook) {
  InvocationResult r = dispatcher_->Handle(Inv(R"({"erase":{"keys":["a","b"]}})"));
  ASSERT_TRUE(r.ok);
  ASSERT_EQ(erase_requests_.size(), 1u);
  EXPECT_EQ(erase_requests_[0]["keys"], json::parse(R"(["a","b"])"));

  r = dispatcher_->Handle(Inv(R"({"erase":"everything"})"));
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(erase_requests_.size(), 1u);
}

TEST(LambdaErrorDocument, HasTheFieldsTheRuntimeApiExpects) {
  json j = json::parse(ErrorDocument("DeleteSync.X", "it \"broke\""));
  EXPECT_EQ(j["errorType"], "DeleteSync.X");
  EXPECT_EQ(j["errorMessage"], "it \"broke\"");
}

}  // namespace
}  // namespace ds::lambda
