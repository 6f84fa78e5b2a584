// Notification documents for tests, unit and integration alike (issue 18: one builder instead
// of one per test file): an S3-style record as Ceph RGW, MinIO or AWS S3 sends it, a document
// of records, and the SQS message around one. Built with nlohmann::json, so keys and names are
// escaped as JSON requires; a key is given as the store writes it (URL-encoded by AWS, as is by
// RGW). Fields left empty are absent from the record.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ds::testdocs {

struct Record {
  std::string source = "ceph:s3";  // eventSource: "ceph:s3" (RGW), "aws:s3", "minio:s3"
  std::string event_name;          // "ObjectCreated:Put", "ObjectRemoved:Delete", ...
  std::string bucket = "b";
  std::string key;
  std::string event_version;   // "2.2" (RGW), "2.1" (AWS)
  std::string event_time;      // e.g. "2026-11-25T00:00:00.000Z"
  std::string aws_region;      // "us-east-1"
  std::string schema_version;  // s3.s3SchemaVersion, "1.0" (AWS)
  std::optional<int64_t> size;
  std::string etag, sequencer, version_id;

  nlohmann::json Json() const {
    nlohmann::json object = {{"key", key}};
    if (size) object["size"] = *size;
    if (!etag.empty()) object["eTag"] = etag;
    if (!sequencer.empty()) object["sequencer"] = sequencer;
    if (!version_id.empty()) object["versionId"] = version_id;
    nlohmann::json s3 = {{"bucket", {{"name", bucket}}}, {"object", object}};
    if (!schema_version.empty()) s3["s3SchemaVersion"] = schema_version;
    nlohmann::json r = {{"eventSource", source}, {"eventName", event_name}, {"s3", s3}};
    if (!event_version.empty()) r["eventVersion"] = event_version;
    if (!event_time.empty()) r["eventTime"] = event_time;
    if (!aws_region.empty()) r["awsRegion"] = aws_region;
    return r;
  }
};

// A record as Ceph RGW sends it (eventVersion 2.2, no sequencer: its order is unknown).
inline Record Rgw(std::string event_name, std::string bucket, std::string key) {
  Record r;
  r.event_name = std::move(event_name);
  r.bucket = std::move(bucket);
  r.key = std::move(key);
  r.event_version = "2.2";
  return r;
}

// A record as AWS S3 sends it: eventVersion 2.1, us-east-1, a fixed eventTime, the schema
// version, and the object's sequencer (which orders the key's events).
inline Record Aws(std::string event_name, std::string bucket, std::string key,
                  std::string sequencer) {
  Record r;
  r.source = "aws:s3";
  r.event_name = std::move(event_name);
  r.bucket = std::move(bucket);
  r.key = std::move(key);
  r.event_version = "2.1";
  r.event_time = "2026-11-25T00:00:00.000Z";
  r.aws_region = "us-east-1";
  r.schema_version = "1.0";
  r.sequencer = std::move(sequencer);
  return r;
}

// {"Records":[...]}.
inline std::string Document(const std::vector<Record>& records) {
  nlohmann::json list = nlohmann::json::array();
  for (const Record& r : records) list.push_back(r.Json());
  return nlohmann::json{{"Records", list}}.dump();
}

// One SQS message as Lambda's SQS event source hands it over (a record of {"Records":[...]}).
inline nlohmann::json SqsMessage(const std::string& message_id, const std::string& body,
                                 const std::string& receipt_handle, const std::string& queue_arn) {
  return {
      {"messageId", message_id},  {"receiptHandle", receipt_handle}, {"body", body},
      {"eventSource", "aws:sqs"}, {"eventSourceARN", queue_arn},     {"awsRegion", "us-east-1"}};
}

}  // namespace ds::testdocs
