// The one normalised notification event every transport produces (parse_events.h makes it
// from notification documents of every supported shape).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

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

}  // namespace ds
