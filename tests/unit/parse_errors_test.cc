// The parser of notification documents (src/core/parse_events.cc) on malformed documents:
// rejected whole, with a message naming the problem and where.
#include <gtest/gtest.h>

#include <string>

#include "core/parse_events.h"
#include "parse_events_helpers.h"

namespace ds::parse_events_test {
namespace {

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

}  // namespace
}  // namespace ds::parse_events_test
