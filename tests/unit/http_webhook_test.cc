// The webhook's answers, without sockets: which status a sender gets for each kind of document.
#include "transport/http_webhook.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "fakes/engine_on_fakes.h"

namespace ds {
namespace {

using WebhookReplyTest = fakes::EngineOnFakesTest;

TEST_F(WebhookReplyTest, RemovalAppliedIs200) {
  cache_.PutFile("k", "x");
  WebhookReply r = HandleNotification(*engine_, Doc("ObjectRemoved:Delete", "k"));
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(nlohmann::json::parse(r.body)["applied"], 1);
  EXPECT_FALSE(cache_.Has("k"));
}

TEST_F(WebhookReplyTest, CreationJournaledIs200AndCountsQueued) {
  WebhookReply r = HandleNotification(*engine_, Doc("ObjectCreated:Put", "k"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.queued, 1);
}

TEST_F(WebhookReplyTest, MalformedIs400AndChangesNothing) {
  cache_.PutFile("k", "x");
  WebhookReply r = HandleNotification(*engine_, R"({"Records":[{"eventSource":"ceph:s3"}]})");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("malformed notification"), std::string::npos) << r.body;
  EXPECT_TRUE(cache_.Has("k"));
}

TEST_F(WebhookReplyTest, RefusedKeyIs422NamingTheReason) {
  WebhookReply r = HandleNotification(*engine_, Doc("ObjectRemoved:Delete", "../../etc/passwd"));
  EXPECT_EQ(r.status, 422);
  EXPECT_NE(r.body.find("dot-segment"), std::string::npos) << r.body;
}

TEST_F(WebhookReplyTest, FailedRemovalIs500SoTheSenderRetries) {
  cache_.PutFile("k", "x");
  cache_.fail_remove = Status::Io("unlink k: Input/output error");
  WebhookReply r = HandleNotification(*engine_, Doc("ObjectRemoved:Delete", "k"));
  EXPECT_EQ(r.status, 500);
  EXPECT_NE(r.body.find("Input/output error"), std::string::npos) << r.body;
  cache_.fail_remove = Status::Ok();
  EXPECT_EQ(HandleNotification(*engine_, Doc("ObjectRemoved:Delete", "k")).status, 200);
  EXPECT_FALSE(cache_.Has("k"));
}

TEST(TokenMatchesTest, ExactMatchOnly) {
  EXPECT_TRUE(TokenMatches("s3cret", "s3cret"));
  EXPECT_FALSE(TokenMatches("s3cre", "s3cret"));
  EXPECT_FALSE(TokenMatches("s3cretX", "s3cret"));
  EXPECT_FALSE(TokenMatches("", ""));  // an empty configured token never authenticates
}

}  // namespace
}  // namespace ds
