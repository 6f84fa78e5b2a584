// ContainerCredentials (providers.h): the ECS task role and EKS Pod Identity endpoint, and the
// rule on which FULL_URI may be used.
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "aws/http_call.h"
#include "aws/providers.h"
#include "aws/variables.h"

namespace ds::aws {
namespace {

constexpr int kContainerAttempts = 3;

// Loopback, the ECS agent (169.254.170.2), EKS Pod Identity (169.254.170.23, fd00:ec2::23).
bool AllowedAddress(const sockaddr* sa) {
  if (sa->sa_family == AF_INET) {
    uint32_t a = ntohl(reinterpret_cast<const sockaddr_in*>(sa)->sin_addr.s_addr);
    return (a >> 24) == 127 || a == 0xA9FEAA02u || a == 0xA9FEAA17u;
  }
  if (sa->sa_family == AF_INET6) {
    const in6_addr& a = reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr;
    if (IN6_IS_ADDR_LOOPBACK(&a)) return true;
    in6_addr eks{};
    inet_pton(AF_INET6, "fd00:ec2::23", &eks);
    return IN6_ARE_ADDR_EQUAL(&a, &eks);
  }
  return false;
}

// scheme and host of a URL ("http", "[::1]" -> "::1").
bool SplitUrl(const std::string& url, std::string* scheme, std::string* host) {
  size_t sep = url.find("://");
  if (sep == std::string::npos) return false;
  *scheme = LowerAscii(url.substr(0, sep));
  std::string rest = url.substr(sep + 3);
  rest = rest.substr(0, rest.find_first_of("/?#"));
  if (rest.find('@') != std::string::npos) return false;
  if (!rest.empty() && rest.front() == '[') {
    size_t close = rest.find(']');
    if (close == std::string::npos) return false;
    *host = rest.substr(1, close - 1);
  } else {
    *host = rest.substr(0, rest.find(':'));
  }
  return !host->empty();
}

}  // namespace

bool ContainerUriAllowed(const std::string& uri, std::string* why) {
  std::string scheme, host;
  if (!SplitUrl(uri, &scheme, &host) || (scheme != "http" && scheme != "https")) {
    *why = "AWS_CONTAINER_CREDENTIALS_FULL_URI '" + uri +
           "' is not an http(s) URL with a host (and no user information)";
    return false;
  }
  if (scheme == "https") return true;
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (getaddrinfo(host.c_str(), nullptr, &hints, &found) != 0 || found == nullptr) {
    *why = "AWS_CONTAINER_CREDENTIALS_FULL_URI: cannot resolve host '" + host + "'";
    return false;
  }
  bool all = true;
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) all = all && AllowedAddress(a->ai_addr);
  freeaddrinfo(found);
  if (!all) {
    *why = "AWS_CONTAINER_CREDENTIALS_FULL_URI '" + uri +
           "': over http the host must be a loopback address, 169.254.170.2 (ECS), "
           "169.254.170.23 or fd00:ec2::23 (EKS Pod Identity); use https for any other host";
  }
  return all;
}

ContainerCredentials::ContainerCredentials(const Variables& vars, std::string relative_base)
    : token_(Get(vars, "AWS_CONTAINER_AUTHORIZATION_TOKEN")),
      token_file_(Get(vars, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")),
      ca_bundle_(Get(vars, "AWS_CA_BUNDLE")) {
  std::string relative = Get(vars, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
  std::string full = Get(vars, "AWS_CONTAINER_CREDENTIALS_FULL_URI");
  if (!relative.empty()) {
    if (relative.front() != '/') relative = "/" + relative;
    url_ = relative_base + relative;
  } else if (!full.empty()) {
    url_ = full;
    std::string why;
    if (!ContainerUriAllowed(full, &why)) config_error_ = why;
  }
}

Result<Credentials> ContainerCredentials::Fetch() {
  if (url_.empty()) {
    return Status::NotFound(
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and AWS_CONTAINER_CREDENTIALS_FULL_URI are not "
        "set");
  }
  if (!config_error_.empty()) return Status::Invalid(config_error_);
  HttpCall call;
  call.url = url_;
  call.headers = {"Accept: application/json"};
  std::string token = token_;
  if (!token_file_.empty()) {
    Result<std::string> t = ReadSmallFile(token_file_, "container authorization token file");
    if (!t.ok()) {
      if (t.status().code() == Code::kNotFound) {
        return Status::Invalid("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: " + t.status().message());
      }
      return t.status();
    }
    token = TrimSpace(*t);
  }
  if (token.find_first_of("\r\n") != std::string::npos) {
    return Status::Invalid("the container authorization token contains a line break");
  }
  if (!token.empty()) call.headers.push_back("Authorization: " + token);
  call.connect_timeout = std::chrono::seconds(2);
  call.timeout = std::chrono::seconds(5);
  call.ca_bundle = ca_bundle_;
  call.what = "container credentials endpoint " + url_;

  Status last;
  for (int attempt = 1; attempt <= kContainerAttempts; ++attempt) {
    if (attempt > 1) std::this_thread::sleep_for(std::chrono::milliseconds(100 << (attempt - 1)));
    Result<HttpAnswer> answer = Perform(call);
    if (!answer.ok()) {
      last = answer.status();
      if (last.code() != Code::kUnavailable) return last;
      continue;
    }
    nlohmann::json doc = nlohmann::json::parse(answer->body, nullptr, false);
    auto text = [&](const char* key) -> std::string {
      if (!doc.is_object()) return "";
      auto it = doc.find(key);
      return it != doc.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    if (answer->status < 200 || answer->status >= 300) {
      std::string what = call.what + " answered HTTP " + std::to_string(answer->status);
      std::string code = text("code"), message = text("message");
      if (!code.empty()) what += " " + code;
      if (!message.empty()) what += ": " + message;
      if (answer->status >= 500) {
        last = Status::Unavailable(what);
        continue;
      }
      return Status::Denied(what);
    }
    Credentials c;
    c.access_key_id = text("AccessKeyId");
    c.secret_access_key = text("SecretAccessKey");
    c.session_token = text("Token");
    if (c.access_key_id.empty() || c.secret_access_key.empty()) {
      return Status::Invalid(call.what + ": the answer lacks AccessKeyId or SecretAccessKey");
    }
    if (std::string expiration = text("Expiration"); !expiration.empty()) {
      Result<std::chrono::system_clock::time_point> when =
          ParseIso8601(expiration, call.what + " Expiration");
      if (!when.ok()) return when.status();
      c.expiration = *when;
    }
    return c;
  }
  return Status::Unavailable(last.message() + " (after " + std::to_string(kContainerAttempts) +
                             " attempts)");
}

}  // namespace ds::aws
