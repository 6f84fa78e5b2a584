// One request of S3Client over libcurl (Impl::Execute, see client_internal.h): the headers
// SigV4 signs, curl's options and callbacks, attempts with full-jitter back-off, timeouts and
// the debug log of each attempt.
#include <curl/curl.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "crypto/digest.h"
#include "s3/client.h"
#include "s3/client_internal.h"
#include "s3/xml.h"

namespace ds {
namespace {

// SHA-256 of the empty string: the payload hash of requests without a body.
constexpr char kEmptySha256[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
// Error bodies are small; keep at most this much of a non-2xx body.
constexpr size_t kMaxErrorBody = 64 * 1024;
// A 2xx body that is not streamed (listings) larger than this is refused.
constexpr size_t kMaxBufferedBody = 256 * 1024 * 1024;

using crypto::Md5Base64;
using crypto::Sha256Hex;

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

// "5s", "1500 ms".
std::string FormatMs(std::chrono::milliseconds d) {
  long long ms = d.count();
  return ms % 1000 == 0 ? std::to_string(ms / 1000) + "s" : std::to_string(ms) + " ms";
}

// State of one transfer, shared with curl's callbacks.
struct Transfer {
  s3_internal::Response* resp = nullptr;
  const BodySink* sink = nullptr;
  Status sink_status;
  bool overflow = false;
};

size_t OnHeader(char* buf, size_t size, size_t n, void* userdata) {
  auto* t = static_cast<Transfer*>(userdata);
  size_t len = size * n;
  std::string_view line(buf, len);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  if (s3_internal::StartsWith(line, "HTTP/")) {
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
  std::string name = s3_internal::Lower(s3_internal::Trim(line.substr(0, colon)));
  std::string value = s3_internal::Trim(line.substr(colon + 1));
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

Result<aws::Credentials> S3Client::Impl::RequestCredentials() const {
  if (config.credentials != nullptr) return config.credentials->Get();
  aws::Credentials c;
  c.access_key_id = config.access_key_id;
  c.secret_access_key = config.secret_access_key;
  c.session_token = config.session_token;
  return c;
}

Status S3Client::Impl::PerformOnce(CURL* h, const s3_internal::Request& req, const std::string& url,
                                   curl_slist* headers, const aws::Credentials& creds,
                                   s3_internal::Response* resp, CURLcode* rc,
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
  curl_easy_setopt(h, CURLOPT_USERNAME, creds.access_key_id.c_str());
  curl_easy_setopt(h, CURLOPT_PASSWORD, creds.secret_access_key.c_str());
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

Result<s3_internal::Response> S3Client::Impl::Execute(const s3_internal::Request& req) {
  DS_RETURN_IF_ERROR(config_status);
  const std::string url = BuildRequestUrl(config, req.bucket, req.key, s3::BuildQuery(req.query));
  const std::string target = s3::DescribeTarget(req.Target());
  Result<aws::Credentials> creds = RequestCredentials();
  if (!creds.ok()) {
    return Status(creds.status().code(),
                  std::string(req.method) + " " + target + ": " + creds.status().message());
  }

  // Headers curl signs (all of CURLOPT_HTTPHEADER, plus host and x-amz-date).
  std::vector<std::pair<std::string, std::string>> hdrs = req.headers;
  const bool has_body = req.body != nullptr;
  hdrs.emplace_back("x-amz-content-sha256", has_body ? Sha256Hex(*req.body) : kEmptySha256);
  if (has_body) {
    hdrs.emplace_back("Content-Type",
                      req.content_type.empty() ? "application/octet-stream" : req.content_type);
    hdrs.emplace_back("Content-MD5", Md5Base64(*req.body));
  }
  if (!creds->session_token.empty()) {
    hdrs.emplace_back("x-amz-security-token", creds->session_token);
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
    lines.push_back(s3_internal::Lower(name) + ":" + s3_internal::Trim(value));
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
    s3_internal::Response resp;
    resp.attempts = attempt;
    CURLcode rc = CURLE_OK;
    std::string curl_error;
    CURL* h = AcquireHandle();
    if (h == nullptr) return Status::Internal("curl_easy_init failed");
    auto started = std::chrono::steady_clock::now();
    Status local = PerformOnce(h, req, url, slist, *creds, &resp, &rc, &curl_error);
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

std::string S3Client::Impl::Operation(const s3_internal::Request& req) {
  return *req.op != '\0' ? std::string(req.op) : std::string(req.method);
}

std::string S3Client::Impl::TimeoutLimits(const s3_internal::Request& req) const {
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

}  // namespace ds
