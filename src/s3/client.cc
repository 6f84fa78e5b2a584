#include "s3/client.h"

#include <curl/curl.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <mutex>
#include <random>
#include <string_view>
#include <thread>
#include <utility>

#include "common/version.h"
#include "crypto/digest.h"
#include "s3/xml.h"

namespace ds {
namespace {

// SHA-256 of the empty string: the payload hash of requests without a body.
constexpr char kEmptySha256[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
// Largest DeleteObjects batch S3 accepts.
constexpr size_t kDeleteBatch = 1000;
// Error bodies are small; keep at most this much of a non-2xx body.
constexpr size_t kMaxErrorBody = 64 * 1024;
// A 2xx body that is not streamed (listings) larger than this is refused.
constexpr size_t kMaxBufferedBody = 256 * 1024 * 1024;

std::string Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool StartsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

using crypto::Md5Base64;
using crypto::Sha256Hex;

// scheme ("http"/"https", lower-case) and authority ("host:port") of an endpoint.
struct Endpoint {
  std::string scheme;
  std::string authority;
  std::string host;  // authority without the port
};

Result<Endpoint> ParseEndpoint(const std::string& endpoint) {
  Endpoint e;
  if (endpoint.find('@') != std::string::npos) {
    // Do not echo it: whatever precedes '@' may be a password.
    return Status::Invalid("S3 endpoint must not contain user credentials (user@host)");
  }
  size_t sep = endpoint.find("://");
  if (sep == std::string::npos) {
    return Status::Invalid("S3 endpoint '" + endpoint +
                           "' must start with http:// or https:// (e.g. http://127.0.0.1:7480)");
  }
  e.scheme = Lower(endpoint.substr(0, sep));
  if (e.scheme != "http" && e.scheme != "https") {
    return Status::Invalid("S3 endpoint '" + endpoint + "' must use http or https");
  }
  std::string rest = endpoint.substr(sep + 3);
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest.empty() || rest.find_first_of("/?# ") != std::string::npos) {
    return Status::Invalid("S3 endpoint '" + endpoint +
                           "' must be scheme://host[:port] without a path or query");
  }
  e.authority = rest;
  e.host = rest;
  if (rest.front() == '[') {  // [::1]:port
    size_t close = rest.find(']');
    if (close != std::string::npos) e.host = rest.substr(0, close + 1);
  } else if (size_t colon = rest.rfind(':'); colon != std::string::npos) {
    e.host = rest.substr(0, colon);
  }
  e.host = Lower(e.host);
  return e;
}

bool IsAwsHost(const std::string& host) {
  auto ends = [&](std::string_view suffix) {
    return host.size() >= suffix.size() &&
           host.compare(host.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  return ends(".amazonaws.com") || ends(".amazonaws.com.cn");
}

// A bucket name usable as a DNS label (virtual-hosted addressing).
bool IsDnsCompatibleBucket(const std::string& b) {
  if (b.size() < 3 || b.size() > 63) return false;
  for (char c : b) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.')) return false;
  }
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  return alnum(b.front()) && alnum(b.back()) && b.find("..") == std::string::npos;
}

// The endpoint for messages: user information (never valid, but possibly a password) hidden.
std::string SafeEndpoint(const std::string& endpoint) {
  size_t at = endpoint.rfind('@');
  if (at == std::string::npos) return endpoint;
  size_t sep = endpoint.find("://");
  size_t start = (sep == std::string::npos || sep > at) ? 0 : sep + 3;
  return endpoint.substr(0, start) + "***" + endpoint.substr(at);
}

std::string MaskKeyId(const std::string& id) {
  if (id.size() <= 4) return "…";
  return id.substr(0, 4) + "…";
}

Result<int> ParsePositiveInt(const std::string& name, const std::string& value) {
  int v = 0;
  auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (ec != std::errc() || ptr != value.data() + value.size() || v < 1) {
    return Status::Invalid(name + "='" + value + "' is not a positive integer");
  }
  return v;
}

// Everything except configuration mistakes and local failures is worth another attempt.
bool IsRetryableCurl(CURLcode rc) {
  switch (rc) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_NOT_BUILT_IN:
    case CURLE_OUT_OF_MEMORY:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_UNKNOWN_OPTION:
    case CURLE_WRITE_ERROR:
    case CURLE_READ_ERROR:
    case CURLE_ABORTED_BY_CALLBACK:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_LOGIN_DENIED:
    case CURLE_FILESIZE_EXCEEDED:
      return false;
    default:
      return true;
  }
}

std::chrono::milliseconds BackoffDelay(const S3Config& c, int attempt) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  int shift = std::min(attempt - 1, 30);
  long long base = std::max<long long>(0, c.backoff_base.count());
  long long cap = std::max<long long>(0, c.backoff_max.count());
  long long ceiling = base > (cap >> shift) ? cap : (base << shift);
  ceiling = std::min(ceiling, cap);
  if (ceiling <= 0) return std::chrono::milliseconds(0);
  std::uniform_int_distribution<long long> dist(0, ceiling);
  return std::chrono::milliseconds(dist(rng));
}

void EnsureCurlGlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// "5s", "1500 ms".
std::string FormatMs(std::chrono::milliseconds d) {
  long long ms = d.count();
  return ms % 1000 == 0 ? std::to_string(ms / 1000) + "s" : std::to_string(ms) + " ms";
}

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

// State of one transfer, shared with curl's callbacks.
struct Transfer {
  Response* resp = nullptr;
  const BodySink* sink = nullptr;
  Status sink_status;
  bool overflow = false;
};

size_t OnHeader(char* buf, size_t size, size_t n, void* userdata) {
  auto* t = static_cast<Transfer*>(userdata);
  size_t len = size * n;
  std::string_view line(buf, len);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  if (StartsWith(line, "HTTP/")) {
    // A new status line (after "100 Continue" or a retry): start over.
    t->resp->headers.clear();
    size_t sp = line.find(' ');
    if (sp != std::string_view::npos) {
      long code = 0;
      std::string_view rest = line.substr(sp + 1);
      std::from_chars(rest.data(), rest.data() + rest.size(), code);
      t->resp->status = code;
    }
    return len;
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return len;
  std::string name = Lower(Trim(line.substr(0, colon)));
  std::string value = Trim(line.substr(colon + 1));
  auto [it, inserted] = t->resp->headers.emplace(name, value);
  if (!inserted) it->second += "," + value;
  return len;
}

size_t OnBody(char* buf, size_t size, size_t n, void* userdata) {
  auto* t = static_cast<Transfer*>(userdata);
  size_t len = size * n;
  bool success = t->resp->status >= 200 && t->resp->status < 300;
  if (success && t->sink != nullptr) {
    Status s = (*t->sink)(buf, len);
    if (!s.ok()) {
      t->sink_status = std::move(s);
      return CURL_WRITEFUNC_ERROR;
    }
    t->resp->delivered += len;
    return len;
  }
  size_t limit = success ? kMaxBufferedBody : kMaxErrorBody;
  if (t->resp->body.size() + len > limit) {
    if (success) {
      t->overflow = true;
      return CURL_WRITEFUNC_ERROR;
    }
    t->resp->body.append(buf, limit - t->resp->body.size());
    return len;  // keep reading, drop the rest
  }
  t->resp->body.append(buf, len);
  return len;
}

}  // namespace

// ---- S3Config ---------------------------------------------------------------------------

const char* AddressingName(S3Config::Addressing a) {
  switch (a) {
    case S3Config::Addressing::kAuto:
      return "auto";
    case S3Config::Addressing::kPath:
      return "path";
    case S3Config::Addressing::kVirtual:
      return "virtual";
  }
  return "?";
}

Result<S3Config> S3Config::FromEnvironment() {
  static const char* const kNames[] = {
      "AWS_ACCESS_KEY_ID",  "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION",
      "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL_S3",   "AWS_ENDPOINT_URL",  "AWS_S3_ADDRESSING_STYLE",
      "AWS_CA_BUNDLE",      "AWS_MAX_ATTEMPTS",
  };
  std::map<std::string, std::string> vars;
  for (const char* name : kNames) {
    if (const char* v = std::getenv(name)) vars[name] = v;
  }
  return FromVariables(vars);
}

Result<S3Config> S3Config::FromVariables(const std::map<std::string, std::string>& vars) {
  auto get = [&](const char* name) -> std::string {
    auto it = vars.find(name);
    return it == vars.end() ? std::string() : Trim(it->second);
  };
  S3Config c;
  c.access_key_id = get("AWS_ACCESS_KEY_ID");
  if (c.access_key_id.empty()) {
    return Status::Invalid(
        "AWS_ACCESS_KEY_ID is not set: S3 credentials are read from AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary credentials)");
  }
  c.secret_access_key = get("AWS_SECRET_ACCESS_KEY");
  if (c.secret_access_key.empty()) {
    return Status::Invalid("AWS_SECRET_ACCESS_KEY is not set (AWS_ACCESS_KEY_ID is)");
  }
  c.session_token = get("AWS_SESSION_TOKEN");
  c.region = get("AWS_REGION");
  if (c.region.empty()) c.region = get("AWS_DEFAULT_REGION");
  if (c.region.empty()) c.region = "us-east-1";
  c.endpoint = get("AWS_ENDPOINT_URL_S3");
  if (c.endpoint.empty()) c.endpoint = get("AWS_ENDPOINT_URL");
  if (c.endpoint.empty()) c.endpoint = "https://s3." + c.region + ".amazonaws.com";
  while (!c.endpoint.empty() && c.endpoint.back() == '/') c.endpoint.pop_back();

  std::string style = Lower(get("AWS_S3_ADDRESSING_STYLE"));
  if (style.empty() || style == "auto") {
    c.addressing = Addressing::kAuto;
  } else if (style == "path") {
    c.addressing = Addressing::kPath;
  } else if (style == "virtual") {
    c.addressing = Addressing::kVirtual;
  } else {
    return Status::Invalid("AWS_S3_ADDRESSING_STYLE='" + style +
                           "' is not one of path, virtual, auto");
  }
  c.ca_bundle = get("AWS_CA_BUNDLE");
  if (std::string attempts = get("AWS_MAX_ATTEMPTS"); !attempts.empty()) {
    Result<int> n = ParsePositiveInt("AWS_MAX_ATTEMPTS", attempts);
    if (!n.ok()) return n.status();
    c.max_attempts = *n;
  }
  DS_RETURN_IF_ERROR(c.Validate());
  return c;
}

Status S3Config::Validate() const {
  Result<Endpoint> e = ParseEndpoint(endpoint);
  if (!e.ok()) return e.status();
  if (region.empty()) return Status::Invalid("S3 region is empty");
  for (char ch : region) {
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '-' && ch != '_') {
      return Status::Invalid("S3 region '" + region + "' has a character other than [A-Za-z0-9_-]");
    }
  }
  if (access_key_id.empty()) return Status::Invalid("S3 access key id is empty");
  if (access_key_id.find(':') != std::string::npos) {
    return Status::Invalid("S3 access key id contains ':'");
  }
  if (secret_access_key.empty()) return Status::Invalid("S3 secret access key is empty");
  auto has_newline = [](const std::string& s) { return s.find_first_of("\r\n") != s.npos; };
  if (has_newline(access_key_id) || has_newline(secret_access_key) || has_newline(session_token)) {
    return Status::Invalid("S3 credentials contain a line break");
  }
  if (max_attempts < 1) return Status::Invalid("S3 max_attempts must be at least 1");
  return Status::Ok();
}

bool S3Config::UsesPathStyle(const std::string& bucket) const {
  switch (addressing) {
    case Addressing::kPath:
      return true;
    case Addressing::kVirtual:
      return false;
    case Addressing::kAuto:
      break;
  }
  Result<Endpoint> e = ParseEndpoint(endpoint);
  if (!e.ok() || !IsAwsHost(e->host)) return true;
  if (!IsDnsCompatibleBucket(bucket)) return true;
  // A dotted bucket breaks the *.s3 wildcard certificate.
  return e->scheme == "https" && bucket.find('.') != std::string::npos;
}

std::string S3Config::Describe() const {
  std::string addr = AddressingName(addressing);
  if (addressing == Addressing::kAuto) {
    Result<Endpoint> e = ParseEndpoint(endpoint);
    addr += (e.ok() && IsAwsHost(e->host)) ? " (virtual-hosted)" : " (path-style)";
  }
  std::string s = "endpoint=" + SafeEndpoint(endpoint) + " region=" + region +
                  " addressing=" + addr + " access_key_id=" + MaskKeyId(access_key_id);
  if (!session_token.empty()) s += " session_token=set";
  return s;
}

std::string BuildRequestUrl(const S3Config& config, const std::string& bucket,
                            const std::string& key, const std::string& query) {
  Result<Endpoint> parsed = ParseEndpoint(config.endpoint);
  Endpoint e = parsed.ok() ? *parsed : Endpoint{"https", config.endpoint, config.endpoint};
  std::string url = e.scheme + "://";
  if (bucket.empty()) {
    url += e.authority + "/";
  } else if (config.UsesPathStyle(bucket)) {
    url += e.authority + "/" + s3::UriEncode(bucket, false);
    if (!key.empty()) url += "/" + s3::UriEncode(key, true);
  } else {
    url += bucket + "." + e.authority + "/" + s3::UriEncode(key, true);
  }
  if (!query.empty()) url += "?" + query;
  return url;
}

// ---- S3Client ---------------------------------------------------------------------------

struct S3Client::Impl {
  explicit Impl(S3Config c) : config(std::move(c)) {
    config_status = config.Validate();
    sigv4 = "aws:amz:" + config.region + ":s3";
    user_agent = std::string("delete-sync/") + Version();
  }

  ~Impl() {
    for (CURL* h : pool) curl_easy_cleanup(h);
  }

  CURL* AcquireHandle() {
    {
      std::lock_guard<std::mutex> lock(pool_mu);
      if (!pool.empty()) {
        CURL* h = pool.back();
        pool.pop_back();
        return h;
      }
    }
    return curl_easy_init();
  }

  void ReleaseHandle(CURL* h) {
    std::lock_guard<std::mutex> lock(pool_mu);
    if (pool.size() < kMaxIdleHandles) {
      pool.push_back(h);
    } else {
      curl_easy_cleanup(h);
    }
  }

  Result<Response> Execute(const Request& req);
  // A POST of `form` to the SNS-compatible topic API (Ceph RGW's); its answer's body. `what`
  // names the call in errors.
  Result<std::string> SnsAction(const char* op, const std::string& what,
                                const s3::QueryParams& form);
  Status PerformOnce(CURL* h, const Request& req, const std::string& url, curl_slist* headers,
                     Response* resp, CURLcode* rc, std::string* curl_error);
  Status MapError(const Request& req, const Response& resp) const {
    return s3::HttpErrorToStatus(req.Target(), resp.status, resp.error, resp.attempts);
  }
  Status CheckNames(const std::string& bucket, const std::string* key) const;
  // The error of a CheckBucket answer that is not 2xx (see client.h).
  Status BucketError(const Request& req, const Response& resp) const;
  // "ListObjectsV2" (the method when the request names no operation).
  static std::string Operation(const Request& req);
  // "timed out (s3-connect-timeout 5s, s3-request-timeout 30s, ...)": the limits that applied.
  std::string TimeoutLimits(const Request& req) const;
  Result<DeleteOutcome> DeleteOne(const std::string& bucket, const ObjectId& id);
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

Status S3Client::Impl::CheckNames(const std::string& bucket, const std::string* key) const {
  DS_RETURN_IF_ERROR(config_status);
  if (bucket.empty()) return Status::Invalid("bucket name is empty");
  if (bucket.find('/') != std::string::npos) {
    return Status::Invalid("bucket name '" + bucket + "' contains '/'");
  }
  if (key != nullptr && key->empty()) {
    return Status::Invalid("object key is empty (bucket '" + bucket + "')");
  }
  return Status::Ok();
}

Status S3Client::Impl::PerformOnce(CURL* h, const Request& req, const std::string& url,
                                   curl_slist* headers, Response* resp, CURLcode* rc,
                                   std::string* curl_error) {
  char errbuf[CURL_ERROR_SIZE] = {0};
  Transfer t;
  t.resp = resp;
  t.sink = req.sink;

  curl_easy_reset(h);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
  curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(h, CURLOPT_USERAGENT, user_agent.c_str());
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(config.connect_timeout.count()));
  if (config.low_speed_time.count() > 0 && config.low_speed_limit > 0) {
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, config.low_speed_limit);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, static_cast<long>(config.low_speed_time.count()));
  }
  // Downloads (a sink) can be large: no total deadline, only the low-speed limit.
  if (req.sink == nullptr && config.request_timeout.count() > 0) {
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(config.request_timeout.count()));
  }
  curl_easy_setopt(h, CURLOPT_HTTPAUTH, static_cast<long>(CURLAUTH_AWS_SIGV4));
  const std::string service_sigv4 = "aws:amz:" + config.region + ":" + req.service;
  curl_easy_setopt(h, CURLOPT_AWS_SIGV4,
                   std::string_view(req.service) == "s3" ? sigv4.c_str() : service_sigv4.c_str());
  curl_easy_setopt(h, CURLOPT_USERNAME, config.access_key_id.c_str());
  curl_easy_setopt(h, CURLOPT_PASSWORD, config.secret_access_key.c_str());
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &OnHeader);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &OnBody);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &t);
  if (!config.ca_bundle.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, config.ca_bundle.c_str());

  std::string_view method = req.method;
  if (method == "HEAD") {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (method == "GET") {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  } else if (method == "PUT" || method == "POST") {
    static const std::string kEmpty;
    const std::string& body = req.body != nullptr ? *req.body : kEmpty;
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data());
    if (method == "PUT") curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
  } else {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req.method);
  }

  *rc = curl_easy_perform(h);
  long code = 0;
  if (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK && code != 0) {
    resp->status = code;
  }
  if (*rc != CURLE_OK) {
    *curl_error = errbuf[0] != '\0' ? std::string(curl_easy_strerror(*rc)) + ": " + errbuf
                                    : std::string(curl_easy_strerror(*rc));
    while (!curl_error->empty() && (curl_error->back() == '\n' || curl_error->back() == '\r')) {
      curl_error->pop_back();
    }
  }
  if (!t.sink_status.ok()) return t.sink_status;
  if (t.overflow) {
    return Status::Internal(std::string(req.method) + " " + s3::DescribeTarget(req.Target()) +
                            ": response body larger than " + std::to_string(kMaxBufferedBody) +
                            " bytes");
  }
  return Status::Ok();
}

Result<Response> S3Client::Impl::Execute(const Request& req) {
  DS_RETURN_IF_ERROR(config_status);
  const std::string url = BuildRequestUrl(config, req.bucket, req.key, s3::BuildQuery(req.query));
  const std::string target = s3::DescribeTarget(req.Target());

  // Headers curl signs (all of CURLOPT_HTTPHEADER, plus host and x-amz-date).
  std::vector<std::pair<std::string, std::string>> hdrs = req.headers;
  const bool has_body = req.body != nullptr;
  hdrs.emplace_back("x-amz-content-sha256", has_body ? Sha256Hex(*req.body) : kEmptySha256);
  if (has_body) {
    hdrs.emplace_back("Content-Type",
                      req.content_type.empty() ? "application/octet-stream" : req.content_type);
    hdrs.emplace_back("Content-MD5", Md5Base64(*req.body));
  }
  if (!config.session_token.empty()) {
    hdrs.emplace_back("x-amz-security-token", config.session_token);
  }
  // curl 7.88 sorts signed headers by their whole "name:value" line, SigV4 by name; the two
  // orders differ only when a name is a prefix of another followed by a byte below ':'
  // ("x-amz-meta-a" and "x-amz-meta-a-b"). Refuse those instead of sending a bad signature.
  std::vector<std::string> lines;
  for (auto& [name, value] : hdrs) {
    if (name.empty() || name.find_first_of(":\r\n \t") != std::string::npos ||
        value.find_first_of("\r\n") != std::string::npos) {
      return Status::Invalid(std::string(req.method) + " " + target + ": header '" +
                             (name == "x-amz-security-token" ? std::string("(token)") : name) +
                             "' has a bad name or a line break in its value");
    }
    lines.push_back(Lower(name) + ":" + Trim(value));
  }
  std::sort(lines.begin(), lines.end());
  for (size_t i = 1; i < lines.size(); ++i) {
    std::string_view a = std::string_view(lines[i - 1]).substr(0, lines[i - 1].find(':'));
    std::string_view b = std::string_view(lines[i]).substr(0, lines[i].find(':'));
    if (!(a < b)) {
      return Status::Invalid(std::string(req.method) + " " + target + ": header names '" +
                             std::string(a) + "' and '" + std::string(b) +
                             "' are duplicates or cannot be signed together");
    }
  }
  curl_slist* slist = nullptr;
  for (auto& [name, value] : hdrs) slist = curl_slist_append(slist, (name + ": " + value).c_str());
  struct SlistFree {
    void operator()(curl_slist* l) const { curl_slist_free_all(l); }
  };
  std::unique_ptr<curl_slist, SlistFree> slist_owner(slist);

  for (int attempt = 1;; ++attempt) {
    Response resp;
    resp.attempts = attempt;
    CURLcode rc = CURLE_OK;
    std::string curl_error;
    CURL* h = AcquireHandle();
    if (h == nullptr) return Status::Internal("curl_easy_init failed");
    auto started = std::chrono::steady_clock::now();
    Status local = PerformOnce(h, req, url, slist, &resp, &rc, &curl_error);
    ReleaseHandle(h);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::steady_clock::now() - started)
                  .count();
    if (!resp.ok() && !resp.body.empty()) {
      if (auto e = s3::ParseErrorBody(resp.body)) resp.error = std::move(*e);
    }
    if (rc == CURLE_OK) {
      spdlog::debug("s3 {} {} -> HTTP {}{}{} (attempt {}/{}, {} ms)", req.method, target,
                    resp.status, resp.error.code.empty() ? "" : " ", resp.error.code, attempt,
                    config.max_attempts, ms);
    } else {
      spdlog::debug("s3 {} {} -> {} (attempt {}/{}, {} ms)", req.method, target, curl_error,
                    attempt, config.max_attempts, ms);
    }
    if (!local.ok()) return local;  // the sink failed, or a listing was absurdly large
    if (rc == CURLE_OPERATION_TIMEDOUT) curl_error = TimeoutLimits(req) + ": " + curl_error;

    const bool last = attempt >= config.max_attempts;
    if (rc != CURLE_OK) {
      if (resp.delivered > 0) {
        return Status::Unavailable(std::string(req.method) + " " + target +
                                   ": transfer failed after " + std::to_string(resp.delivered) +
                                   " bytes were delivered (" + curl_error +
                                   "); not retried, the download must start over");
      }
      if (rc == CURLE_URL_MALFORMAT || rc == CURLE_UNSUPPORTED_PROTOCOL) {
        return Status::Invalid(std::string(req.method) + " " + target + ": " + curl_error);
      }
      if (!IsRetryableCurl(rc) || last) {
        return Status::Unavailable("S3 endpoint " + config.endpoint + " failed for " +
                                   Operation(req) + " " + target + ": " + curl_error + " (after " +
                                   std::to_string(attempt) +
                                   (attempt == 1 ? " attempt)" : " attempts)"));
      }
    } else if (!s3::IsRetryableHttp(resp.status, resp.error.code) || last) {
      return resp;
    }
    const std::chrono::milliseconds delay = BackoffDelay(config, attempt);
    std::string error = curl_error;
    if (rc == CURLE_OK) {
      error = "HTTP " + std::to_string(resp.status);
      if (!resp.error.code.empty()) error += " " + resp.error.code;
    }
    spdlog::warn("s3 {} {}: attempt {}/{} failed ({}); retrying in {} ms", Operation(req), target,
                 attempt, config.max_attempts, error, delay.count());
    std::this_thread::sleep_for(delay);
  }
}

std::string S3Client::Impl::Operation(const Request& req) {
  return *req.op != '\0' ? std::string(req.op) : std::string(req.method);
}

std::string S3Client::Impl::TimeoutLimits(const Request& req) const {
  std::string limits = "timed out (s3-connect-timeout " + FormatMs(config.connect_timeout);
  if (req.sink == nullptr && config.request_timeout.count() > 0) {
    limits += ", s3-request-timeout " + FormatMs(config.request_timeout);
  }
  if (config.low_speed_time.count() > 0 && config.low_speed_limit > 0) {
    limits += ", s3-low-speed-timeout " + FormatMs(config.low_speed_time) + " below " +
              std::to_string(config.low_speed_limit) + " bytes/s";
  }
  return limits + ")";
}

S3Client::S3Client(S3Config config) : impl_(std::make_unique<Impl>(std::move(config))) {
  EnsureCurlGlobalInit();
}

S3Client::~S3Client() = default;

const S3Config& S3Client::config() const { return impl_->config; }

void S3Client::set_list_page_size(int n) { impl_->page_size.store(n < 0 ? 0 : n); }

namespace {

ObjectInfo InfoFromHeaders(const std::string& key, const Response& resp) {
  ObjectInfo info;
  info.key = key;
  auto get = [&](const char* name) -> std::string {
    auto it = resp.headers.find(name);
    return it == resp.headers.end() ? std::string() : it->second;
  };
  std::string length = get("content-length");
  uint64_t size = 0;
  auto [ptr, ec] = std::from_chars(length.data(), length.data() + length.size(), size);
  info.size = (ec == std::errc() && !length.empty()) ? size : resp.delivered;
  info.etag = get("etag");
  if (info.etag.size() >= 2 && info.etag.front() == '"' && info.etag.back() == '"') {
    info.etag = info.etag.substr(1, info.etag.size() - 2);
  }
  info.version_id = get("x-amz-version-id");
  info.last_modified = get("last-modified");
  for (const auto& [name, value] : resp.headers) {
    if (StartsWith(name, "x-amz-meta-")) info.metadata[name] = value;
  }
  return info;
}

}  // namespace

Result<ObjectInfo> S3Client::GetObject(const std::string& bucket, const std::string& key,
                                       const std::string& version_id, const BodySink& sink) {
  DS_RETURN_IF_ERROR(impl_->CheckNames(bucket, &key));
  if (!sink) return Status::Invalid("GetObject needs a body sink");
  Request req;
  req.method = "GET";
  req.op = "GetObject";
  req.bucket = bucket;
  req.key = key;
  req.version_id = version_id;
  if (!version_id.empty()) req.query.emplace_back("versionId", version_id);
  req.sink = &sink;
  Result<Response> resp = impl_->Execute(req);
  if (!resp.ok()) return resp.status();
  if (!resp->ok()) return impl_->MapError(req, *resp);
  return InfoFromHeaders(key, *resp);
}

Result<ObjectInfo> S3Client::HeadObject(const std::string& bucket, const std::string& key,
                                        const std::string& version_id) {
  DS_RETURN_IF_ERROR(impl_->CheckNames(bucket, &key));
  Request req;
  req.method = "HEAD";
  req.op = "HeadObject";
  req.bucket = bucket;
  req.key = key;
  req.version_id = version_id;
  if (!version_id.empty()) req.query.emplace_back("versionId", version_id);
  Result<Response> resp = impl_->Execute(req);
  if (!resp.ok()) return resp.status();
  if (!resp->ok()) return impl_->MapError(req, *resp);
  return InfoFromHeaders(key, *resp);
}

Status S3Client::ListObjects(const std::string& bucket, const std::string& prefix,
                             const std::function<bool(const ObjectInfo&)>& visit) {
  DS_RETURN_IF_ERROR(impl_->CheckNames(bucket, nullptr));
  std::string token;
  for (;;) {
    Request req;
    req.method = "GET";
    req.op = "ListObjectsV2";
    req.bucket = bucket;
    req.query = {{"list-type", "2"}, {"encoding-type", "url"}};
    if (!prefix.empty()) req.query.emplace_back("prefix", prefix);
    if (!token.empty()) req.query.emplace_back("continuation-token", token);
    if (int n = impl_->page_size.load(); n > 0)
      req.query.emplace_back("max-keys", std::to_string(n));
    Result<Response> resp = impl_->Execute(req);
    if (!resp.ok()) return resp.status();
    if (!resp->ok()) return impl_->MapError(req, *resp);
    Result<s3::ListObjectsPage> page = s3::ParseListObjectsV2(resp->body);
    if (!page.ok()) return page.status();
    for (const ObjectInfo& info : page->objects) {
      if (!visit(info)) return Status::Ok();
    }
    if (!page->truncated) return Status::Ok();
    if (page->next_continuation_token.empty() || page->next_continuation_token == token) {
      return Status::Internal("ListObjectsV2 of s3://" + bucket +
                              ": truncated page without a new continuation token");
    }
    token = page->next_continuation_token;
  }
}

Status S3Client::CheckBucket(const std::string& bucket, const std::string& prefix) {
  DS_RETURN_IF_ERROR(impl_->CheckNames(bucket, nullptr));
  Request req;
  req.method = "GET";
  req.op = "ListObjectsV2";
  req.bucket = bucket;
  req.query = {{"list-type", "2"}, {"max-keys", "1"}};
  if (!prefix.empty()) req.query.emplace_back("prefix", prefix);
  Result<Response> resp = impl_->Execute(req);
  if (!resp.ok()) return resp.status();
  if (resp->ok()) return Status::Ok();
  return impl_->BucketError(req, *resp);
}

Status S3Client::Impl::BucketError(const Request& req, const Response& resp) const {
  const std::string& code = resp.error.code;
  const std::string http = "HTTP " + std::to_string(resp.status) + (code.empty() ? "" : " " + code);
  const std::string bucket = "bucket '" + req.bucket + "'";
  const std::string key_id = "access key id " + MaskKeyId(config.access_key_id);
  if (code == "NoSuchBucket" || (resp.status == 404 && code.empty())) {
    return Status::NotFound(bucket + " does not exist (" + http + ")");
  }
  if (resp.status == 401 || resp.status == 403) {
    std::string hint;
    if (code == "InvalidAccessKeyId") {
      hint = "the store does not know the " + key_id + ": check AWS_ACCESS_KEY_ID";
    } else if (code == "SignatureDoesNotMatch") {
      hint = "the secret key does not match the " + key_id + ": check AWS_SECRET_ACCESS_KEY";
    } else if (code == "ExpiredToken" || code == "InvalidToken" || code == "TokenRefreshRequired") {
      hint = "the session token is expired or invalid: check AWS_SESSION_TOKEN";
    } else if (code == "AccessDenied" || code == "AllAccessDisabled") {
      hint = "the " + key_id + " may not list the bucket: it needs s3:ListBucket on it";
    } else {
      hint =
          "check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN (" + key_id + ")";
    }
    return Status::Denied("access denied to " + bucket + " (" + http + "): " + hint);
  }
  if (code == "PermanentRedirect" || code == "AuthorizationHeaderMalformed" || resp.status == 301) {
    return Status::Invalid(bucket + " is not in region " + config.region + " (" + http +
                           "): check AWS_REGION");
  }
  return MapError(req, resp);
}

Result<DeleteOutcome> S3Client::Impl::DeleteOne(const std::string& bucket, const ObjectId& id) {
  Request req;
  req.method = "DELETE";
  req.op = "DeleteObject";
  req.bucket = bucket;
  req.key = id.key;
  req.version_id = id.version_id;
  if (!id.version_id.empty()) req.query.emplace_back("versionId", id.version_id);
  Result<Response> resp = Execute(req);
  if (!resp.ok()) return resp.status();
  DeleteOutcome o;
  o.id = id;
  if (resp->ok()) {
    o.deleted = true;
    return o;
  }
  Status s = MapError(req, *resp);
  if (resp->error.code == "NoSuchBucket" || s.code() == Code::kUnavailable) return s;
  o.error_code =
      resp->error.code.empty() ? "HTTP " + std::to_string(resp->status) : resp->error.code;
  o.error_message = resp->error.message.empty() ? s.message() : resp->error.message;
  return o;
}

Status S3Client::Impl::DeleteBatch(const std::string& bucket, const std::vector<ObjectId>& ids,
                                   const std::vector<size_t>& positions,
                                   std::vector<DeleteOutcome>* out) {
  std::vector<ObjectId> batch;
  batch.reserve(positions.size());
  for (size_t p : positions) batch.push_back(ids[p]);
  const std::string body = s3::BuildDeleteRequest(batch, /*quiet=*/false);
  Request req;
  req.method = "POST";
  req.op = "DeleteObjects";
  req.bucket = bucket;
  req.query = {{"delete", ""}};
  req.body = &body;
  req.content_type = "application/xml";
  Result<Response> resp = Execute(req);
  if (!resp.ok()) return resp.status();
  if (!resp->ok()) return MapError(req, *resp);
  Result<std::vector<DeleteOutcome>> entries = s3::ParseDeleteResult(resp->body);
  if (!entries.ok()) return entries.status();

  // Match the answer's entries to the request's ids: by key and version, then by key alone
  // (stores differ in whether they echo the version id).
  std::multimap<std::pair<std::string, std::string>, size_t> exact;
  std::multimap<std::string, size_t> by_key;
  for (size_t p : positions) {
    exact.emplace(std::make_pair(ids[p].key, ids[p].version_id), p);
    by_key.emplace(ids[p].key, p);
  }
  std::vector<bool> done(ids.size(), false);
  std::map<std::pair<std::string, std::string>, DeleteOutcome> seen;
  auto take = [&](size_t p, const DeleteOutcome& e) {
    done[p] = true;
    DeleteOutcome o = e;
    o.id = ids[p];
    (*out)[p] = o;
    seen.emplace(std::make_pair(ids[p].key, ids[p].version_id), o);
    for (auto it = exact.begin(); it != exact.end(); ++it) {
      if (it->second == p) {
        exact.erase(it);
        break;
      }
    }
    for (auto it = by_key.begin(); it != by_key.end(); ++it) {
      if (it->second == p) {
        by_key.erase(it);
        break;
      }
    }
  };
  for (const DeleteOutcome& e : *entries) {
    auto it = exact.find({e.id.key, e.id.version_id});
    if (it != exact.end()) {
      take(it->second, e);
      continue;
    }
    auto kt = by_key.find(e.id.key);
    if (kt != by_key.end()) take(kt->second, e);
  }
  for (size_t p : positions) {
    if (done[p]) continue;
    auto it = seen.find({ids[p].key, ids[p].version_id});
    if (it != seen.end()) {  // the same id twice in the request, answered once
      (*out)[p] = it->second;
      continue;
    }
    DeleteOutcome o;
    o.id = ids[p];
    o.error_code = "MissingFromResponse";
    o.error_message = "the store's DeleteObjects answer did not mention this key";
    (*out)[p] = o;
  }
  return Status::Ok();
}

Result<std::vector<DeleteOutcome>> S3Client::DeleteObjects(const std::string& bucket,
                                                           const std::vector<ObjectId>& ids) {
  DS_RETURN_IF_ERROR(impl_->CheckNames(bucket, nullptr));
  std::vector<DeleteOutcome> out(ids.size());
  std::vector<size_t> batch;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i].key.empty()) {
      out[i].id = ids[i];
      out[i].error_code = "InvalidArgument";
      out[i].error_message = "empty key";
      continue;
    }
    if (!s3::IsXmlSafe(ids[i].key) || !s3::IsXmlSafe(ids[i].version_id)) {
      Result<DeleteOutcome> o = impl_->DeleteOne(bucket, ids[i]);
      if (!o.ok()) return o.status();
      out[i] = std::move(o).value();
      continue;
    }
    batch.push_back(i);
    if (batch.size() == kDeleteBatch) {
      DS_RETURN_IF_ERROR(impl_->DeleteBatch(bucket, ids, batch, &out));
      batch.clear();
    }
  }
  if (!batch.empty()) DS_RETURN_IF_ERROR(impl_->DeleteBatch(bucket, ids, batch, &out));
  return out;
}

Status S3Client::CreateBucket(const std::string& bucket) {
  DS_RETURN_IF_ERROR(impl_->CheckNames(bucket, nullptr));
  std::string body;
  Result<Endpoint> e = ParseEndpoint(impl_->config.endpoint);
  // AWS wants a LocationConstraint outside us-east-1; other stores may refuse one that does not
  // name their zone group, so send it to AWS only.
  if (e.ok() && IsAwsHost(e->host) && impl_->config.region != "us-east-1") {
    body = s3::BuildCreateBucketConfiguration(impl_->config.region);
  }
  Request req;
  req.method = "PUT";
  req.op = "CreateBucket";
  req.bucket = bucket;
  req.body = &body;
  req.content_type = "application/xml";
  Result<Response> resp = impl_->Execute(req);
  if (!resp.ok()) return resp.status();
  if (resp->ok() || resp->error.code == "BucketAlreadyOwnedByYou") return Status::Ok();
  return impl_->MapError(req, *resp);
}

Status S3Client::DeleteBucket(const std::string& bucket) {
  DS_RETURN_IF_ERROR(impl_->CheckNames(bucket, nullptr));
  Request req;
  req.method = "DELETE";
  req.op = "DeleteBucket";
  req.bucket = bucket;
  Result<Response> resp = impl_->Execute(req);
  if (!resp.ok()) return resp.status();
  if (resp->ok()) return Status::Ok();
  return impl_->MapError(req, *resp);
}

Status S3Client::PutObject(const std::string& bucket, const std::string& key,
                           const std::string& body,
                           const std::map<std::string, std::string>& metadata) {
  DS_RETURN_IF_ERROR(impl_->CheckNames(bucket, &key));
  Request req;
  req.method = "PUT";
  req.op = "PutObject";
  req.bucket = bucket;
  req.key = key;
  req.body = &body;
  req.content_type = "application/octet-stream";
  for (const auto& [name, value] : metadata) {
    std::string lower = Lower(name);
    req.headers.emplace_back(StartsWith(lower, "x-amz-meta-") ? lower : "x-amz-meta-" + lower,
                             value);
  }
  Result<Response> resp = impl_->Execute(req);
  if (!resp.ok()) return resp.status();
  if (resp->ok()) return Status::Ok();
  return impl_->MapError(req, *resp);
}

Status S3Client::DeleteObject(const std::string& bucket, const std::string& key,
                              const std::string& version_id) {
  DS_RETURN_IF_ERROR(impl_->CheckNames(bucket, &key));
  Result<DeleteOutcome> o = impl_->DeleteOne(bucket, {key, version_id});
  if (!o.ok()) return o.status();
  if (o->deleted) return Status::Ok();
  std::string where = s3::DescribeTarget({"DELETE", bucket, key, version_id});
  std::string m = "DELETE " + where + ": " + o->error_code;
  if (!o->error_message.empty() && o->error_message.find(o->error_code) == std::string::npos) {
    m += ": " + o->error_message;
  }
  if (o->error_code == "AccessDenied") return Status::Denied(m);
  return Status::Invalid(m);
}

Status S3Client::SetBucketVersioning(const std::string& bucket, bool enabled) {
  DS_RETURN_IF_ERROR(impl_->CheckNames(bucket, nullptr));
  const std::string body = s3::BuildVersioningConfiguration(enabled);
  Request req;
  req.method = "PUT";
  req.op = "PutBucketVersioning";
  req.bucket = bucket;
  req.query = {{"versioning", ""}};
  req.body = &body;
  req.content_type = "application/xml";
  Result<Response> resp = impl_->Execute(req);
  if (!resp.ok()) return resp.status();
  if (resp->ok()) return Status::Ok();
  return impl_->MapError(req, *resp);
}

Result<std::string> S3Client::GetBucketNotification(const std::string& bucket) {
  DS_RETURN_IF_ERROR(impl_->CheckNames(bucket, nullptr));
  Request req;
  req.method = "GET";
  req.op = "GetBucketNotificationConfiguration";
  req.bucket = bucket;
  req.query = {{"notification", ""}};
  Result<Response> resp = impl_->Execute(req);
  if (!resp.ok()) return resp.status();
  if (resp->ok()) return resp->body;
  return impl_->MapError(req, *resp);
}

Status S3Client::PutBucketNotification(const std::string& bucket, const std::string& xml) {
  DS_RETURN_IF_ERROR(impl_->CheckNames(bucket, nullptr));
  Request req;
  req.method = "PUT";
  req.op = "PutBucketNotificationConfiguration";
  req.bucket = bucket;
  req.query = {{"notification", ""}};
  req.body = &xml;
  req.content_type = "application/xml";
  Result<Response> resp = impl_->Execute(req);
  if (!resp.ok()) return resp.status();
  if (resp->ok()) return Status::Ok();
  return impl_->MapError(req, *resp);
}

Result<std::string> S3Client::Impl::SnsAction(const char* op, const std::string& what,
                                              const s3::QueryParams& form) {
  const std::string body = s3::BuildQuery(form);
  Request req;
  req.method = "POST";
  req.op = op;
  req.body = &body;
  req.content_type = "application/x-www-form-urlencoded";
  req.service = "sns";
  Result<Response> resp = Execute(req);
  if (!resp.ok()) return resp.status();
  if (!resp->ok()) {
    return Status::Unavailable(what + ": HTTP " + std::to_string(resp->status) +
                               (resp->error.code.empty() ? "" : " " + resp->error.code) +
                               " (does this store have an SNS-compatible topic API?)");
  }
  return std::move(resp->body);
}

Result<std::string> S3Client::CreateTopic(
    const std::string& name, const std::vector<std::pair<std::string, std::string>>& attributes) {
  DS_RETURN_IF_ERROR(impl_->config_status);
  if (name.empty()) return Status::Invalid("topic name is empty");
  s3::QueryParams form = {{"Action", "CreateTopic"}, {"Name", name}};
  for (size_t i = 0; i < attributes.size(); ++i) {
    const std::string n = std::to_string(i + 1);
    form.emplace_back("Attributes.entry." + n + ".key", attributes[i].first);
    form.emplace_back("Attributes.entry." + n + ".value", attributes[i].second);
  }
  Result<std::string> answer = impl_->SnsAction("CreateTopic", "CreateTopic " + name, form);
  if (!answer.ok()) return answer.status();
  Result<std::string> arn = s3::ParseCreateTopicArn(*answer);
  if (!arn.ok()) return Status::Internal("CreateTopic " + name + ": " + arn.status().message());
  return arn;
}

Result<std::vector<TopicInfo>> S3Client::ListTopics() {
  DS_RETURN_IF_ERROR(impl_->config_status);
  std::vector<TopicInfo> out;
  std::string token;
  for (int page = 0; page < 10000; ++page) {
    s3::QueryParams form = {{"Action", "ListTopics"}};
    if (!token.empty()) form.emplace_back("NextToken", token);
    Result<std::string> answer = impl_->SnsAction("ListTopics", "ListTopics", form);
    if (!answer.ok()) return answer.status();
    Result<std::vector<TopicInfo>> topics = s3::ParseListTopics(*answer, &token);
    if (!topics.ok()) return Status::Internal("ListTopics: " + topics.status().message());
    for (TopicInfo& t : *topics) out.push_back(std::move(t));
    if (token.empty()) return out;
  }
  return Status::Internal("ListTopics: more than 10,000 pages");
}

Result<std::vector<ObjectVersion>> S3Client::ListObjectVersions(const std::string& bucket,
                                                                const std::string& prefix) {
  DS_RETURN_IF_ERROR(impl_->CheckNames(bucket, nullptr));
  std::vector<ObjectVersion> out;
  std::string key_marker, version_marker;
  for (;;) {
    Request req;
    req.method = "GET";
    req.op = "ListObjectVersions";
    req.bucket = bucket;
    req.query = {{"versions", ""}, {"encoding-type", "url"}};
    if (!prefix.empty()) req.query.emplace_back("prefix", prefix);
    if (!key_marker.empty()) req.query.emplace_back("key-marker", key_marker);
    if (!version_marker.empty()) req.query.emplace_back("version-id-marker", version_marker);
    if (int n = impl_->page_size.load(); n > 0)
      req.query.emplace_back("max-keys", std::to_string(n));
    Result<Response> resp = impl_->Execute(req);
    if (!resp.ok()) return resp.status();
    if (!resp->ok()) return impl_->MapError(req, *resp);
    Result<s3::ListVersionsPage> page = s3::ParseListObjectVersions(resp->body);
    if (!page.ok()) return page.status();
    for (ObjectVersion& v : page->versions) out.push_back(std::move(v));
    if (!page->truncated) return out;
    if (page->next_key_marker.empty() ||
        (page->next_key_marker == key_marker && page->next_version_id_marker == version_marker)) {
      return Status::Internal("ListObjectVersions of s3://" + bucket +
                              ": truncated page without new markers");
    }
    key_marker = page->next_key_marker;
    version_marker = page->next_version_id_marker;
  }
}

}  // namespace ds
