// The one normalised notification event every transport produces, and the parser that
// turns notification documents of every supported shape into it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace ds {

enum class EventAction {
  kCreate,  // ObjectCreated:* (Put, Post, Copy, CompleteMultipartUpload), EventBridge "Object
            // Created"
  kRemove,  // ObjectRemoved:*, LifecycleExpiration:*, EventBridge "Object Deleted"
  kIgnore,  // anything else (restore, replication, transition, tagging, ...): acknowledged, counted
};

const char* ActionName(EventAction a);

struct Event {
  EventAction action = EventAction::kIgnore;
  // Normalised name without the "s3:" prefix: "ObjectCreated:Put",
  // "ObjectRemoved:DeleteMarkerCreated", "LifecycleExpiration:Delete". EventBridge events are
  // mapped onto the same names
  // ("Object Created" + reason PutObject -> "ObjectCreated:Put"; "Object Deleted" with
  // deletion-type "Delete Marker Created" -> "ObjectRemoved:DeleteMarkerCreated"; with reason
  // "Lifecycle Expiration" -> "LifecycleExpiration:Delete" /
  // "LifecycleExpiration:DeleteMarkerCreated").
  std::string name;
  // Where it came from: "aws:s3", "ceph:s3", "minio:s3", "aws.s3" (EventBridge), as sent.
  std::string source;
  std::string bucket;
  std::string key;                        // decoded: the object's real key, raw bytes
  std::optional<std::string> version_id;  // nullopt when absent or ""; "null" is kept as is
  std::string etag;                       // without quotes; "" when absent
  std::optional<uint64_t> size;
  std::string sequencer;  // as sent, "" when absent
  // True only when `sequencer` orders events of one key (AWS S3 and EventBridge, hex). False for
  // Ceph RGW (not ordered), MinIO (a node's clock) and events without a sequencer.
  bool ordered = false;
  bool delete_marker = false;  // a removal that created a delete marker (versioned bucket)
  std::string event_time;      // ISO-8601 as sent
  std::string
      event_id;  // a stable id for logs and audit: eventId / EventBridge id / x-amz-request-id
  // User metadata and tags when the sender includes them (RGW, MinIO): key/value pairs as sent.
  std::vector<std::pair<std::string, std::string>> metadata;
  std::vector<std::pair<std::string, std::string>> tags;
};

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
