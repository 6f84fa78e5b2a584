#include "core/parse_events.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

namespace ds {
namespace {

using Metadata = std::vector<std::pair<std::string, std::string>>;

std::string ReadSample(const std::string& name) {
  const std::string path = std::string(DS_TEST_DATA_DIR) + "/events/" + name;
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Parses a sample that must parse; fails the test (and returns an empty document) otherwise.
ParsedDocument ParseSample(const std::string& name) {
  Result<ParsedDocument> r = ParseNotification(ReadSample(name));
  EXPECT_TRUE(r.ok()) << name << ": " << r.status().ToString();
  return r.ok() ? std::move(r).value() : ParsedDocument{};
}

ParsedDocument ParseText(std::string_view text) {
  Result<ParsedDocument> r = ParseNotification(text);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? std::move(r).value() : ParsedDocument{};
}

// The error message of a document that must be rejected.
std::string ErrorOf(std::string_view text) {
  Result<ParsedDocument> r = ParseNotification(text);
  EXPECT_FALSE(r.ok()) << "accepted: " << text;
  if (r.ok()) return "";
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  return r.status().message();
}

// A minimal AWS S3 record with the given event name and (encoded) key.
std::string Record(const std::string& name, const std::string& key,
                   const std::string& extra_object_fields = "") {
  return R"({"eventSource":"aws:s3","eventName":")" + name +
         R"(","s3":{"bucket":{"name":"plover-bin"},"object":{"key":")" + key + "\"" +
         extra_object_fields + "}}}";
}

std::string Doc(const std::string& records) { return R"({"Records":[)" + records + "]}"; }

// A JSON string literal holding `text` (to put a document inside an SNS Message or an SQS body).
std::string Quote(const std::string& text) { return nlohmann::json(text).dump(); }

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
// Ceph RGW

TEST(ParseEventsTest, RgwPut) {
  ParsedDocument d = ParseSample("rgw_put.json");
  ASSERT_EQ(d.events.size(), 1u);
  const Event& e = d.events[0];
  EXPECT_EQ(e.action, EventAction::kCreate);
  EXPECT_EQ(e.name, "ObjectCreated:Put");
  EXPECT_EQ(e.source, "ceph:s3");
  EXPECT_EQ(e.bucket, "osprey-docs");
  EXPECT_EQ(e.key, "notes/readme.md");
  EXPECT_EQ(e.size, std::optional<uint64_t>(17));
  EXPECT_EQ(e.etag, "4d1c9a3e8b7f6a5d2c1b0e9f8a7d6c5b");
  EXPECT_EQ(e.version_id, std::nullopt);  // "" means none
  EXPECT_EQ(e.sequencer, "A1F20E6B5C3D7E91");
  EXPECT_FALSE(e.ordered);  // RGW sequencers do not order events
  EXPECT_EQ(e.event_id, "1741431892.610871.4d1c9a3e8b7f6a5d2c1b0e9f8a7d6c5b");
  EXPECT_EQ(e.event_time, "2025-03-08T11:04:52.610233Z");
  EXPECT_EQ(e.metadata, (Metadata{{"x-amz-meta-team", "ops"}}));
  EXPECT_EQ(e.tags, (Metadata{{"tier", "gold"}}));
}

TEST(ParseEventsTest, RgwSizeAsStringAndEmptyEventId) {
  ParsedDocument d = ParseSample("rgw_put_size_string.json");
  ASSERT_EQ(d.events.size(), 1u);
  EXPECT_EQ(d.events[0].size, std::optional<uint64_t>(4096));
  // An empty eventId falls back to the request id.
  EXPECT_EQ(d.events[0].event_id,
            "b0c1d2e3-f4a5-4b6c-8d7e-9f0a1b2c3d4e.5021.1180023345571:A2F20E6B11AA22BB");
}

TEST(ParseEventsTest, RgwKeysAreNotDecoded) {
  ParsedDocument u = ParseSample("rgw_put_unicode_key.json");
  ASSERT_EQ(u.events.size(), 1u);
  EXPECT_EQ(u.events[0].key, "dir one/\xC3\xBCn\xC3\xAF file \xE2\x82\xAC.txt");

  ParsedDocument r = ParseSample("rgw_put_reserved_chars_key.json");
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0].key, "a+b=c&d?e#f%20g.txt");

  // A raw key that would be an invalid escape if decoded is fine.
  ParsedDocument p = ParseText(
      R"({"Records":[{"eventSource":"ceph:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"100% done","size":1}}}]})");
  ASSERT_EQ(p.events.size(), 1u);
  EXPECT_EQ(p.events[0].key, "100% done");
}

TEST(ParseEventsTest, RgwCopyAndMultipart) {
  ParsedDocument c = ParseSample("rgw_copy.json");
  ASSERT_EQ(c.events.size(), 1u);
  EXPECT_EQ(c.events[0].action, EventAction::kCreate);
  EXPECT_EQ(c.events[0].name, "ObjectCreated:Copy");
  EXPECT_EQ(c.events[0].key, "copies/readme copy.md");
  EXPECT_EQ(c.events[0].metadata, (Metadata{{"x-amz-copy-source", "osprey-docs/notes/readme.md"},
                                            {"x-amz-date", "20250308T110454Z"}}));

  ParsedDocument m = ParseSample("rgw_multipart.json");
  ASSERT_EQ(m.events.size(), 1u);
  EXPECT_EQ(m.events[0].action, EventAction::kCreate);
  EXPECT_EQ(m.events[0].name, "ObjectCreated:CompleteMultipartUpload");
  EXPECT_EQ(m.events[0].size, std::optional<uint64_t>(10486784));
  EXPECT_EQ(m.events[0].etag, "7b8b965ad4bca0e41ab51de7b31363a1-3");
}

TEST(ParseEventsTest, RgwDeleteAndDeleteMarker) {
  ParsedDocument d = ParseSample("rgw_delete.json");
  ASSERT_EQ(d.events.size(), 1u);
  EXPECT_EQ(d.events[0].action, EventAction::kRemove);
  EXPECT_EQ(d.events[0].name, "ObjectRemoved:Delete");
  EXPECT_FALSE(d.events[0].delete_marker);
  EXPECT_EQ(d.events[0].version_id, std::optional<std::string>("pQ3rS5tU7vW9xY1zA3bC5dE7fG9hI1j"));

  ParsedDocument m = ParseSample("rgw_delete_marker.json");
  ASSERT_EQ(m.events.size(), 1u);
  EXPECT_EQ(m.events[0].action, EventAction::kRemove);
  EXPECT_EQ(m.events[0].name, "ObjectRemoved:DeleteMarkerCreated");
  EXPECT_TRUE(m.events[0].delete_marker);
  EXPECT_EQ(m.events[0].version_id, std::nullopt);  // RGW sends "" for the marker
  EXPECT_EQ(m.events[0].key, "dir one/\xC3\xBCn\xC3\xAF file \xE2\x82\xAC.txt");
  EXPECT_FALSE(m.events[0].ordered);
}

TEST(ParseEventsTest, OlderRgwWithS3Prefix) {
  ParsedDocument d = ParseText(
      R"({"Records":[{"eventSource":"ceph:s3","eventName":"s3:ObjectRemoved:Delete","s3":{"bucket":{"name":"b"},"object":{"key":"x+y","size":"0"}}}]})");
  ASSERT_EQ(d.events.size(), 1u);
  EXPECT_EQ(d.events[0].name, "ObjectRemoved:Delete");
  EXPECT_EQ(d.events[0].key, "x+y");
}

// ---------------------------------------------------------------------------------------------
// MinIO

TEST(ParseEventsTest, MinioPutAndDelete) {
  ParsedDocument p = ParseSample("minio_put.json");
  ASSERT_EQ(p.events.size(), 1u);
  const Event& e = p.events[0];
  EXPECT_EQ(e.action, EventAction::kCreate);
  EXPECT_EQ(e.name, "ObjectCreated:Put");
  EXPECT_EQ(e.source, "minio:s3");
  EXPECT_EQ(e.bucket, "wren-data");
  EXPECT_EQ(e.key, "reports/2025/q1 summary+notes.txt");
  EXPECT_EQ(e.size, std::optional<uint64_t>(914));
  EXPECT_EQ(e.sequencer, "17D3A9C0E58B2F41");
  EXPECT_FALSE(e.ordered);  // a node's clock
  EXPECT_EQ(e.event_id, "17D3A9C0E1112233:17D3A9C0E58B2F41");
  EXPECT_EQ(e.metadata, (Metadata{{"X-Amz-Meta-Owner", "wren"}, {"content-type", "text/plain"}}));

  ParsedDocument d = ParseSample("minio_delete.json");
  ASSERT_EQ(d.events.size(), 1u);
  EXPECT_EQ(d.events[0].action, EventAction::kRemove);
  EXPECT_EQ(d.events[0].name, "ObjectRemoved:Delete");
  EXPECT_EQ(d.events[0].key, "reports/2025/q1 summary+notes.txt");
}

// ---------------------------------------------------------------------------------------------
// Malformed documents: rejected whole, with a message naming the problem and where.

TEST(ParseErrorsTest, NotJson) {
  EXPECT_EQ(ErrorOf(R"({"Records": [})"),
            "not JSON: syntax error while parsing value - unexpected '}'; expected '[', '{', or a "
            "literal at byte 14");
  EXPECT_EQ(ErrorOf("nope"),
            "not JSON: syntax error while parsing value - invalid literal at byte 2");
  EXPECT_EQ(ErrorOf(R"({"Records":[]} trailing)"),
            "not JSON: syntax error while parsing value - invalid literal; expected end of input "
            "at byte 18");
  EXPECT_EQ(ErrorOf("{\"a\":\"\xff\"}"),
            "not JSON: syntax error while parsing value - invalid string: ill-formed UTF-8 byte at "
            "byte 7");
  EXPECT_EQ(ErrorOf(""), "not JSON: empty document");
  EXPECT_EQ(ErrorOf(" \n\t "), "not JSON: empty document");
}

TEST(ParseErrorsTest, DeepOrHugeInputDoesNotCrash) {
  const std::string deep = std::string(200000, '[') + std::string(200000, ']');
  EXPECT_EQ(ErrorOf(deep),
            "unrecognised document: expected Records, an SNS envelope, an EventBridge event or "
            "s3:TestEvent");
  const std::string unclosed = R"({"Records":)" + std::string(100000, '[');
  EXPECT_NE(ErrorOf(unclosed).find("not JSON: "), std::string::npos);
}

TEST(ParseErrorsTest, Unrecognised) {
  const std::string msg =
      "unrecognised document: expected Records, an SNS envelope, an EventBridge event or "
      "s3:TestEvent";
  EXPECT_EQ(ErrorOf(R"({"hello":"world"})"), msg);
  EXPECT_EQ(ErrorOf("[]"), msg);
  EXPECT_EQ(ErrorOf("42"), msg);
  EXPECT_EQ(ErrorOf(R"({"Event":"s3:SomethingElse"})"), msg);
  EXPECT_EQ(ErrorOf(R"({"detail-type":"Object Created","source":"aws.ec2","detail":{}})"), msg);
}

TEST(ParseErrorsTest, RecordsNotAnArray) {
  EXPECT_EQ(ErrorOf(R"({"Records":{}})"), "Records: not an array");
  EXPECT_EQ(ErrorOf(R"({"Records":"x"})"), "Records: not an array");
}

TEST(ParseErrorsTest, RecordNotAnObject) {
  EXPECT_EQ(ErrorOf(R"({"Records":[42]})"), "Records[0]: not an object");
  EXPECT_EQ(ErrorOf(Doc(Record("ObjectCreated:Put", "k") + ",[]")), "Records[1]: not an object");
  EXPECT_EQ(ErrorOf(R"({"Records":[{"eventSource":"aws:dynamodb"}]})"),
            "Records[0]: not an S3 record, an SQS message or an SNS message");
}

TEST(ParseErrorsTest, MissingKeyRejectsTheWholeDocument) {
  const std::string doc = Doc(
      Record("ObjectCreated:Put", "fine") + "," +
      R"({"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"size":1}}})");
  EXPECT_EQ(ErrorOf(doc), "Records[1].s3.object.key: missing");
}

TEST(ParseErrorsTest, MissingOrBadFields) {
  EXPECT_EQ(
      ErrorOf(
          R"({"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"object":{"key":"k"}}}]})"),
      "Records[0].s3.bucket: missing");
  EXPECT_EQ(
      ErrorOf(
          R"({"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{},"object":{"key":"k"}}}]})"),
      "Records[0].s3.bucket.name: missing");
  EXPECT_EQ(
      ErrorOf(
          R"({"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":7},"object":{"key":"k"}}}]})"),
      "Records[0].s3.bucket.name: not a string");
  EXPECT_EQ(
      ErrorOf(
          R"({"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":""},"object":{"key":"k"}}}]})"),
      "Records[0].s3.bucket.name: empty");
  EXPECT_EQ(
      ErrorOf(
          R"({"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"}}}]})"),
      "Records[0].s3.object: missing");
  EXPECT_EQ(
      ErrorOf(
          R"({"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":[]}}]})"),
      "Records[0].s3.object: not an object");
  EXPECT_EQ(ErrorOf(R"({"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put"}]})"),
            "Records[0].s3: missing");
  EXPECT_EQ(
      ErrorOf(
          R"({"Records":[{"eventSource":"aws:s3","s3":{"bucket":{"name":"b"},"object":{"key":"k"}}}]})"),
      "Records[0].eventName: missing");
  EXPECT_EQ(
      ErrorOf(
          R"({"Records":[{"eventSource":"aws:s3","eventName":3,"s3":{"bucket":{"name":"b"},"object":{"key":"k"}}}]})"),
      "Records[0].eventName: not a string");
  // Found by fuzz_parse_notification: an empty name was accepted as an ignored event.
  EXPECT_EQ(
      ErrorOf(
          R"({"Records":[{"eventSource":"aws:s3","eventName":"","s3":{"bucket":{"name":"b"},"object":{"key":"k"}}}]})"),
      "Records[0].eventName: empty");
  EXPECT_EQ(
      ErrorOf(
          R"({"Records":[{"eventName":"s3:","s3":{"bucket":{"name":"b"},"object":{"key":"k"}}}]})"),
      "Records[0].eventName: empty");
  EXPECT_EQ(
      ErrorOf(
          R"({"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":null}}}]})"),
      "Records[0].s3.object.key: not a string");
  EXPECT_EQ(
      ErrorOf(
          R"({"Records":[{"eventSource":["aws:s3"],"eventName":"ObjectCreated:Put","s3":{}}]})"),
      "Records[0].eventSource: not a string");
  EXPECT_EQ(ErrorOf(Doc(Record("ObjectCreated:Put", "k", R"(,"versionId":5)"))),
            "Records[0].s3.object.versionId: not a string");
  EXPECT_EQ(ErrorOf(Doc(Record("ObjectCreated:Put", "k", R"(,"sequencer":{})"))),
            "Records[0].s3.object.sequencer: not a string");
  EXPECT_EQ(ErrorOf(Doc(Record("ObjectCreated:Put", "k", R"(,"eTag":1)"))),
            "Records[0].s3.object.eTag: not a string");
}

TEST(ParseErrorsTest, BadSize) {
  EXPECT_EQ(ErrorOf(Doc(Record("ObjectCreated:Put", "k", R"(,"size":"12kB")"))),
            "Records[0].s3.object.size: not a number");
  EXPECT_EQ(ErrorOf(Doc(Record("ObjectCreated:Put", "k", R"(,"size":"")"))),
            "Records[0].s3.object.size: not a number");
  EXPECT_EQ(ErrorOf(Doc(Record("ObjectCreated:Put", "k", R"(,"size":"18446744073709551616")"))),
            "Records[0].s3.object.size: not a number");
  EXPECT_EQ(ErrorOf(Doc(Record("ObjectCreated:Put", "k", R"(,"size":true)"))),
            "Records[0].s3.object.size: not a number");
  EXPECT_EQ(ErrorOf(Doc(Record("ObjectCreated:Put", "k", R"(,"size":-1)"))),
            "Records[0].s3.object.size: negative");
  EXPECT_EQ(ErrorOf(Doc(Record("ObjectCreated:Put", "k", R"(,"size":1.5)"))),
            "Records[0].s3.object.size: not an integer");
}

TEST(ParseErrorsTest, BadEscapeInKey) {
  EXPECT_EQ(ErrorOf(Doc(Record("ObjectCreated:Put", "abc/%zz"))),
            "Records[0].s3.object.key: invalid %-escape at offset 4");
  EXPECT_EQ(ErrorOf(Doc(Record("ObjectRemoved:Delete", "a%4"))),
            "Records[0].s3.object.key: invalid %-escape at offset 1");
  // Even for an ignored record: a key we cannot decode is a malformed document.
  EXPECT_EQ(ErrorOf(Doc(Record("ObjectCreated:Put", "ok") + "," +
                        Record("ObjectRestore:Completed", "100%"))),
            "Records[1].s3.object.key: invalid %-escape at offset 3");
}

TEST(ParseErrorsTest, EmptyKey) {
  EXPECT_EQ(ErrorOf(Doc(Record("ObjectCreated:Put", ""))), "Records[0].s3.object.key: empty");
  EXPECT_EQ(ErrorOf(Doc(Record("ObjectRemoved:DeleteMarkerCreated", ""))),
            "Records[0].s3.object.key: empty");
  EXPECT_EQ(
      ErrorOf(
          R"({"Records":[{"eventSource":"ceph:s3","eventName":"ObjectRemoved:Delete","s3":{"bucket":{"name":"b"},"object":{"key":""}}}]})"),
      "Records[0].s3.object.key: empty");
}

TEST(ParseErrorsTest, SnsAndSqsWrappers) {
  EXPECT_EQ(ErrorOf(R"({"Type":"Notification","Message":{"Records":[]}})"),
            "Message: not a string");
  EXPECT_EQ(ErrorOf(R"({"Type":"Notification"})"), "Message: missing");
  EXPECT_EQ(ErrorOf(R"({"Records":[{"eventSource":"aws:sqs","body":{"Records":[]}}]})"),
            "Records[0].body: not a string");
  EXPECT_EQ(ErrorOf(R"({"Records":[{"eventSource":"aws:sqs"}]})"), "Records[0].body: missing");
  EXPECT_EQ(ErrorOf(R"({"Records":[{"EventSource":"aws:sns","Sns":{"Message":7}}]})"),
            "Records[0].Sns.Message: not a string");
  EXPECT_EQ(ErrorOf(R"({"Records":[{"eventSource":"aws:sqs","body":"{broken"}]})"),
            "Records[0].body: not JSON: syntax error while parsing object key - invalid literal; "
            "expected string literal at byte 2");

  // Errors inside wrapped documents name the full path.
  const std::string bad = Doc(
      Record("ObjectCreated:Put", "ok") + "," +
      R"({"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{}}})");
  EXPECT_EQ(ErrorOf(Doc(R"({"eventSource":"aws:sqs","body":"{\"Records\":[]}"},)"
                        R"({"eventSource":"aws:sqs","body":)" +
                        Quote(bad) + "}")),
            "Records[1].body.Records[1].s3.object.key: missing");
  const std::string sns = R"({"Type":"Notification","Message":)" + Quote(bad) + "}";
  EXPECT_EQ(ErrorOf(Doc(R"({"eventSource":"aws:sqs","body":)" + Quote(sns) + "}")),
            "Records[0].body.Message.Records[1].s3.object.key: missing");
  EXPECT_EQ(ErrorOf(sns), "Message.Records[1].s3.object.key: missing");
}

TEST(ParseErrorsTest, EventBridge) {
  EXPECT_EQ(ErrorOf(R"({"detail-type":"Object Created","source":"aws.s3"})"), "detail: missing");
  EXPECT_EQ(ErrorOf(R"({"detail-type":"Object Created","source":"aws.s3","detail":"x"})"),
            "detail: not an object");
  EXPECT_EQ(
      ErrorOf(
          R"({"detail-type":"Object Created","source":"aws.s3","detail":{"bucket":{"name":"b"},"object":{}}})"),
      "detail.object.key: missing");
  EXPECT_EQ(
      ErrorOf(
          R"({"detail-type":"Object Deleted","source":"aws.s3","detail":{"object":{"key":"k"}}})"),
      "detail.bucket: missing");
  EXPECT_EQ(
      ErrorOf(
          R"({"detail-type":"Object Deleted","source":"aws.s3","detail":{"bucket":{"name":"b"},"object":{"key":""}}})"),
      "detail.object.key: empty");
  EXPECT_EQ(
      ErrorOf(
          R"({"detail-type":"Object Created","source":"aws.s3","detail":{"bucket":{"name":"b"},"object":{"key":"k","size":"big"}}})"),
      "detail.object.size: not a number");
  EXPECT_EQ(ErrorOf(R"({"detail-type":7,"source":"aws.s3","detail":{}})"),
            "detail-type: not a non-empty string");
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
}  // namespace ds

namespace ds {
namespace {

std::string MinioRecord(const std::string& name) {
  return R"({"EventName":"s3:)" + name +
         R"(","Key":"bkt/x","Records":[{"eventVersion":"2.0","eventSource":"minio:s3",)"
         R"("eventName":"s3:)" +
         name + R"(","s3":{"bucket":{"name":"bkt"},"object":{"key":"x%2By","sequencer":"17F"}}}]})";
}

TEST(ParseMinioNames, MetadataOnlyCreationsAreIgnoredAndDeleteAllVersionsRemoves) {
  for (const char* n : {"ObjectCreated:PutRetention", "ObjectCreated:PutLegalHold",
                        "ObjectCreated:PutTagging", "ObjectCreated:DeleteTagging"}) {
    auto doc = ParseNotification(MinioRecord(n));
    ASSERT_TRUE(doc.ok()) << doc.status().ToString();
    ASSERT_EQ(doc->events.size(), 1u);
    EXPECT_EQ(doc->events[0].action, EventAction::kIgnore) << n;
  }
  auto all = ParseNotification(MinioRecord("ObjectRemoved:DeleteAllVersions"));
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(all->events[0].action, EventAction::kRemove);
  EXPECT_EQ(all->events[0].key, "x+y");
  EXPECT_FALSE(all->events[0].ordered);
  auto put = ParseNotification(MinioRecord("ObjectCreated:Put"));
  ASSERT_TRUE(put.ok());
  EXPECT_EQ(put->events[0].action, EventAction::kCreate);
}

}  // namespace
}  // namespace ds
