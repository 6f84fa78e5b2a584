// Internals of S3Client shared by its source files; private to src/s3/ (nothing else includes
// this header). S3Client is defined in several files, one idea each:
//  - client.cc: S3Client's lifetime, the pool of curl handles, the name checks, and the string
//    helpers declared here;
//  - config.cc: S3Config (environment, validation, addressing style), BuildRequestUrl and the
//    endpoint parsing declared here;
//  - http.cc: one request over libcurl (Impl::Execute): signed headers, attempts with back-off,
//    timeouts, logs;
//  - objects.cc (GET, HEAD, PUT, DELETE of one key), listing.cc (ListObjectsV2,
//    ListObjectVersions), delete_objects.cc (DeleteObjects), buckets.cc (create, delete,
//    versioning, CheckBucket) and notifications.cc (bucket notifications, RGW's SNS topics).
//
// An operation fills a Request and calls Impl::Execute, which returns:
//  - a Response for every HTTP answer once no further attempt is due (2xx, an answer not worth
//    retrying, or the last attempt's answer); a non-2xx Response carries its parsed error body
//    and the operation maps it to a Status (Impl::MapError, or its own mapping);
//  - a Status for everything else: a bad configuration or header, a sink error, a 2xx body too
//    large to buffer, a transfer that failed after body bytes reached the sink, and network
//    errors or timeouts after the last attempt.
//
// Helpers live in ds::s3_internal (the library may be compiled as a unity build, in which
// anonymous-namespace names of different files must not meet).
#pragma once

#include <curl/curl.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "aws/credentials.h"
#include "common/status.h"
#include "core/object_store.h"
#include "s3/client.h"
#include "s3/xml.h"

namespace ds {
namespace s3_internal {

// ---- Strings (client.cc) ------------------------------------------------------------------

std::string Trim(std::string_view s);
std::string Lower(std::string_view s);
bool StartsWith(std::string_view s, std::string_view p);

// ---- Endpoints (config.cc) ----------------------------------------------------------------

// scheme ("http"/"https", lower-case) and authority ("host:port") of an endpoint.
struct Endpoint {
  std::string scheme;
  std::string authority;
  std::string host;  // authority without the port
};

// kInvalidArgument unless `endpoint` is scheme://host[:port] (http or https, no user
// information, no path or query; one trailing slash is dropped). The host is lower-cased.
Result<Endpoint> ParseEndpoint(const std::string& endpoint);
// True for *.amazonaws.com and *.amazonaws.com.cn.
bool IsAwsHost(const std::string& host);
// The first four characters of an access key id and "…" (only "…" when it is that short).
std::string MaskKeyId(const std::string& id);

// ---- One request (http.cc) ----------------------------------------------------------------

struct Request {
  const char* method = "GET";
  const char* op = "";  // the S3 operation, for logs and messages: "ListObjectsV2", ...
  std::string bucket;
  std::string key;         // "" for bucket-level requests
  std::string version_id;  // for messages and logs; the query carries it
  s3::QueryParams query;
  std::vector<std::pair<std::string, std::string>> headers;  // besides the standard ones
  const std::string* body = nullptr;                         // PUT/POST
  std::string content_type;                                  // with body
  const BodySink* sink = nullptr;                            // GET: where a 2xx body goes
  const char* service = "s3";  // SigV4 service name ("sns" for the topic API of RGW)

  s3::RequestTarget Target() const { return {method, bucket, key, version_id}; }
};

struct Response {
  long status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;                            // error body, or a 2xx body without a sink
  s3::ErrorBody error;                         // parsed from a non-2xx body, may be empty
  uint64_t delivered = 0;                      // body bytes handed to the sink
  int attempts = 0;
  bool ok() const { return status >= 200 && status < 300; }
};

}  // namespace s3_internal

// Thread safety: as S3Client's (see client.h); the configuration fields are immutable after
// construction, the pool is guarded by pool_mu, page_size is atomic.
struct S3Client::Impl {
  // Validates the configuration (config_status) and prepares the SigV4 and User-Agent strings.
  explicit Impl(S3Config c);
  ~Impl();

  // The handle pool (client.cc): a pooled or new easy handle (nullptr when curl cannot make
  // one), and its return (at most kMaxIdleHandles stay idle, the others are cleaned up).
  CURL* AcquireHandle();
  void ReleaseHandle(CURL* h);

  Result<s3_internal::Response> Execute(const s3_internal::Request& req);
  // A POST of `form` to the SNS-compatible topic API (Ceph RGW's); its answer's body. `what`
  // names the call in errors.
  Result<std::string> SnsAction(const char* op, const std::string& what,
                                const s3::QueryParams& form);
  // The credentials to sign a request with: the static ones of the configuration, or
  // config.credentials->Get() (which may wait for a refresh of expired ones, and fails with its
  // source's error).
  Result<aws::Credentials> RequestCredentials() const;
  Status PerformOnce(CURL* h, const s3_internal::Request& req, const std::string& url,
                     curl_slist* headers, const aws::Credentials& creds,
                     s3_internal::Response* resp, CURLcode* rc, std::string* curl_error);
  Status MapError(const s3_internal::Request& req, const s3_internal::Response& resp) const {
    return s3::HttpErrorToStatus(req.Target(), resp.status, resp.error, resp.attempts);
  }
  // The configuration's error, or kInvalidArgument for an empty bucket name, one with '/', or
  // an empty key (`key` nullptr for bucket-level requests). OK otherwise.
  Status CheckNames(const std::string& bucket, const std::string* key) const;
  // The error of a CheckBucket answer that is not 2xx (see client.h).
  Status BucketError(const s3_internal::Request& req, const s3_internal::Response& resp) const;
  // "ListObjectsV2" (the method when the request names no operation).
  static std::string Operation(const s3_internal::Request& req);
  // "timed out (s3-connect-timeout 5s, s3-request-timeout 30s, ...)": the limits that applied.
  std::string TimeoutLimits(const s3_internal::Request& req) const;
  // One DELETE (objects.cc): a key the store refuses is an outcome with its error; NoSuchBucket
  // and kUnavailable are returned as the Status.
  Result<DeleteOutcome> DeleteOne(const std::string& bucket, const ObjectId& id);
  // One DeleteObjects request for ids[p], p in `positions` (delete_objects.cc); the outcomes
  // go to (*out)[p].
  Status DeleteBatch(const std::string& bucket, const std::vector<ObjectId>& ids,
                     const std::vector<size_t>& positions, std::vector<DeleteOutcome>* out);

  static constexpr size_t kMaxIdleHandles = 64;

  S3Config config;
  Status config_status;
  std::string sigv4;
  std::string user_agent;
  std::atomic<int> page_size{0};
  std::mutex pool_mu;
  std::vector<CURL*> pool;
};

}  // namespace ds
