// Parsing notification documents of every supported shape into Events (event.h), and the
// helpers that read what notifications carry: encoded keys and sequencers. Implemented in
// parse_events.cc; pure functions, safe from any thread.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "core/event.h"

namespace ds {

// One notification document, parsed. A document with any malformed record is rejected whole
// (ParseNotification returns an error), so that bad input changes nothing.
struct ParsedDocument {
  std::vector<Event> events;   // in document order
  size_t test_events = 0;      // s3:TestEvent documents: acknowledged, nothing to do
  size_t non_s3_messages = 0;  // SNS/SQS wrapper messages whose payload is not an S3 notification
};

// Accepts, as a JSON text:
//  - AWS S3 notifications {"Records":[...]} (keys URL-encoded, '+' is a space), several records;
//  - an SNS envelope {"Type":"Notification","Message":"<json string>"} around one;
//  - an SQS message {"Records":[{"eventSource":"aws:sqs","body":"<json>"}...]} whose bodies are S3
//    notifications or SNS envelopes of them (all records of the batch are flattened);
//  - s3:TestEvent ({"Event":"s3:TestEvent",...}), counted in test_events;
//  - EventBridge {"detail-type":"Object Created"|"Object
//  Deleted","source":"aws.s3","detail":{...}};
//  - Ceph RGW records (eventSource "ceph:s3": keys NOT URL-encoded, size may be a string);
//  - MinIO records (eventSource "minio:s3": keys URL-encoded).
// Errors are kInvalidArgument with a message naming the document path of the problem, for
// example "Records[1].s3.object.key: missing" or "not JSON: <parser message> at byte 17".
Result<ParsedDocument> ParseNotification(std::string_view body);

// Decodes %XX escapes and '+' as space, as AWS encodes keys in notifications. Invalid escapes
// are an error.
Result<std::string> DecodeS3Key(std::string_view encoded);

// Compares two sequencers of one key as the S3 User Guide says: right-pad the shorter with '0'
// and compare as strings (case-insensitive hex). Returns <0, 0, >0; nullopt when either is
// empty or not hex.
std::optional<int> CompareSequencers(std::string_view a, std::string_view b);

}  // namespace ds
