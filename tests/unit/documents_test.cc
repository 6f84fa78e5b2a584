// The one result of applying notification documents (core/documents.h), and how each transport
// maps it: the webhook's status, the AMQP disposition.
#include "core/documents.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "fakes/engine_on_fakes.h"
#include "transport/amqp_dispatch.h"
#include "transport/http_webhook.h"

namespace ds {
namespace {

using DocumentsTest = fakes::EngineOnFakesTest;

TEST_F(DocumentsTest, EachDocumentOfAGroupGetsItsOwnSettlement) {
  cache_.PutFile("gone", "x");
  cache_.PutFile("stuck", "x");
  cache_.fail_remove = Status::Io("unlink stuck: Input/output error");
  cache_.fail_remove_path = "stuck";
  const std::string removal = Doc("ObjectRemoved:Delete", "gone");
  const std::string creation = Doc("ObjectCreated:Put", "new");
  const std::string malformed = R"({"Records":[{"eventSource":"ceph:s3"}]})";
  const std::string refused = Doc("ObjectRemoved:Delete", "../../etc/passwd");
  const std::string failing = Doc("ObjectRemoved:Delete", "stuck");
  const std::string test_event = R"({"Event":"s3:TestEvent","Bucket":"b"})";
  std::vector<DocumentResult> r =
      ApplyDocuments(*engine_, {removal, creation, malformed, refused, failing, test_event});
  ASSERT_EQ(r.size(), 6u);

  EXPECT_EQ(r[0].settlement, Settlement::kDurable);
  EXPECT_EQ(r[0].applied, 1);
  EXPECT_EQ(r[0].Reason(), "");
  EXPECT_FALSE(cache_.Has("gone"));

  EXPECT_EQ(r[1].settlement, Settlement::kDurable);
  EXPECT_EQ(r[1].queued, 1);
  ASSERT_EQ(r[1].queued_keys.size(), 1u);
  EXPECT_EQ(r[1].queued_keys[0], std::make_pair(std::string("b"), std::string("new")));

  EXPECT_EQ(r[2].settlement, Settlement::kMalformed);
  EXPECT_EQ(r[2].events, 0);
  EXPECT_EQ(r[2].Reason().rfind("malformed notification: ", 0), 0u) << r[2].Reason();

  EXPECT_EQ(r[3].settlement, Settlement::kRefused);
  ASSERT_EQ(r[3].refusals.size(), 1u);
  ASSERT_TRUE(r[3].refusals[0].refusal.has_value());
  EXPECT_EQ(*r[3].refusals[0].refusal, KeyRefusal::kDotSegment);  // typed, not read from text
  EXPECT_EQ(r[3].refusals[0].key, "../../etc/passwd");

  EXPECT_EQ(r[4].settlement, Settlement::kRetry);
  EXPECT_EQ(r[4].failed, 1);
  EXPECT_NE(r[4].Reason().find("Input/output error"), std::string::npos) << r[4].Reason();
  EXPECT_TRUE(cache_.Has("stuck"));

  EXPECT_EQ(r[5].settlement, Settlement::kDurable);
  EXPECT_EQ(r[5].test_events, 1);
}

TEST_F(DocumentsTest, AFailureOutranksARefusalInOneDocument) {
  cache_.PutFile("stuck", "x");
  cache_.fail_remove = Status::Io("unlink stuck: Input/output error");
  const std::string both =
      R"({"Records":[{"eventSource":"ceph:s3","eventName":"ObjectRemoved:Delete","s3":{"bucket":)"
      R"({"name":"b"},"object":{"key":"a//b"}}},{"eventSource":"ceph:s3","eventName":)"
      R"("ObjectRemoved:Delete","s3":{"bucket":{"name":"b"},"object":{"key":"stuck"}}}]})";
  std::vector<DocumentResult> r = ApplyDocuments(*engine_, {both});
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].settlement, Settlement::kRetry);  // delivered again: the removal must happen
  EXPECT_EQ(r[0].refused, 1);
  EXPECT_EQ(r[0].failed, 1);
}

TEST_F(DocumentsTest, TransportsMapTheSettlementTheirWay) {
  DocumentResult d;
  EXPECT_EQ(HttpStatusOf(Settlement::kDurable), 200);
  EXPECT_EQ(HttpStatusOf(Settlement::kRefused), 422);
  EXPECT_EQ(HttpStatusOf(Settlement::kMalformed), 400);
  EXPECT_EQ(HttpStatusOf(Settlement::kRetry), 500);
  EXPECT_EQ(VerdictFor(d).disposition, AmqpDisposition::kAck);
  d.settlement = Settlement::kMalformed;
  d.error = "malformed notification: no Records";
  AmqpVerdict bad = VerdictFor(d);
  EXPECT_EQ(bad.disposition, AmqpDisposition::kDeadLetter);
  EXPECT_EQ(bad.reason, "malformed notification: no Records");
  EXPECT_EQ(ReplyFor(d).status, 400);
  EXPECT_EQ(nlohmann::json::parse(ReplyFor(d).body)["error"], d.error);
  d = DocumentResult{};
  d.settlement = Settlement::kRefused;
  d.refusals.push_back({"b", "a//b", "refused key 'a//b' (empty-segment): ...", std::nullopt});
  EXPECT_EQ(VerdictFor(d).disposition, AmqpDisposition::kDeadLetter);
  EXPECT_EQ(VerdictFor(d).reason, d.refusals[0].error);
  d.settlement = Settlement::kRetry;
  EXPECT_EQ(VerdictFor(d).disposition, AmqpDisposition::kRetry);
}

}  // namespace
}  // namespace ds
