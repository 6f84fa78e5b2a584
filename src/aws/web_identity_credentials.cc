// WebIdentityCredentials (providers.h): STS AssumeRoleWithWebIdentity with the token file of
// EKS IAM roles for service accounts, and the parsing of its XML answer.
#include <chrono>
#include <pugixml.hpp>
#include <string>
#include <thread>

#include "aws/http_call.h"
#include "aws/providers.h"
#include "aws/variables.h"

namespace ds::aws {
namespace {

constexpr int kStsAttempts = 3;

// The text of the first element named `name` under `node`, at any depth.
std::string ChildText(const pugi::xml_node& node, const char* name) {
  pugi::xml_node n = node.find_node([&](const pugi::xml_node& x) {
    return x.type() == pugi::node_element && std::string(x.name()) == name;
  });
  return n ? TrimSpace(n.text().get()) : std::string();
}

}  // namespace

Result<Credentials> ParseAssumeRoleWithWebIdentity(long status, const std::string& xml) {
  pugi::xml_document doc;
  const bool parsed = doc.load_buffer(xml.data(), xml.size()) && doc.document_element();
  if (status < 200 || status >= 300) {
    std::string code = parsed ? ChildText(doc, "Code") : "";
    std::string message = parsed ? ChildText(doc, "Message") : "";
    std::string what = "STS AssumeRoleWithWebIdentity answered HTTP " + std::to_string(status);
    if (!code.empty()) what += " " + code;
    if (!message.empty()) what += ": " + message;
    const bool transient =
        status >= 500 || status == 429 || code == "Throttling" || code == "IDPCommunicationError";
    if (transient) return Status::Unavailable(what);
    return Status::Denied(what);
  }
  if (!parsed) {
    return Status::Invalid("STS AssumeRoleWithWebIdentity: the answer is not XML");
  }
  pugi::xml_node creds = doc.find_node([](const pugi::xml_node& x) {
    return x.type() == pugi::node_element && std::string(x.name()) == "Credentials";
  });
  if (!creds) {
    return Status::Invalid("STS AssumeRoleWithWebIdentity: the answer has no Credentials");
  }
  Credentials c;
  c.access_key_id = ChildText(creds, "AccessKeyId");
  c.secret_access_key = ChildText(creds, "SecretAccessKey");
  c.session_token = ChildText(creds, "SessionToken");
  std::string expiration = ChildText(creds, "Expiration");
  if (c.access_key_id.empty() || c.secret_access_key.empty() || c.session_token.empty() ||
      expiration.empty()) {
    return Status::Invalid(
        "STS AssumeRoleWithWebIdentity: the answer lacks AccessKeyId, SecretAccessKey, "
        "SessionToken or Expiration");
  }
  Result<std::chrono::system_clock::time_point> when =
      ParseIso8601(expiration, "STS AssumeRoleWithWebIdentity Expiration");
  if (!when.ok()) return when.status();
  c.expiration = *when;
  return c;
}

WebIdentityCredentials::WebIdentityCredentials(const Variables& vars)
    : token_file_(Get(vars, "AWS_WEB_IDENTITY_TOKEN_FILE")),
      role_arn_(Get(vars, "AWS_ROLE_ARN")),
      session_name_(Get(vars, "AWS_ROLE_SESSION_NAME")),
      endpoint_(Get(vars, "AWS_ENDPOINT_URL_STS")),
      ca_bundle_(Get(vars, "AWS_CA_BUNDLE")) {
  if (endpoint_.empty()) {
    std::string region = Get(vars, "AWS_REGION");
    if (region.empty()) region = Get(vars, "AWS_DEFAULT_REGION");
    endpoint_ = StsEndpointFor(region);
  }
  while (!endpoint_.empty() && endpoint_.back() == '/') endpoint_.pop_back();
}

Result<Credentials> WebIdentityCredentials::Fetch() {
  if (token_file_.empty() && role_arn_.empty()) {
    return Status::NotFound("AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN are not set");
  }
  if (token_file_.empty()) {
    return Status::Invalid("AWS_ROLE_ARN is set but AWS_WEB_IDENTITY_TOKEN_FILE is not");
  }
  if (role_arn_.empty()) {
    return Status::Invalid("AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not");
  }
  Result<std::string> token = ReadSmallFile(token_file_, "web identity token file");
  if (!token.ok()) {
    // A missing token file is a broken setting here, not an absent source.
    if (token.status().code() == Code::kNotFound) {
      return Status::Invalid("AWS_WEB_IDENTITY_TOKEN_FILE: " + token.status().message());
    }
    return token.status();
  }
  std::string jwt = TrimSpace(*token);
  if (jwt.empty()) return Status::Invalid("web identity token file " + token_file_ + " is empty");

  std::string session = session_name_;
  if (session.empty()) {
    session =
        "delete-sync-" + std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                            std::chrono::system_clock::now().time_since_epoch())
                                            .count());
  }
  HttpCall call;
  call.method = "POST";
  call.url = endpoint_ + "/";
  call.headers = {"Content-Type: application/x-www-form-urlencoded; charset=utf-8",
                  "Accept: text/xml"};
  call.body =
      "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=" + FormEncode(role_arn_) +
      "&RoleSessionName=" + FormEncode(session) + "&WebIdentityToken=" + FormEncode(jwt);
  call.connect_timeout = std::chrono::seconds(5);
  call.timeout = std::chrono::seconds(10);
  call.ca_bundle = ca_bundle_;
  call.no_proxy = false;  // STS is an internet endpoint: a proxy may be the way out
  call.what = "STS AssumeRoleWithWebIdentity at " + endpoint_ + " for " + role_arn_;

  Status last;
  for (int attempt = 1; attempt <= kStsAttempts; ++attempt) {
    if (attempt > 1) std::this_thread::sleep_for(std::chrono::milliseconds(200 << (attempt - 1)));
    Result<HttpAnswer> answer = Perform(call);
    if (!answer.ok()) {
      last = answer.status();
      if (last.code() != Code::kUnavailable) return last;
      continue;
    }
    Result<Credentials> c = ParseAssumeRoleWithWebIdentity(answer->status, answer->body);
    if (c.ok() || c.status().code() != Code::kUnavailable) {
      if (!c.ok())
        return Status(c.status().code(), c.status().message() + " (role " + role_arn_ + ")");
      return c;
    }
    last = c.status();
  }
  return Status::Unavailable(last.message() + " (after " + std::to_string(kStsAttempts) +
                             " attempts)");
}

}  // namespace ds::aws
