// S3 wire formats, pure functions without network: XML responses (pugixml) and request
// bodies, URL encoding, query strings, and the mapping of S3 errors onto Status.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "core/object_store.h"
#include "s3/client.h"

namespace ds::s3 {

// ---- URL encoding -------------------------------------------------------------------------

// Percent-encodes every byte except the unreserved A-Za-z0-9-._~ (and '/' when keep_slash),
// with upper-case hex: the encoding SigV4 expects for S3 paths (keep_slash) and query values.
std::string UriEncode(std::string_view s, bool keep_slash);

// Decodes %XX escapes; '+' becomes a space when plus_is_space (S3's encoding-type=url output).
// kInvalidArgument on a truncated or non-hex escape.
Result<std::string> UriDecode(std::string_view s, bool plus_is_space);

// "a=1&b=&c=x%2Fy": sorted by encoded name (then value), names and values fully encoded,
// parameters without a value written "name=". The canonical query string of SigV4.
using QueryParams = std::vector<std::pair<std::string, std::string>>;
std::string BuildQuery(QueryParams params);

// ---- XML responses ------------------------------------------------------------------------

struct ErrorBody {
  std::string code;     // "NoSuchKey", "AccessDenied", ...
  std::string message;  // may be "" (RGW sends <Message/>)
  std::string request_id;
};

// nullopt when `xml` is not an S3 <Error> document (empty body, HTML from a proxy, ...).
std::optional<ErrorBody> ParseErrorBody(std::string_view xml);

struct ListObjectsPage {
  std::vector<ObjectInfo> objects;  // keys decoded when the store url-encoded them
  bool truncated = false;
  std::string next_continuation_token;
  bool url_encoded = false;  // the response said <EncodingType>url</EncodingType>
};
Result<ListObjectsPage> ParseListObjectsV2(std::string_view xml);

struct ListVersionsPage {
  std::vector<ObjectVersion> versions;  // <Version> and <DeleteMarker> in document order
  bool truncated = false;
  std::string next_key_marker;  // decoded
  std::string next_version_id_marker;
  bool url_encoded = false;
};
Result<ListVersionsPage> ParseListObjectVersions(std::string_view xml);

// The <Deleted> and <Error> entries of a DeleteObjects response, in document order.
Result<std::vector<DeleteOutcome>> ParseDeleteResult(std::string_view xml);

// ---- XML request bodies -------------------------------------------------------------------

// <Delete><Quiet>..</Quiet><Object><Key>..</Key>[<VersionId>..</VersionId>]</Object>...</Delete>
std::string BuildDeleteRequest(const std::vector<ObjectId>& ids, bool quiet);

// True when `key` can travel in an XML 1.0 document unchanged: no control characters other
// than tab and newline (and no '\r', which XML parsers turn into '\n').
bool IsXmlSafe(std::string_view key);

// One entry of a bucket's notification configuration that delete-sync manages.
struct NotificationTarget {
  std::string id;                   // the configuration's Id
  std::string kind = "Topic";       // Topic (RGW, SNS), Queue (SQS) or CloudFunction (Lambda)
  std::string arn;                  // TopicArn / QueueArn / Lambda function ARN
  std::vector<std::string> events;  // "s3:ObjectCreated:*", ...
  std::string prefix;               // key filter; "" for the whole bucket
};

// Puts `target` into the NotificationConfiguration `existing` (GetBucketNotification's answer;
// "" for none): an entry with the same Id is replaced, every other entry is kept as it was.
// `*changed` is false when an identical entry was already there. Errors on unparsable XML.
Result<std::string> MergeNotificationConfiguration(std::string_view existing,
                                                   const NotificationTarget& target, bool* changed);

// The TopicArn of an SNS CreateTopic answer.
Result<std::string> ParseCreateTopicArn(std::string_view xml);

// The topics of a ListTopics answer, and its NextToken ("" on the last page). AWS SNS answers
// with TopicArn only: the other fields are then empty.
Result<std::vector<TopicInfo>> ParseListTopics(std::string_view xml, std::string* next_token);

std::string BuildVersioningConfiguration(bool enabled);
std::string BuildCreateBucketConfiguration(const std::string& region);

// ---- Errors -------------------------------------------------------------------------------

// True for answers worth retrying: 5xx, 429, and the codes SlowDown, RequestTimeout,
// InternalError, ServiceUnavailable, Throttling whatever their status.
bool IsRetryableHttp(long http_status, std::string_view code);

// What a request was about, for messages.
struct RequestTarget {
  std::string_view method;  // "GET", "HEAD", ...
  std::string_view bucket;
  std::string_view key;  // "" for bucket-level requests
  std::string_view version_id;
};

// "s3://bucket/key", "s3://bucket/key (version v)", or "s3://bucket".
std::string DescribeTarget(const RequestTarget& t);

// Maps a non-2xx answer onto a Status:
//  NoSuchBucket -> kNotFound "bucket 'b' does not exist (NoSuchBucket)";
//  NoSuchKey / NoSuchVersion / a bodiless 404 on a key -> kNotFound "s3://b/k: not found";
//  401/403 -> kPermissionDenied with the S3 code (AccessDenied, SignatureDoesNotMatch, ...);
//  409 -> kConflict; retryable answers -> kUnavailable (with "after N attempts");
//  other 4xx/3xx -> kInvalidArgument. `err` may be empty (HEAD has no body).
Status HttpErrorToStatus(const RequestTarget& t, long http_status, const ErrorBody& err,
                         int attempts);

}  // namespace ds::s3
