// AMQP URL parsing and redaction, how a document's outcome becomes an acknowledgement, and
// the partition key. The broker itself is exercised by
// tests/integration/amqp_test.cc against a real RabbitMQ.
#include "transport/amqp_dispatch.h"

#include <gtest/gtest.h>

#include "transport/amqp.h"

namespace ds {
namespace {

TEST(AmqpUrlTest, ParsesUserPasswordHostPortAndVhost) {
  Result<AmqpUrl> u = ParseAmqpUrl("amqp://alice:s3cret@broker.example:5673/prod");
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_EQ(u->user, "alice");
  EXPECT_EQ(u->password, "s3cret");
  EXPECT_EQ(u->host, "broker.example");
  EXPECT_EQ(u->port, 5673);
  EXPECT_EQ(u->vhost, "prod");
  EXPECT_FALSE(u->tls);
}

TEST(AmqpUrlTest, DefaultsAndTheRootVhost) {
  Result<AmqpUrl> u = ParseAmqpUrl("amqp://127.0.0.1");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->port, 5672);
  EXPECT_EQ(u->vhost, "/");
  EXPECT_EQ(u->user, "guest");
  Result<AmqpUrl> root = ParseAmqpUrl("amqp://u:p@h:1/%2f");
  ASSERT_TRUE(root.ok());
  EXPECT_EQ(root->vhost, "/");
  Result<AmqpUrl> tls = ParseAmqpUrl("amqps://u:p@h/v");
  ASSERT_TRUE(tls.ok());
  EXPECT_TRUE(tls->tls);
  EXPECT_EQ(tls->port, 5671);
}

TEST(AmqpUrlTest, RejectsOtherSchemesAndGarbage) {
  EXPECT_FALSE(ParseAmqpUrl("http://h:5672/").ok());
  EXPECT_FALSE(ParseAmqpUrl("").ok());
  EXPECT_FALSE(ParseAmqpUrl("amqp://h:notaport/v").ok());
}

TEST(AmqpUrlTest, RedactionNeverShowsThePassword) {
  Result<AmqpUrl> u = ParseAmqpUrl("amqp://alice:s3cret@h:5672/%2f");
  ASSERT_TRUE(u.ok());
  std::string r = RedactAmqpUrl(*u);
  EXPECT_EQ(r, "amqp://alice:***@h:5672/%2f");
  EXPECT_EQ(r.find("s3cret"), std::string::npos);
}

// The verdict for each settlement: tests/unit/documents_test.cc
// (TransportsMapTheSettlementTheirWay).

TEST(AmqpPartitionTest, KeyIsFixedLengthStableAndHidesTheKey) {
  std::string a = PartitionKey("bucket", "people/alice.jpg");
  EXPECT_EQ(a.size(), 32u);
  EXPECT_EQ(a, PartitionKey("bucket", "people/alice.jpg"));
  EXPECT_NE(a, PartitionKey("bucket", "people/bob.jpg"));
  EXPECT_NE(a, PartitionKey("bucket2", "people/alice.jpg"));
  EXPECT_EQ(a.find("alice"), std::string::npos);
  // A 1024-byte key still gives a routing key well under AMQP's 255-byte limit.
  EXPECT_EQ(PartitionKey("b", std::string(1024, 'k')).size(), 32u);
}

}  // namespace
}  // namespace ds
