// Loopback servers that speak the documented protocols of the AWS credential sources, for the
// credential providers' tests (unit) and for handing the RGW lab's keys to the service through
// the chain (integration). Header-only, on cpp-httplib.
//
//  - ImdsServer: EC2 IMDSv2. PUT /latest/api/token needs X-aws-ec2-metadata-token-ttl-seconds
//    (else 400) and answers a token; every GET needs X-aws-ec2-metadata-token equal to it (else
//    401, as IMDS does); GET /latest/meta-data/iam/security-credentials/ lists the role,
//    .../<role> answers the credentials JSON (Code, LastUpdated, Type, AccessKeyId,
//    SecretAccessKey, Token, Expiration).
//  - ContainerCredentialsServer: ECS / EKS Pod Identity. GET of `path` with the Authorization
//    header equal to the expected token (else 401 with {"code","message"}) answers
//    {"AccessKeyId","SecretAccessKey","Token","Expiration"}.
//  - StsServer: POST / with the form of AssumeRoleWithWebIdentity (Action, Version 2011-06-15,
//    RoleArn, RoleSessionName, WebIdentityToken) answers AssumeRoleWithWebIdentityResponse XML,
//    or an ErrorResponse (a bad token, or a status set by the test).
//
// StsForm parses a recorded request's form for the tests' checks.
// Each hands out `Issue()`d credentials: a key id with a counter ("ASIATEST0001", ...), a
// secret and a token, expiring `lifetime` after issue; `delay` holds each answer that long.
#pragma once

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace ds::testing_aws {

inline std::string Iso8601(std::chrono::system_clock::time_point t) {
  std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// The form fields of a POST body (application/x-www-form-urlencoded), decoded.
inline httplib::Params StsForm(const httplib::Request& req) {
  httplib::Params form;
  httplib::detail::parse_query_text(req.body, form);
  return form;
}
// One field of StsForm(req), "" when absent.
inline std::string StsField(const httplib::Request& req, const std::string& name) {
  httplib::Params form = StsForm(req);
  auto it = form.find(name);
  return it == form.end() ? std::string() : it->second;
}

struct IssuedCredentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string token;
  std::string expiration;  // ISO 8601, "" for none
};

// What every server shares: the loopback listener, the request log, the credentials it issues.
class CredentialServerBase {
 public:
  virtual ~CredentialServerBase() { Stop(); }
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // Fixed credentials to hand out instead of generated ones (e.g. the RGW lab's keys).
  void SetFixed(IssuedCredentials c) {
    std::lock_guard<std::mutex> lock(mu_);
    fixed_ = std::move(c);
    has_fixed_ = true;
  }
  void set_lifetime(std::chrono::milliseconds d) { lifetime_ms_ = d.count(); }
  void set_delay(std::chrono::milliseconds d) { delay_ms_ = d.count(); }
  int issued() const { return issued_.load(); }
  std::vector<httplib::Request> requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

 protected:
  void Start() {
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  void Stop() {
    if (thread_.joinable()) {
      server_.stop();
      thread_.join();
    }
  }
  void Record(const httplib::Request& req) {
    std::lock_guard<std::mutex> lock(mu_);
    requests_.push_back(req);
  }
  void Delay() {
    long long ms = delay_ms_.load();
    if (ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  }
  IssuedCredentials Issue() {
    int n = ++issued_;
    std::lock_guard<std::mutex> lock(mu_);
    if (has_fixed_) return fixed_;
    char id[32];
    std::snprintf(id, sizeof(id), "ASIATEST%04d", n);
    IssuedCredentials c;
    c.access_key_id = id;
    c.secret_access_key = "secret-" + std::to_string(n) + "-never-logged";
    c.token = "token-" + std::to_string(n) + "-never-logged";
    c.expiration =
        Iso8601(std::chrono::system_clock::now() + std::chrono::milliseconds(lifetime_ms_.load()));
    return c;
  }

  httplib::Server server_;

 private:
  std::thread thread_;
  int port_ = 0;
  std::mutex mu_;
  std::vector<httplib::Request> requests_;
  IssuedCredentials fixed_;
  bool has_fixed_ = false;
  std::atomic<long long> lifetime_ms_{3600 * 1000};
  std::atomic<long long> delay_ms_{0};
  std::atomic<int> issued_{0};
};

class ImdsServer : public CredentialServerBase {
 public:
  static constexpr const char* kToken = "imds-session-token-AQAEAL";
  explicit ImdsServer(std::string role = "delete-sync-node") : role_(std::move(role)) {
    server_.Put("/latest/api/token", [this](const httplib::Request& req, httplib::Response& res) {
      Record(req);
      if (!req.has_header("X-aws-ec2-metadata-token-ttl-seconds")) {
        res.status = 400;
        return;
      }
      res.set_content(kToken, "text/plain");
    });
    server_.Get(".*", [this](const httplib::Request& req, httplib::Response& res) {
      Record(req);
      if (req.get_header_value("X-aws-ec2-metadata-token") != kToken) {
        res.status = 401;  // IMDSv2 enforced: no IMDSv1
        return;
      }
      const std::string base = "/latest/meta-data/iam/security-credentials/";
      if (req.path == base) {
        if (role_.empty()) {
          res.status = 404;
          return;
        }
        res.set_content(role_, "text/plain");
        return;
      }
      if (!role_.empty() && req.path == base + role_) {
        Delay();
        IssuedCredentials c = Issue();
        std::string json = R"({"Code":"Success","LastUpdated":")" +
                           Iso8601(std::chrono::system_clock::now()) +
                           R"(","Type":"AWS-HMAC","AccessKeyId":")" + c.access_key_id +
                           R"(","SecretAccessKey":")" + c.secret_access_key + R"(")";
        if (!c.token.empty()) json += R"(,"Token":")" + c.token + R"(")";
        if (!c.expiration.empty()) json += R"(,"Expiration":")" + c.expiration + R"(")";
        res.set_content(json + "}", "text/plain");
        return;
      }
      res.status = 404;
    });
    Start();
  }
  ~ImdsServer() override { Stop(); }

 private:
  std::string role_;
};

class ContainerCredentialsServer : public CredentialServerBase {
 public:
  ContainerCredentialsServer(std::string path, std::string authorization)
      : path_(std::move(path)), authorization_(std::move(authorization)) {
    server_.Get(".*", [this](const httplib::Request& req, httplib::Response& res) {
      Record(req);
      if (req.path != path_) {
        res.status = 404;
        return;
      }
      if (!authorization_.empty() && req.get_header_value("Authorization") != authorization_) {
        res.status = 401;
        res.set_content(R"({"code":"AccessDenied","message":"Authorization token is invalid"})",
                        "application/json");
        return;
      }
      Delay();
      IssuedCredentials c = Issue();
      std::string json = R"({"AccessKeyId":")" + c.access_key_id + R"(","SecretAccessKey":")" +
                         c.secret_access_key + R"(","Token":")" + c.token + R"(")";
      if (!c.expiration.empty()) json += R"(,"Expiration":")" + c.expiration + R"(")";
      res.set_content(json + R"(,"RoleArn":"arn:aws:iam::123456789012:role/ds"})",
                      "application/json");
    });
    Start();
  }
  ~ContainerCredentialsServer() override { Stop(); }

 private:
  std::string path_;
  std::string authorization_;
};

class StsServer : public CredentialServerBase {
 public:
  explicit StsServer(std::string expected_token) : expected_token_(std::move(expected_token)) {
    server_.Post("/", [this](const httplib::Request& req, httplib::Response& res) {
      Record(req);
      int forced = forced_status_.load();
      if (forced != 0) {
        res.status = forced;
        res.set_content(
            ErrorXml(forced >= 500 ? "ServiceUnavailable" : "AccessDenied", "forced by the test"),
            "text/xml");
        return;
      }
      // The form in the body (the query API's POST form).
      httplib::Params form;
      httplib::detail::parse_query_text(req.body, form);
      auto param = [&](const char* name) {
        auto it = form.find(name);
        return it == form.end() ? std::string() : it->second;
      };
      if (param("Action") != "AssumeRoleWithWebIdentity" || param("Version") != "2011-06-15" ||
          param("RoleArn").empty() || param("RoleSessionName").empty()) {
        res.status = 400;
        res.set_content(ErrorXml("MissingParameter", "a required parameter is missing"),
                        "text/xml");
        return;
      }
      if (param("WebIdentityToken") != expected_token_) {
        res.status = 400;
        res.set_content(ErrorXml("InvalidIdentityToken",
                                 "Couldn't retrieve verification key "
                                 "from your identity provider"),
                        "text/xml");
        return;
      }
      Delay();
      IssuedCredentials c = Issue();
      res.set_content(
          R"(<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">)"
          R"(<AssumeRoleWithWebIdentityResult>)"
          R"(<SubjectFromWebIdentityToken>system:serviceaccount:ds:ds</SubjectFromWebIdentityToken>)"
          R"(<Audience>sts.amazonaws.com</Audience>)"
          R"(<AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/ds/s</Arn>)"
          R"(<AssumedRoleId>AROATEST:s</AssumedRoleId></AssumedRoleUser>)"
          R"(<Credentials><SessionToken>)" +
              c.token + "</SessionToken><SecretAccessKey>" + c.secret_access_key +
              "</SecretAccessKey><Expiration>" + c.expiration + "</Expiration><AccessKeyId>" +
              c.access_key_id +
              "</AccessKeyId></Credentials>"
              R"(<Provider>arn:aws:iam::123456789012:oidc-provider/oidc.eks.example</Provider>)"
              R"(</AssumeRoleWithWebIdentityResult>)"
              R"(<ResponseMetadata><RequestId>ad4156e9-bce1-11e2-82e6-6b6efEXAMPLE</RequestId>)"
              R"(</ResponseMetadata></AssumeRoleWithWebIdentityResponse>)",
          "text/xml");
    });
    Start();
  }
  ~StsServer() override { Stop(); }
  // Every answer has this HTTP status and an ErrorResponse (0: normal answers).
  void ForceStatus(int status) { forced_status_ = status; }

  static std::string ErrorXml(const std::string& code, const std::string& message) {
    return R"(<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">)"
           R"(<Error><Type>Sender</Type><Code>)" +
           code + "</Code><Message>" + message +
           "</Message></Error><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>"
           "</ErrorResponse>";
  }

 private:
  std::string expected_token_;
  std::atomic<int> forced_status_{0};
};

}  // namespace ds::testing_aws
