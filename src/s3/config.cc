// S3Config (from the environment, validation, addressing style, Describe) and the request URL
// (BuildRequestUrl); the endpoint parsing of client_internal.h.
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "aws/credentials.h"
#include "s3/client.h"
#include "s3/client_internal.h"
#include "s3/xml.h"

namespace ds {
namespace s3_internal {

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

std::string MaskKeyId(const std::string& id) {
  if (id.size() <= 4) return "…";
  return id.substr(0, 4) + "…";
}

}  // namespace s3_internal

namespace {

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

Result<int> ParsePositiveInt(const std::string& name, const std::string& value) {
  int v = 0;
  auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (ec != std::errc() || ptr != value.data() + value.size() || v < 1) {
    return Status::Invalid(name + "='" + value + "' is not a positive integer");
  }
  return v;
}

// The credentials of FromVariables (see client.h): the environment's keys in the static fields
// (with the messages they always had), else the rest of the chain in `credentials`. The region
// and endpoint checks come first, so that a bad setting costs no network call.
Status ResolveCredentialsInto(const std::map<std::string, std::string>& vars, S3Config* c) {
  auto get = [&](const char* name) -> std::string {
    auto it = vars.find(name);
    return it == vars.end() ? std::string() : s3_internal::Trim(it->second);
  };
  c->access_key_id = get("AWS_ACCESS_KEY_ID");
  c->secret_access_key = get("AWS_SECRET_ACCESS_KEY");
  if (!c->access_key_id.empty() || !c->secret_access_key.empty()) {
    if (c->access_key_id.empty()) {
      return Status::Invalid(
          "AWS_ACCESS_KEY_ID is not set: S3 credentials are read from AWS_ACCESS_KEY_ID and "
          "AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary credentials)");
    }
    if (c->secret_access_key.empty()) {
      return Status::Invalid("AWS_SECRET_ACCESS_KEY is not set (AWS_ACCESS_KEY_ID is)");
    }
    c->session_token = get("AWS_SESSION_TOKEN");
    return Status::Ok();
  }
  Result<std::shared_ptr<aws::RefreshingCredentials>> chain =
      aws::ResolveCredentials(aws::DefaultCredentialsChain(vars));
  if (!chain.ok()) {
    if (chain.status().code() == Code::kNotFound) {
      return Status::Invalid(chain.status().message() +
                             " (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or see "
                             "docs/CONFIGURATION.md for the other sources)");
    }
    return chain.status();
  }
  c->credentials = std::move(chain).value();
  return Status::Ok();
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
  for (size_t i = 0; i < aws::kCredentialVariableCount; ++i) {
    const char* name = aws::kCredentialVariables[i];
    if (const char* v = std::getenv(name)) vars[name] = v;
  }
  return FromVariables(vars);
}

Result<S3Config> S3Config::FromVariables(const std::map<std::string, std::string>& vars) {
  auto get = [&](const char* name) -> std::string {
    auto it = vars.find(name);
    return it == vars.end() ? std::string() : s3_internal::Trim(it->second);
  };
  S3Config c;
  c.region = get("AWS_REGION");
  if (c.region.empty()) c.region = get("AWS_DEFAULT_REGION");
  if (c.region.empty()) c.region = "us-east-1";
  c.endpoint = get("AWS_ENDPOINT_URL_S3");
  if (c.endpoint.empty()) c.endpoint = get("AWS_ENDPOINT_URL");
  if (c.endpoint.empty()) c.endpoint = "https://s3." + c.region + ".amazonaws.com";
  while (!c.endpoint.empty() && c.endpoint.back() == '/') c.endpoint.pop_back();

  std::string style = s3_internal::Lower(get("AWS_S3_ADDRESSING_STYLE"));
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
  DS_RETURN_IF_ERROR(ResolveCredentialsInto(vars, &c));
  DS_RETURN_IF_ERROR(c.Validate());
  return c;
}

Status S3Config::Validate() const {
  Result<s3_internal::Endpoint> e = s3_internal::ParseEndpoint(endpoint);
  if (!e.ok()) return e.status();
  if (region.empty()) return Status::Invalid("S3 region is empty");
  for (char ch : region) {
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '-' && ch != '_') {
      return Status::Invalid("S3 region '" + region + "' has a character other than [A-Za-z0-9_-]");
    }
  }
  if (credentials != nullptr) {
    if (!access_key_id.empty() || !secret_access_key.empty() || !session_token.empty()) {
      return Status::Invalid("S3 configuration has both static keys and a credentials source");
    }
    if (max_attempts < 1) return Status::Invalid("S3 max_attempts must be at least 1");
    return Status::Ok();
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
  Result<s3_internal::Endpoint> e = s3_internal::ParseEndpoint(endpoint);
  if (!e.ok() || !s3_internal::IsAwsHost(e->host)) return true;
  if (!IsDnsCompatibleBucket(bucket)) return true;
  // A dotted bucket breaks the *.s3 wildcard certificate.
  return e->scheme == "https" && bucket.find('.') != std::string::npos;
}

std::string S3Config::Describe() const {
  std::string addr = AddressingName(addressing);
  if (addressing == Addressing::kAuto) {
    Result<s3_internal::Endpoint> e = s3_internal::ParseEndpoint(endpoint);
    addr += (e.ok() && s3_internal::IsAwsHost(e->host)) ? " (virtual-hosted)" : " (path-style)";
  }
  std::string s =
      "endpoint=" + SafeEndpoint(endpoint) + " region=" + region + " addressing=" + addr;
  if (credentials != nullptr) return s + " credentials " + credentials->Describe();
  s += " access_key_id=" + s3_internal::MaskKeyId(access_key_id);
  if (!session_token.empty()) s += " session_token=set";
  return s;
}

std::string BuildRequestUrl(const S3Config& config, const std::string& bucket,
                            const std::string& key, const std::string& query) {
  Result<s3_internal::Endpoint> parsed = s3_internal::ParseEndpoint(config.endpoint);
  s3_internal::Endpoint e =
      parsed.ok() ? *parsed : s3_internal::Endpoint{"https", config.endpoint, config.endpoint};
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

}  // namespace ds
