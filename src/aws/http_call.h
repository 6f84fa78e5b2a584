// One small HTTP request over libcurl for the credential providers (STS, the container
// credentials endpoint, IMDS): no signing, no redirects, bounded answers. Private to src/aws/.
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace ds::aws {

struct HttpCall {
  std::string method = "GET";  // GET, PUT or POST
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::string body;                  // PUT/POST
  std::chrono::milliseconds connect_timeout{1000};
  std::chrono::milliseconds timeout{1000};  // the whole request
  std::string ca_bundle;                    // "" = the system's
  // true: never through a proxy (link-local metadata endpoints); false: the proxy variables
  // (https_proxy, no_proxy, ...) apply as curl reads them (STS).
  bool no_proxy = true;
  // What the request is, for messages ("STS AssumeRoleWithWebIdentity at https://..."); never
  // holds a secret (the body and the headers are never part of a message).
  std::string what;
};

struct HttpAnswer {
  long status = 0;
  std::string body;  // at most 1 MiB
};

// Performs `call` once. OK with any HTTP status; kUnavailable "<what>: <curl error>" when no
// answer came (connection refused, timeout, TLS failure), kInvalidArgument for a malformed URL.
Result<HttpAnswer> Perform(const HttpCall& call);

// "application/x-www-form-urlencoded" encoding of one value (curl_easy_escape).
std::string FormEncode(const std::string& value);

}  // namespace ds::aws
