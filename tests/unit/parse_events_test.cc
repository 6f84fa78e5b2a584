// The parser of notification documents (src/core/parse_events.cc) on the AWS shapes: S3 records,
// SNS and SQS wrappers, EventBridge; and DecodeS3Key, CompareSequencers.
#include "core/parse_events.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "parse_events_helpers.h"

namespace ds::parse_events_test {
namespace {

// ---------------------------------------------------------------------------------------------
// AWS S3 records

TEST(ParseEventsTest, AwsSeveralRecordsDecodeKeysAndNormaliseNames) {
  ParsedDocument d = ParseSample("aws_put_three_records.json");
  ASSERT_EQ(d.events.size(), 3u);
  EXPECT_EQ(d.test_events, 0u);
  EXPECT_EQ(d.non_s3_messages, 0u);

  const Event& a = d.events[0];
  EXPECT_EQ(a.action, EventAction::kCreate);
  EXPECT_EQ(a.name, "ObjectCreated:Put");
  EXPECT_EQ(a.source, "aws:s3");
  EXPECT_EQ(a.bucket, "kestrel-archive");
  EXPECT_EQ(a.key, "field notes/day one.txt");  // '+' is a space
  EXPECT_EQ(a.version_id, std::nullopt);
  EXPECT_EQ(a.etag, "6d0bb00954ceb7fbee436bb55a8397a9");  // quotes stripped
  EXPECT_EQ(a.size, std::optional<uint64_t>(2048));
  EXPECT_EQ(a.sequencer, "0065A1B2C3D4E5F601");
  EXPECT_TRUE(a.ordered);
  EXPECT_FALSE(a.delete_marker);
  EXPECT_EQ(a.event_time, "2024-05-14T09:21:07.318Z");
  EXPECT_EQ(a.event_id, "7QXKM2PZ4RWA9B3C:0065A1B2C3D4E5F601");

  const Event& b = d.events[1];
  EXPECT_EQ(b.action, EventAction::kCreate);
  EXPECT_EQ(b.name, "ObjectCreated:CompleteMultipartUpload");  // "s3:" prefix removed
  EXPECT_EQ(b.key, "scans/plan B+extra.pdf");                  // %20 and %2B
  EXPECT_EQ(b.version_id, std::optional<std::string>("3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY"));
  EXPECT_EQ(b.etag, "c1f3d9a0b7e24c58a6d1e0f2b3c4d5e6-2");
  EXPECT_EQ(b.size, std::optional<uint64_t>(7340032));

  const Event& c = d.events[2];
  EXPECT_EQ(c.name, "ObjectCreated:Copy");
  EXPECT_EQ(c.key, "caf\xC3\xA9/men\xC3\xBC=1&2.txt");          // UTF-8 escapes, %3D, %26
  EXPECT_EQ(c.version_id, std::optional<std::string>("null"));  // kept as the string "null"
  EXPECT_EQ(c.sequencer, "0065a1b2c3d4e5f7ff");
  EXPECT_TRUE(c.ordered);  // lower-case hex is hex
}

TEST(ParseEventsTest, AwsDelete) {
  ParsedDocument d = ParseSample("aws_delete.json");
  ASSERT_EQ(d.events.size(), 1u);
  const Event& e = d.events[0];
  EXPECT_EQ(e.action, EventAction::kRemove);
  EXPECT_EQ(e.name, "ObjectRemoved:Delete");
  EXPECT_EQ(e.key, "field notes/day one.txt");
  EXPECT_FALSE(e.delete_marker);
  EXPECT_EQ(e.size, std::nullopt);
  EXPECT_EQ(e.etag, "");
  EXPECT_EQ(e.version_id, std::optional<std::string>("Vq1Lm3eDx8bTrw2HkZnPy0CgS5aJuQ7o"));
  EXPECT_TRUE(e.ordered);
}

TEST(ParseEventsTest, AwsDeleteMarkerWithS3Prefix) {
  ParsedDocument d = ParseSample("aws_delete_marker.json");
  ASSERT_EQ(d.events.size(), 1u);
  const Event& e = d.events[0];
  EXPECT_EQ(e.action, EventAction::kRemove);
  EXPECT_EQ(e.name, "ObjectRemoved:DeleteMarkerCreated");
  EXPECT_TRUE(e.delete_marker);
  EXPECT_EQ(e.key, "ledger/2024/05.csv");
  EXPECT_EQ(e.version_id, std::optional<std::string>("Mk8vXw2Qe0RtYu4IoPa6SdFg1HjKl3Zx"));
}

TEST(ParseEventsTest, AwsLifecycleExpirations) {
  ParsedDocument d = ParseSample("aws_lifecycle_expiration.json");
  ASSERT_EQ(d.events.size(), 2u);
  EXPECT_EQ(d.events[0].name, "LifecycleExpiration:Delete");
  EXPECT_EQ(d.events[0].action, EventAction::kRemove);
  EXPECT_FALSE(d.events[0].delete_marker);
  EXPECT_EQ(d.events[0].key, "tmp/session 42.bin");
  EXPECT_EQ(d.events[1].name, "LifecycleExpiration:DeleteMarkerCreated");
  EXPECT_EQ(d.events[1].action, EventAction::kRemove);
  EXPECT_TRUE(d.events[1].delete_marker);
  EXPECT_EQ(d.events[1].key, "logs/app-01.log");  // needless %2D
}

TEST(ParseEventsTest, AwsIgnoredTypesStillProduceEvents) {
  ParsedDocument d = ParseSample("aws_ignored_types.json");
  const std::vector<std::string> names = {
      "ObjectRestore:Post",  "ObjectRestore:Completed", "Replication:OperationFailedReplication",
      "LifecycleTransition", "ObjectTagging:Put",       "ObjectAcl:Put",
      "IntelligentTiering",  "ObjectDeleted",           "ObjectRemoved:Unknown"};
  ASSERT_EQ(d.events.size(), names.size());
  for (size_t i = 0; i < names.size(); ++i) {
    const Event& e = d.events[i];
    EXPECT_EQ(e.action, EventAction::kIgnore) << names[i];
    EXPECT_EQ(e.name, names[i]);
    EXPECT_FALSE(e.delete_marker);
    EXPECT_EQ(e.bucket, "kestrel-archive");
    EXPECT_EQ(e.key, "cold/item " + std::to_string(i) + ".dat");
  }
}

TEST(ParseEventsTest, TestEventIsCountedNotAnEvent) {
  ParsedDocument d = ParseSample("aws_testevent.json");
  EXPECT_TRUE(d.events.empty());
  EXPECT_EQ(d.test_events, 1u);
  EXPECT_EQ(d.non_s3_messages, 0u);
}

TEST(ParseEventsTest, ActionNames) {
  EXPECT_STREQ(ActionName(EventAction::kCreate), "create");
  EXPECT_STREQ(ActionName(EventAction::kRemove), "remove");
  EXPECT_STREQ(ActionName(EventAction::kIgnore), "ignore");
}

TEST(ParseEventsTest, ClassificationOfNames) {
  struct Case {
    const char* name;
    EventAction action;
    bool marker;
  };
  const Case cases[] = {
      {"ObjectCreated:Put", EventAction::kCreate, false},
      {"s3:ObjectCreated:Post", EventAction::kCreate, false},
      {"ObjectCreated:Copy", EventAction::kCreate, false},
      {"ObjectCreated:CompleteMultipartUpload", EventAction::kCreate, false},
      {"ObjectRemoved:Delete", EventAction::kRemove, false},
      {"s3:ObjectRemoved:DeleteMarkerCreated", EventAction::kRemove, true},
      {"LifecycleExpiration:Delete", EventAction::kRemove, false},
      {"s3:LifecycleExpiration:DeleteMarkerCreated", EventAction::kRemove, true},
      {"ObjectRestore:Completed", EventAction::kIgnore, false},
      {"ObjectRestore:Delete", EventAction::kIgnore, false},
      {"Replication:OperationReplicatedAfterThreshold", EventAction::kIgnore, false},
      {"LifecycleTransition", EventAction::kIgnore, false},
      {"IntelligentTiering", EventAction::kIgnore, false},
      {"ObjectTagging:Delete", EventAction::kIgnore, false},
      {"ObjectAcl:Put", EventAction::kIgnore, false},
      {"ObjectDeleted", EventAction::kIgnore, false},
      {"ObjectCreated", EventAction::kIgnore, false},
      {"objectcreated:put", EventAction::kIgnore, false},
      {"s3:s3:ObjectCreated:Put", EventAction::kIgnore, false},
  };
  for (const Case& c : cases) {
    ParsedDocument d = ParseText(Doc(Record(c.name, "k")));
    ASSERT_EQ(d.events.size(), 1u) << c.name;
    EXPECT_EQ(d.events[0].action, c.action) << c.name;
    EXPECT_EQ(d.events[0].delete_marker, c.marker) << c.name;
  }
}

TEST(ParseEventsTest, OrderedOnlyForAwsHexSequencers) {
  auto ordered = [](const std::string& source, const std::string& seq) {
    ParsedDocument d = ParseText(
        R"({"Records":[{"eventSource":")" + source +
        R"(","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"k","sequencer":")" +
        seq + R"("}}}]})");
    return !d.events.empty() && d.events[0].ordered;
  };
  EXPECT_TRUE(ordered("aws:s3", "0055AED6DCD90281E5"));
  EXPECT_FALSE(ordered("aws:s3", "Happy Sequencer"));
  EXPECT_FALSE(ordered("aws:s3", "0066LIFECYCLE890"));
  EXPECT_FALSE(ordered("aws:s3", ""));
  EXPECT_FALSE(ordered("ceph:s3", "0055AED6DCD90281E5"));
  EXPECT_FALSE(ordered("minio:s3", "0055AED6DCD90281E5"));

  ParsedDocument none = ParseText(Doc(Record("ObjectCreated:Put", "k")));
  ASSERT_EQ(none.events.size(), 1u);
  EXPECT_EQ(none.events[0].sequencer, "");
  EXPECT_FALSE(none.events[0].ordered);
}

TEST(ParseEventsTest, VersionIdEmptyIsNoneAndNullIsKept) {
  ParsedDocument d = ParseText(Doc(Record("ObjectCreated:Put", "a", R"(,"versionId":"")") + "," +
                                   Record("ObjectCreated:Put", "b", R"(,"versionId":"null")") +
                                   "," + Record("ObjectCreated:Put", "c", R"(,"versionId":null)")));
  ASSERT_EQ(d.events.size(), 3u);
  EXPECT_EQ(d.events[0].version_id, std::nullopt);
  EXPECT_EQ(d.events[1].version_id, std::optional<std::string>("null"));
  EXPECT_EQ(d.events[2].version_id, std::nullopt);
}

TEST(ParseEventsTest, SizeAsNumberOrString) {
  ParsedDocument d =
      ParseText(Doc(Record("ObjectCreated:Put", "a", R"(,"size":0)") + "," +
                    Record("ObjectCreated:Put", "b", R"(,"size":"18446744073709551615")") + "," +
                    Record("ObjectCreated:Put", "c", R"(,"size":18446744073709551615)")));
  ASSERT_EQ(d.events.size(), 3u);
  EXPECT_EQ(d.events[0].size, std::optional<uint64_t>(0));
  EXPECT_EQ(d.events[1].size, std::optional<uint64_t>(UINT64_MAX));
  EXPECT_EQ(d.events[2].size, std::optional<uint64_t>(UINT64_MAX));
}

TEST(ParseEventsTest, RecordWithoutEventSourceIsDecodedAndUnordered) {
  ParsedDocument d = ParseText(
      R"({"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"x+y%21","sequencer":"0A"}}}]})");
  ASSERT_EQ(d.events.size(), 1u);
  EXPECT_EQ(d.events[0].source, "");
  EXPECT_EQ(d.events[0].key, "x y!");
  EXPECT_FALSE(d.events[0].ordered);
}

TEST(ParseEventsTest, LeadingAndTrailingWhitespace) {
  ParsedDocument d = ParseText(" \n\t\r\n" + Doc(Record("ObjectCreated:Put", "k")) + "\n\n  \t");
  EXPECT_EQ(d.events.size(), 1u);
}

TEST(ParseEventsTest, EmptyRecordsIsNothingToDo) {
  ParsedDocument d = ParseText(R"({"Records":[]})");
  EXPECT_TRUE(d.events.empty());
  EXPECT_EQ(d.test_events, 0u);
  EXPECT_EQ(d.non_s3_messages, 0u);
}

TEST(ParseEventsTest, IgnoredRecordMayHaveAnEmptyKey) {
  ParsedDocument d = ParseText(Doc(Record("ObjectRestore:Completed", "")));
  ASSERT_EQ(d.events.size(), 1u);
  EXPECT_EQ(d.events[0].action, EventAction::kIgnore);
  EXPECT_EQ(d.events[0].key, "");
}

TEST(ParseEventsTest, ManyRecords) {
  std::string records;
  for (int i = 0; i < 5000; ++i) {
    if (i) records += ",";
    records += Record("ObjectCreated:Put", "bulk/item+" + std::to_string(i));
  }
  ParsedDocument d = ParseText(Doc(records));
  ASSERT_EQ(d.events.size(), 5000u);
  EXPECT_EQ(d.events[4999].key, "bulk/item 4999");
}

// ---------------------------------------------------------------------------------------------
// SNS and SQS wrappers

TEST(ParseEventsTest, SnsEnvelope) {
  ParsedDocument d = ParseSample("sns_envelope.json");
  ASSERT_EQ(d.events.size(), 1u);
  EXPECT_EQ(d.events[0].action, EventAction::kCreate);
  EXPECT_EQ(d.events[0].bucket, "heron-photos");
  EXPECT_EQ(d.events[0].key, "albums/spring 2024/IMG_0412.jpg");
  EXPECT_EQ(d.events[0].sequencer, "0066F00D1234ABCD01");
  EXPECT_TRUE(d.events[0].ordered);
  EXPECT_EQ(d.non_s3_messages, 0u);
}

TEST(ParseEventsTest, LambdaSnsEvent) {
  ParsedDocument d = ParseSample("lambda_sns.json");
  ASSERT_EQ(d.events.size(), 1u);
  EXPECT_EQ(d.events[0].key, "albums/spring 2024/IMG_0412.jpg");
}

TEST(ParseEventsTest, SqsBatchOfSnsAndDirectBodiesIsFlattened) {
  ParsedDocument d = ParseSample("sqs_batch.json");
  ASSERT_EQ(d.events.size(), 2u);
  EXPECT_EQ(d.events[0].action, EventAction::kCreate);
  EXPECT_EQ(d.events[0].key, "albums/spring 2024/IMG_0412.jpg");
  EXPECT_EQ(d.events[1].action, EventAction::kRemove);
  EXPECT_EQ(d.events[1].key, "albums/old+unused.jpg");
  EXPECT_EQ(d.non_s3_messages, 0u);
}

TEST(ParseEventsTest, SqsDirect) {
  ParsedDocument d = ParseSample("sqs_direct.json");
  ASSERT_EQ(d.events.size(), 1u);
  EXPECT_EQ(d.events[0].bucket, "heron-photos");
}

TEST(ParseEventsTest, SqsOfNonS3SnsMessagesIsCountedNotAnError) {
  ParsedDocument d = ParseSample("sqs_non_s3.json");
  EXPECT_TRUE(d.events.empty());
  EXPECT_EQ(d.non_s3_messages, 2u);
}

TEST(ParseEventsTest, NonS3Payloads) {
  EXPECT_EQ(ParseText(R"({"Type":"Notification","Message":"hello world"})").non_s3_messages, 1u);
  EXPECT_EQ(ParseText(R"({"Type":"Notification","Message":"{\"build\":42}"})").non_s3_messages, 1u);
  EXPECT_EQ(ParseText(R"({"Type":"Notification","Message":"[1,2]"})").non_s3_messages, 1u);
  EXPECT_EQ(ParseText(R"({"Type":"SubscriptionConfirmation","Message":"confirm"})").non_s3_messages,
            1u);
  // A Records document of another service inside a wrapper.
  EXPECT_EQ(
      ParseText(
          R"({"Type":"Notification","Message":"{\"Records\":[{\"eventSource\":\"aws:dynamodb\"}]}"})")
          .non_s3_messages,
      1u);
  // EventBridge of another source inside SQS.
  EXPECT_EQ(
      ParseText(
          Doc(R"({"eventSource":"aws:sqs","body":"{\"detail-type\":\"EC2 Instance State-change Notification\",\"source\":\"aws.ec2\",\"detail\":{}}"})"))
          .non_s3_messages,
      1u);
}

TEST(ParseEventsTest, TestEventInsideSqsAndSns) {
  const std::string test_event = R"({"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"b"})";
  ParsedDocument d =
      ParseText(Doc(R"({"eventSource":"aws:sqs","body":)" + Quote(test_event) + "}"));
  EXPECT_EQ(d.test_events, 1u);
  EXPECT_TRUE(d.events.empty());
  ParsedDocument s = ParseText(R"({"Type":"Notification","Message":)" + Quote(test_event) + "}");
  EXPECT_EQ(s.test_events, 1u);
}

TEST(ParseEventsTest, EventBridgeInsideSqs) {
  ParsedDocument d = ParseText(Doc(R"({"eventSource":"aws:sqs","body":)" +
                                   Quote(ReadSample("eventbridge_deleted.json")) + "}"));
  ASSERT_EQ(d.events.size(), 1u);
  EXPECT_EQ(d.events[0].name, "ObjectRemoved:Delete");
}

TEST(ParseEventsTest, WrappersNestedTooDeeplyAreRefused) {
  std::string doc = Doc(Record("ObjectCreated:Put", "k"));
  for (int i = 0; i < 4; ++i) doc = R"({"Type":"Notification","Message":)" + Quote(doc) + "}";
  EXPECT_EQ(ParseText(doc).events.size(), 1u);  // four levels are fine
  for (int i = 0; i < 2; ++i) doc = R"({"Type":"Notification","Message":)" + Quote(doc) + "}";
  EXPECT_EQ(ErrorOf(doc), "Message.Message.Message.Message.Message: wrappers nested too deeply");
}

// ---------------------------------------------------------------------------------------------
// EventBridge

TEST(ParseEventsTest, EventBridgeObjectCreated) {
  ParsedDocument d = ParseSample("eventbridge_created.json");
  ASSERT_EQ(d.events.size(), 1u);
  const Event& e = d.events[0];
  EXPECT_EQ(e.action, EventAction::kCreate);
  EXPECT_EQ(e.name, "ObjectCreated:Put");
  EXPECT_EQ(e.source, "aws.s3");
  EXPECT_EQ(e.bucket, "heron-photos");
  EXPECT_EQ(e.key, "albums/summer 2024/a+b.jpg");  // EventBridge keys are not URL-encoded
  EXPECT_EQ(e.size, std::optional<uint64_t>(52311));
  EXPECT_EQ(e.etag, "9e107d9d372bb6826bd81d3542a419d6");
  EXPECT_EQ(e.version_id, std::optional<std::string>("Eb1Qa2Ws3Ed4Rf5Tg6Yh7Uj8Ik9Ol0Pz"));
  EXPECT_EQ(e.sequencer, "0066A9F3C2B1D0E4F5");
  EXPECT_TRUE(e.ordered);
  EXPECT_EQ(e.event_id, "5b7d9f1a-3c5e-4a7b-9d1f-3a5c7e9b1d3f");
  EXPECT_EQ(e.event_time, "2024-06-02T16:45:10Z");
}

TEST(ParseEventsTest, EventBridgeCreatedReasons) {
  const std::pair<const char*, const char*> cases[] = {
      {"PutObject", "ObjectCreated:Put"},
      {"POST Object", "ObjectCreated:Post"},
      {"CopyObject", "ObjectCreated:Copy"},
      {"CompleteMultipartUpload", "ObjectCreated:CompleteMultipartUpload"},
  };
  for (const auto& [reason, name] : cases) {
    ParsedDocument d = ParseText(
        std::string(
            R"({"id":"e1","detail-type":"Object Created","source":"aws.s3","detail":{"bucket":{"name":"b"},"object":{"key":"k","size":"3","sequencer":"00AB"},"reason":")") +
        reason + R"("}})");
    ASSERT_EQ(d.events.size(), 1u) << reason;
    EXPECT_EQ(d.events[0].name, name);
    EXPECT_EQ(d.events[0].action, EventAction::kCreate);
    EXPECT_EQ(d.events[0].size, std::optional<uint64_t>(3));
  }
}

TEST(ParseEventsTest, EventBridgePermanentDelete) {
  ParsedDocument d = ParseSample("eventbridge_deleted.json");
  ASSERT_EQ(d.events.size(), 1u);
  EXPECT_EQ(d.events[0].action, EventAction::kRemove);
  EXPECT_EQ(d.events[0].name, "ObjectRemoved:Delete");
  EXPECT_FALSE(d.events[0].delete_marker);
  EXPECT_EQ(d.events[0].key, "albums/old.jpg");
  EXPECT_EQ(d.events[0].version_id, std::optional<std::string>("Eb2Xc3Vb4Nm5Lk6Jh7Gf8Ds9Aq0Wz1Sx"));
}

TEST(ParseEventsTest, EventBridgeDeleteMarker) {
  ParsedDocument d = ParseSample("eventbridge_delete_marker.json");
  ASSERT_EQ(d.events.size(), 1u);
  EXPECT_EQ(d.events[0].action, EventAction::kRemove);
  EXPECT_EQ(d.events[0].name, "ObjectRemoved:DeleteMarkerCreated");
  EXPECT_TRUE(d.events[0].delete_marker);
}

TEST(ParseEventsTest, EventBridgeLifecycleExpirations) {
  ParsedDocument del = ParseSample("eventbridge_lifecycle_delete.json");
  ASSERT_EQ(del.events.size(), 1u);
  EXPECT_EQ(del.events[0].action, EventAction::kRemove);
  EXPECT_EQ(del.events[0].name, "LifecycleExpiration:Delete");
  EXPECT_FALSE(del.events[0].delete_marker);
  EXPECT_EQ(del.events[0].version_id, std::nullopt);

  ParsedDocument mark = ParseSample("eventbridge_lifecycle_marker.json");
  ASSERT_EQ(mark.events.size(), 1u);
  EXPECT_EQ(mark.events[0].action, EventAction::kRemove);
  EXPECT_EQ(mark.events[0].name, "LifecycleExpiration:DeleteMarkerCreated");
  EXPECT_TRUE(mark.events[0].delete_marker);
  EXPECT_EQ(mark.events[0].size, std::optional<uint64_t>(1200));
}

TEST(ParseEventsTest, EventBridgeOtherDetailTypesAreIgnored) {
  ParsedDocument d = ParseSample("eventbridge_restore_completed.json");
  ASSERT_EQ(d.events.size(), 1u);
  EXPECT_EQ(d.events[0].action, EventAction::kIgnore);
  EXPECT_EQ(d.events[0].name, "Object Restore Completed");
  EXPECT_EQ(d.events[0].key, "cold/archive.tar");
  EXPECT_EQ(d.events[0].bucket, "heron-photos");

  // Without bucket or object: still an event, to be counted.
  ParsedDocument bare = ParseText(
      R"({"detail-type":"Object Storage Class Changed","source":"aws.s3","detail":{"version":"0"}})");
  ASSERT_EQ(bare.events.size(), 1u);
  EXPECT_EQ(bare.events[0].action, EventAction::kIgnore);
  EXPECT_EQ(bare.events[0].name, "Object Storage Class Changed");
  EXPECT_EQ(bare.events[0].key, "");
}

// ---------------------------------------------------------------------------------------------
// DecodeS3Key

TEST(DecodeS3KeyTest, DecodesPlusAndPercentEscapes) {
  EXPECT_EQ(*DecodeS3Key(""), "");
  EXPECT_EQ(*DecodeS3Key("plain/key.txt"), "plain/key.txt");
  EXPECT_EQ(*DecodeS3Key("a+b"), "a b");
  EXPECT_EQ(*DecodeS3Key("a%20b"), "a b");
  EXPECT_EQ(*DecodeS3Key("1%2B1%3d2"), "1+1=2");  // either case of hex digit
  EXPECT_EQ(*DecodeS3Key("%E2%82%AC%2F%25"), "\xE2\x82\xAC/%");
  EXPECT_EQ(*DecodeS3Key("%2525"), "%25");  // decoded once only
}

TEST(DecodeS3KeyTest, InvalidEscapesAreErrors) {
  for (const char* bad : {"%", "%4", "ab%", "%G0", "%0g", "x%-1"}) {
    Result<std::string> r = DecodeS3Key(bad);
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  }
  EXPECT_EQ(DecodeS3Key("ab%4").status().message(), "invalid %-escape at offset 2");
}

// ---------------------------------------------------------------------------------------------
// CompareSequencers

TEST(SequencerTest, Equal) {
  EXPECT_EQ(CompareSequencers("0055AED6DCD90281E5", "0055AED6DCD90281E5"), 0);
}

TEST(SequencerTest, ShorterIsRightPaddedWithZeros) {
  EXPECT_EQ(CompareSequencers("0A", "0A00"), 0);
  EXPECT_EQ(CompareSequencers("0A00", "0A"), 0);
  EXPECT_GT(*CompareSequencers("0B", "0A00"), 0);
  EXPECT_LT(*CompareSequencers("0A00", "0B"), 0);
  EXPECT_LT(*CompareSequencers("0A", "0A01"), 0);
}

TEST(SequencerTest, CaseInsensitive) {
  EXPECT_EQ(CompareSequencers("0a1f", "0A1F"), 0);
  EXPECT_LT(*CompareSequencers("617f08299329d189", "617F0837B476E463"), 0);
  EXPECT_GT(*CompareSequencers("ff", "0A"), 0);
}

TEST(SequencerTest, InvalidIsNullopt) {
  EXPECT_EQ(CompareSequencers("", "0A"), std::nullopt);
  EXPECT_EQ(CompareSequencers("0A", ""), std::nullopt);
  EXPECT_EQ(CompareSequencers("Happy Sequencer", "0A"), std::nullopt);
  EXPECT_EQ(CompareSequencers("0A", "0066LIFECYCLE890"), std::nullopt);
  EXPECT_EQ(CompareSequencers("0x0A", "0A"), std::nullopt);
}

}  // namespace
}  // namespace ds::parse_events_test
