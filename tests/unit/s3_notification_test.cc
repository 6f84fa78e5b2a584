// The bucket notification configuration that setup-notifications writes: merged with what is
// there (other entries kept byte for byte in meaning), idempotent, and the CreateTopic answer.
#include <gtest/gtest.h>

#include "s3/xml.h"

namespace ds::s3 {
namespace {

NotificationTarget Ours() {
  NotificationTarget t;
  t.id = "delete-sync";
  t.kind = "Topic";
  t.arn = "arn:aws:sns:default::delete-sync-b";
  t.events = {"s3:ObjectCreated:*", "s3:ObjectRemoved:*"};
  return t;
}

TEST(NotificationConfigTest, CreatesTheConfigurationWhenThereIsNone) {
  bool changed = false;
  Result<std::string> x = MergeNotificationConfiguration("", Ours(), &changed);
  ASSERT_TRUE(x.ok()) << x.status().ToString();
  EXPECT_TRUE(changed);
  EXPECT_NE(x->find("<TopicConfiguration><Id>delete-sync</Id><Topic>arn:aws:sns:default::"
                    "delete-sync-b</Topic><Event>s3:ObjectCreated:*</Event><Event>s3:"
                    "ObjectRemoved:*</Event></TopicConfiguration>"),
            std::string::npos)
      << *x;
}

TEST(NotificationConfigTest, IsIdempotentAndKeepsOtherEntries) {
  const std::string existing =
      R"(<NotificationConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">)"
      R"(<QueueConfiguration><Id>other</Id><Queue>arn:aws:sqs:us-east-1:1:q</Queue>)"
      R"(<Event>s3:ObjectCreated:Put</Event><Filter><S3Key><FilterRule><Name>suffix</Name>)"
      R"(<Value>.jpg</Value></FilterRule></S3Key></Filter></QueueConfiguration>)"
      R"(</NotificationConfiguration>)";
  bool changed = false;
  Result<std::string> once = MergeNotificationConfiguration(existing, Ours(), &changed);
  ASSERT_TRUE(once.ok());
  EXPECT_TRUE(changed);
  EXPECT_NE(once->find("<Id>other</Id>"), std::string::npos);
  EXPECT_NE(once->find("<Value>.jpg</Value>"), std::string::npos);
  Result<std::string> twice = MergeNotificationConfiguration(*once, Ours(), &changed);
  ASSERT_TRUE(twice.ok());
  EXPECT_FALSE(changed);
  // Event order does not matter; a different topic, event set or prefix does.
  NotificationTarget reordered = Ours();
  std::swap(reordered.events[0], reordered.events[1]);
  ASSERT_TRUE(MergeNotificationConfiguration(*once, reordered, &changed).ok());
  EXPECT_FALSE(changed);
  NotificationTarget prefixed = Ours();
  prefixed.prefix = "train/";
  Result<std::string> p = MergeNotificationConfiguration(*once, prefixed, &changed);
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(changed);
  EXPECT_NE(p->find("<Name>prefix</Name><Value>train/</Value>"), std::string::npos);
  // Replaced, not duplicated.
  EXPECT_EQ(p->find("<Id>delete-sync</Id>"), p->rfind("<Id>delete-sync</Id>"));
}

TEST(NotificationConfigTest, RejectsSomethingElse) {
  bool changed = false;
  EXPECT_FALSE(MergeNotificationConfiguration("<Error/>", Ours(), &changed).ok());
  EXPECT_FALSE(MergeNotificationConfiguration("not xml <", Ours(), &changed).ok());
}

TEST(NotificationConfigTest, ReadsTheTopicArnOfCreateTopic) {
  Result<std::string> arn = ParseCreateTopicArn(
      R"(<CreateTopicResponse xmlns="https://sns.amazonaws.com/doc/2010-03-31/">)"
      R"(<CreateTopicResult><TopicArn>arn:aws:sns:default::t</TopicArn></CreateTopicResult>)"
      R"(<ResponseMetadata><RequestId/></ResponseMetadata></CreateTopicResponse>)");
  ASSERT_TRUE(arn.ok());
  EXPECT_EQ(*arn, "arn:aws:sns:default::t");
  EXPECT_FALSE(ParseCreateTopicArn("<CreateTopicResponse/>").ok());
}

}  // namespace
}  // namespace ds::s3
