// The parser of notification documents (src/core/parse_events.cc) on Ceph RGW and MinIO
// records.
#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "core/parse_events.h"
#include "parse_events_helpers.h"

namespace ds::parse_events_test {
namespace {

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
}  // namespace ds::parse_events_test
