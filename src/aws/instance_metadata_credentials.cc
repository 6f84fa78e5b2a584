// InstanceMetadataCredentials (providers.h): the EC2 instance role's credentials over IMDSv2.
#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

#include "aws/http_call.h"
#include "aws/providers.h"
#include "aws/variables.h"

namespace ds::aws {
namespace {

constexpr char kCredentialsPath[] = "/latest/meta-data/iam/security-credentials/";
constexpr std::chrono::seconds kImdsTimeout{1};

}  // namespace

InstanceMetadataCredentials::InstanceMetadataCredentials(const Variables& vars) {
  disabled_ = LowerAscii(Get(vars, "AWS_EC2_METADATA_DISABLED")) == "true";
  endpoint_ = Get(vars, "AWS_EC2_METADATA_SERVICE_ENDPOINT");
  if (endpoint_.empty()) {
    endpoint_ = LowerAscii(Get(vars, "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE")) == "ipv6"
                    ? "http://[fd00:ec2::254]"
                    : "http://169.254.169.254";
  }
  while (!endpoint_.empty() && endpoint_.back() == '/') endpoint_.pop_back();
}

Result<Credentials> InstanceMetadataCredentials::Fetch() {
  if (disabled_) return Status::NotFound("AWS_EC2_METADATA_DISABLED=true");
  HttpCall call;
  call.connect_timeout = kImdsTimeout;
  call.timeout = kImdsTimeout;

  call.method = "PUT";
  call.url = endpoint_ + "/latest/api/token";
  call.headers = {"X-aws-ec2-metadata-token-ttl-seconds: 21600"};
  call.what = "IMDSv2 token request to " + endpoint_;
  Result<HttpAnswer> token = Perform(call);
  if (!token.ok()) {
    if (token.status().code() != Code::kUnavailable) return token.status();
    return Status::NotFound("no instance metadata service answered at " + endpoint_ + " (" +
                            token.status().message() +
                            "): not on EC2, or in a container on EC2 whose IMDS hop limit is 1; "
                            "AWS_EC2_METADATA_DISABLED=true skips this source");
  }
  if (token->status == 403) {
    return Status::NotFound(
        "the instance metadata service at " + endpoint_ +
        " refused a token (HTTP 403: IMDS is disabled on this instance, or what answered is "
        "not an instance metadata service)");
  }
  if (token->status != 200 || TrimSpace(token->body).empty()) {
    return Status::NotFound("the instance metadata service at " + endpoint_ +
                            " gave no IMDSv2 token (HTTP " + std::to_string(token->status) + ")");
  }
  const std::string imds_token = TrimSpace(token->body);
  if (imds_token.find_first_of("\r\n") != std::string::npos) {
    return Status::Invalid("the IMDSv2 token from " + endpoint_ + " contains a line break");
  }

  call.method = "GET";
  call.body.clear();
  call.headers = {"X-aws-ec2-metadata-token: " + imds_token};
  call.url = endpoint_ + kCredentialsPath;
  call.what = "IMDS " + call.url;
  Result<HttpAnswer> roles = Perform(call);
  if (!roles.ok()) return roles.status();
  if (roles->status == 404) {
    return Status::NotFound(
        "the instance has no IAM role (instance profile): IMDS answered 404 "
        "for " +
        std::string(kCredentialsPath));
  }
  if (roles->status != 200) {
    return Status::Unavailable(call.what + " answered HTTP " + std::to_string(roles->status));
  }
  std::string role = TrimSpace(roles->body);
  role = role.substr(0, role.find('\n'));
  role = TrimSpace(role);
  if (role.empty() || role.find_first_of("/?#% ") != std::string::npos) {
    return Status::Invalid(call.what + ": no usable role name in the answer");
  }

  call.url = endpoint_ + kCredentialsPath + role;
  call.what = "IMDS credentials of role " + role;
  Result<HttpAnswer> creds = Perform(call);
  if (!creds.ok()) return creds.status();
  if (creds->status != 200) {
    return Status::Unavailable(call.what + ": HTTP " + std::to_string(creds->status));
  }
  nlohmann::json doc = nlohmann::json::parse(creds->body, nullptr, false);
  if (!doc.is_object()) return Status::Invalid(call.what + ": the answer is not a JSON object");
  auto text = [&](const char* key) -> std::string {
    auto it = doc.find(key);
    return it != doc.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  if (std::string code = text("Code"); !code.empty() && code != "Success") {
    return Status::Unavailable(call.what + ": Code " + code);
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

}  // namespace ds::aws
