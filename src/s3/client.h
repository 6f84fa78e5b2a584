// The S3 adapter: ObjectStore over libcurl, signed with curl's built-in AWS SigV4
// (CURLOPT_AWS_SIGV4). Works against AWS S3 and S3-compatible stores (Ceph RGW, MinIO).
//
// Wire details that matter (curl 7.88 signs exactly what it is given, so the client builds a
// canonical request itself):
//  - object keys are percent-encoded once, every byte except A-Za-z0-9-._~ and '/', and sent
//    with CURLOPT_PATH_AS_IS so "a/../b" or "a//b" reach the store untouched;
//  - query strings are built sorted by name, names and values fully encoded, and parameters
//    without a value written "name=" (curl uses the raw query as the canonical query string);
//  - every request carries x-amz-content-sha256 with the real SHA-256 of its body (the hash of
//    the empty string for GET/HEAD/DELETE); curl uses that header as the payload hash;
//  - the session token travels as the signed x-amz-security-token header, never in a URL.
//
// Credentials never appear in logs or in Status messages: requests are logged (spdlog, debug
// level) as method, s3://bucket/key, HTTP status and attempt — never URLs or headers.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "aws/credentials.h"
#include "common/status.h"
#include "core/object_store.h"

namespace ds {

// A topic as Ceph RGW's ListTopics describes it (its SNS-compatible API, 16.2 and later).
struct TopicInfo {
  std::string name;
  std::string arn;
  std::string push_endpoint;  // EndPoint/EndpointAddress
  bool persistent = false;    // EndPoint/Persistent
  // The attributes it was created with (EndPoint/EndpointArgs: "k=v&k=v", not URL-encoded).
  std::map<std::string, std::string> args;
};
struct S3Config {
  // How the bucket is put into a request URL: path-style (https://host/bucket/key) or
  // virtual-hosted (https://bucket.host/key). kAuto picks virtual-hosted for *.amazonaws.com
  // endpoints (unless the bucket name is not a DNS label, or has dots over https) and path-style
  // everywhere else (RGW, MinIO, localhost).
  enum class Addressing { kAuto, kPath, kVirtual };

  std::string endpoint;  // scheme://host[:port], http or https, no path, no trailing slash
  std::string region = "us-east-1";
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // "" unless using temporary credentials
  // Where each request's credentials come from when they are not the three static fields above
  // (which are then empty): the standard credential chain (aws/credentials.h), asked once per
  // request. Copies of the configuration share it.
  std::shared_ptr<aws::RefreshingCredentials> credentials;
  Addressing addressing = Addressing::kAuto;
  std::string ca_bundle;  // PEM file of trusted CAs (AWS_CA_BUNDLE); "" = system default

  // Retries: full-jitter exponential backoff, sleep = uniform(0, min(backoff_max,
  // backoff_base * 2^(attempt-1))), on connection errors, 5xx, 429 and SlowDown/RequestTimeout.
  int max_attempts = 5;  // total attempts, >= 1
  std::chrono::milliseconds backoff_base{100};
  std::chrono::milliseconds backoff_max{20000};

  // Timeouts of one attempt (settings s3-connect-timeout, s3-request-timeout,
  // s3-low-speed-timeout). A timed-out attempt is kUnavailable and retried like a network error.
  //  - connect_timeout: to set up the connection (TCP and TLS).
  //  - request_timeout: the whole attempt, for every request but GetObject (listings, HEAD,
  //    DELETE, DeleteObjects, PUT, ...); 0 = no deadline.
  //  - GetObject has no total deadline, so that big downloads work: it is aborted when it moves
  //    fewer than low_speed_limit bytes/s for low_speed_time (0 s = never). The low-speed
  //    limit applies to the other requests too.
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds request_timeout{30000};
  long low_speed_limit = 1024;
  std::chrono::seconds low_speed_time{30};

  // Reads AWS_REGION (then AWS_DEFAULT_REGION, default us-east-1), AWS_ENDPOINT_URL_S3 (then
  // AWS_ENDPOINT_URL, default https://s3.<region>.amazonaws.com), AWS_S3_ADDRESSING_STYLE
  // (path|virtual|auto), AWS_CA_BUNDLE and AWS_MAX_ATTEMPTS, then the credentials. Empty
  // variables count as unset. Credentials:
  //  - AWS_ACCESS_KEY_ID and/or AWS_SECRET_ACCESS_KEY set: those (both required, with
  //    AWS_SESSION_TOKEN), in the static fields, as before the chain existed;
  //  - neither set: the rest of the standard chain (aws::ResolveCredentials of
  //    aws::DefaultCredentialsChain: web identity, profiles, container, IMDS), resolved now (it
  //    may read files, run credential_process and call STS, the container endpoint or IMDS) and
  //    kept in `credentials`.
  // kInvalidArgument naming the variable when something is missing or malformed, and when no
  // source has credentials (naming every source tried and why); a configured source's failure
  // keeps its code and message (aws::ResolveCredentials).
  static Result<S3Config> FromEnvironment();
  // Same, from a map of variable name -> value instead of the process environment (the chain
  // reads its variables, HOME included, from the map too).
  static Result<S3Config> FromVariables(const std::map<std::string, std::string>& vars);

  Status Validate() const;
  // True when requests for `bucket` use path-style addressing.
  bool UsesPathStyle(const std::string& bucket) const;
  // One line for logs: endpoint, region, addressing, masked access key id ("AKIA…"), whether a
  // session token is set (or, with `credentials`, their source, masked key id and expiry).
  // Never the secret or the token.
  std::string Describe() const;
};

const char* AddressingName(S3Config::Addressing a);

// One entry of ListObjectVersions: an object version or a delete marker (size 0, no etag).
struct ObjectVersion : ObjectInfo {
  bool is_latest = false;
  bool is_delete_marker = false;
};

// The full request URL for `bucket`/`key` ("" for bucket-level requests) with an already built
// query string ("" for none). Exposed for tests.
std::string BuildRequestUrl(const S3Config& config, const std::string& bucket,
                            const std::string& key, const std::string& query);

// Thread safety: one S3Client may be used from any number of threads at once. Each request
// borrows a curl easy handle from an internal pool (connections are kept alive and reused);
// the configuration is immutable after construction.
//
// GetObject retries: a GET is retried (same rules as every request) only while no body bytes
// have reached the sink. Once the sink has seen data, a failure is returned as kUnavailable
// ("...bytes were delivered...") and the caller must discard what it received and start over;
// a sink error aborts the transfer and is returned as is.
class S3Client : public ObjectStore {
 public:
  explicit S3Client(S3Config config);
  ~S3Client() override;
  S3Client(const S3Client&) = delete;
  S3Client& operator=(const S3Client&) = delete;

  // ObjectStore.
  Result<ObjectInfo> GetObject(const std::string& bucket, const std::string& key,
                               const std::string& version_id, const BodySink& sink) override;
  // HEAD answers have no body: a 404 is "s3://b/k: not found" whether the key or the bucket
  // is missing; a 403 is kPermissionDenied without an S3 code.
  Result<ObjectInfo> HeadObject(const std::string& bucket, const std::string& key,
                                const std::string& version_id) override;
  // Requests encoding-type=url and decodes the keys when the store says it encoded them.
  Status ListObjects(const std::string& bucket, const std::string& prefix,
                     const std::function<bool(const ObjectInfo&)>& visit) override;
  // Outcomes are in the order of `ids`. Keys that XML 1.0 cannot carry (control characters,
  // '\r') are deleted one by one with DELETE instead. A failure of a whole request (403,
  // NoSuchBucket, retries exhausted) is returned as the Status.
  Result<std::vector<DeleteOutcome>> DeleteObjects(const std::string& bucket,
                                                   const std::vector<ObjectId>& ids) override;

  // Extras for tests, the demo and erasure work (not part of ObjectStore).
  // CreateBucket succeeds when the bucket already exists and is ours.
  Status CreateBucket(const std::string& bucket);
  Status DeleteBucket(const std::string& bucket);  // kConflict when not empty
  // `metadata` names may be given with or without the "x-amz-meta-" prefix.
  Status PutObject(const std::string& bucket, const std::string& key, const std::string& body,
                   const std::map<std::string, std::string>& metadata = {});
  // DELETE of one key (or one version). Deleting a missing key succeeds, as in S3.
  Status DeleteObject(const std::string& bucket, const std::string& key,
                      const std::string& version_id = "");
  Status SetBucketVersioning(const std::string& bucket, bool enabled);
  // Every version and delete marker under `prefix`, in the store's order (key, then newest
  // first). A bucket that never had versioning lists one version "null" per object.
  Result<std::vector<ObjectVersion>> ListObjectVersions(const std::string& bucket,
                                                        const std::string& prefix);

  // The bucket's notification configuration as the store returns it (XML), and its
  // replacement (PutBucketNotificationConfiguration).
  Result<std::string> GetBucketNotification(const std::string& bucket);
  Status PutBucketNotification(const std::string& bucket, const std::string& xml);
  // The SNS-compatible CreateTopic of Ceph RGW (POST / Action=CreateTopic, signed for "sns");
  // idempotent on RGW (same name -> same topic, attributes replaced). Returns the TopicArn.
  // The SNS-compatible ListTopics (every page), for finding a topic's current attributes on
  // Ceph RGW before changing it.
  Result<std::vector<TopicInfo>> ListTopics();
  Result<std::string> CreateTopic(
      const std::string& name, const std::vector<std::pair<std::string, std::string>>& attributes);

  // Whether `bucket` exists and can be listed under `prefix` with these credentials: one
  // ListObjectsV2 with max-keys=1 (with the configured attempts and timeouts). OK when the store
  // answered 200. Otherwise the message names the cause for an operator, never a secret:
  //  - kNotFound: "bucket 'b' does not exist" (NoSuchBucket, or a 404 without a code);
  //  - kPermissionDenied: 401/403, naming the S3 code and what to check (InvalidAccessKeyId:
  //    AWS_ACCESS_KEY_ID; SignatureDoesNotMatch: AWS_SECRET_ACCESS_KEY; ExpiredToken,
  //    InvalidToken: AWS_SESSION_TOKEN; AccessDenied: the permission s3:ListBucket), with the
  //    access key id shortened to four characters;
  //  - kUnavailable: network errors, timeouts, 5xx;
  //  - kInvalidArgument: a bad configuration, a bucket in another region (PermanentRedirect,
  //    AuthorizationHeaderMalformed: AWS_REGION) or any other answer.
  Status CheckBucket(const std::string& bucket, const std::string& prefix);

  // max-keys for ListObjects/ListObjectVersions pages; 0 (default) = the store's default (1000).
  void set_list_page_size(int n);

  const S3Config& config() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ds
