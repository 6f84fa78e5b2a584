// SNS HTTPS subscriptions on the webhook (issue 20): signatures (SignatureVersion 1 and 2)
// checked with a certificate fetched over HTTPS from an allowed host and verified against a
// trust anchor, subscription confirmations visited only for allowed topics and hosts, and every
// refusal answered 403 with its reason, counted, and changing nothing. A test CA (OpenSSL) issues
// the signing certificate and the TLS certificate of a local HTTPS server that plays SNS's hosts;
// the test-only environment (DS_TEST_SNS_HOST, DS_TEST_SNS_CA_FILE) points the service at them.
#include <gtest/gtest.h>
#include <httplib.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "core/ops_metrics.h"
#include "core/sns.h"
#include "crypto/sns_signature.h"
#include "fakes/engine_on_fakes.h"
#include "fakes/sns_pki.h"
#include "sns_service.h"
#include "transport/http_webhook.h"

namespace ds {
namespace {

using nlohmann::json;

constexpr char kTopic[] = "arn:aws:sns:us-east-1:123456789012:bucket-events";
constexpr char kOtherTopic[] = "arn:aws:sns:us-east-1:123456789012:someone-else";
constexpr char kWebhookToken[] = "sns-test-webhook-token";

// The string SNS signs, written out here from AWS's documentation (not with the code under
// test): "Name\nvalue\n" per signed field, in this order.
std::string AwsStringToSign(const json& m) {
  std::vector<const char*> names;
  if (m["Type"] == "Notification") {
    names = {"Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"};
  } else {
    names = {"Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"};
  }
  std::string out;
  for (const char* n : names) {
    if (!m.contains(n)) continue;
    out += std::string(n) + "\n" + m[n].get<std::string>() + "\n";
  }
  return out;
}

// An S3 removal of `key` in bucket "b", as SNS's Message.
std::string RemovalMessage(const std::string& key) {
  return testdocs::Document({testdocs::Rgw("ObjectRemoved:Delete", "b", key)});
}

// ---------------------------------------------------------------------------------------------
// Without the network: the canonical string and the URL rules.

TEST(SnsCanonicalTest, NotificationWithAndWithoutSubjectAsAwsDocuments) {
  json m = {{"Type", "Notification"},
            {"MessageId", "id-1"},
            {"TopicArn", kTopic},
            {"Message", "hello\nworld"},
            {"Timestamp", "2026-12-08T01:00:00.000Z"},
            {"SignatureVersion", "1"},
            {"Signature", "x"},
            {"SigningCertURL", "https://sns.us-east-1.amazonaws.com/c.pem"},
            {"UnsubscribeURL", "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe"}};
  Result<std::optional<SnsEnvelope>> e = ParseSnsEnvelope(m.dump());
  ASSERT_TRUE(e.ok() && e->has_value()) << e.status().ToString();
  EXPECT_EQ(SnsCanonicalString(**e),
            "Message\nhello\nworld\nMessageId\nid-1\nTimestamp\n2026-12-08T01:00:00.000Z\n"
            "TopicArn\narn:aws:sns:us-east-1:123456789012:bucket-events\nType\nNotification\n");
  m["Subject"] = "Amazon S3 Notification";
  e = ParseSnsEnvelope(m.dump());
  ASSERT_TRUE(e.ok() && e->has_value());
  EXPECT_EQ(SnsCanonicalString(**e), AwsStringToSign(m));
  EXPECT_NE(SnsCanonicalString(**e).find("Subject\nAmazon S3 Notification\n"), std::string::npos);
}

TEST(SnsCanonicalTest, ConfirmationsSignSubscribeUrlAndToken) {
  for (const char* type : {"SubscriptionConfirmation", "UnsubscribeConfirmation"}) {
    json m = {{"Type", type},
              {"MessageId", "id-2"},
              {"Token", "tok"},
              {"TopicArn", kTopic},
              {"Message", "You have chosen to subscribe"},
              {"SubscribeURL", "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription"},
              {"Timestamp", "2026-12-08T01:00:00.000Z"}};
    Result<std::optional<SnsEnvelope>> e = ParseSnsEnvelope(m.dump());
    ASSERT_TRUE(e.ok() && e->has_value());
    EXPECT_EQ(SnsCanonicalString(**e), AwsStringToSign(m)) << type;
  }
  // Not SNS envelopes: judged by the notification parser.
  for (const char* body : {R"({"Records":[]})", R"({"Type":"Other"})", "not json", "[1]"}) {
    Result<std::optional<SnsEnvelope>> e = ParseSnsEnvelope(body);
    ASSERT_TRUE(e.ok()) << body;
    EXPECT_FALSE(e->has_value()) << body;
  }
  EXPECT_FALSE(ParseSnsEnvelope(R"({"Type":"Notification","Message":7})").ok());
}

TEST(SnsUrlTest, OnlyHttpsOnAnSnsHost) {
  EXPECT_TRUE(
      SnsUrlAllowed("https://sns.us-east-1.amazonaws.com/SimpleNotificationService-1.pem", ""));
  EXPECT_TRUE(SnsUrlAllowed("HTTPS://SNS.eu-west-3.amazonaws.com/x.pem", ""));
  EXPECT_TRUE(SnsUrlAllowed("https://sns.cn-north-1.amazonaws.com.cn/x.pem", ""));
  EXPECT_TRUE(
      SnsUrlAllowed("https://sns.us-gov-west-1.amazonaws.com/?Action=ConfirmSubscription", ""));
  EXPECT_FALSE(SnsUrlAllowed("http://sns.us-east-1.amazonaws.com/x.pem", ""));
  EXPECT_FALSE(SnsUrlAllowed("https://sns.us-east-1.amazonaws.com.evil.example/x.pem", ""));
  EXPECT_FALSE(SnsUrlAllowed("https://evil.example/sns.us-east-1.amazonaws.com/x.pem", ""));
  EXPECT_FALSE(SnsUrlAllowed("https://sns.us-east-1.amazonaws.com@evil.example/x.pem", ""));
  EXPECT_FALSE(SnsUrlAllowed("https://sns.us-east-1.amazonaws.com:8443/x.pem", ""));
  EXPECT_FALSE(SnsUrlAllowed("https://s3.amazonaws.com/bucket/x.pem", ""));
  EXPECT_FALSE(SnsUrlAllowed("https://sns..amazonaws.com/x.pem", ""));
  EXPECT_FALSE(SnsUrlAllowed("https://sns.US_EAST.amazonaws.com/x.pem", ""));
  EXPECT_FALSE(SnsUrlAllowed("", ""));
  EXPECT_FALSE(SnsUrlAllowed("https://127.0.0.1:4443/x.pem", ""));
  EXPECT_TRUE(SnsUrlAllowed("https://127.0.0.1:4443/x.pem", "127.0.0.1:4443"));
  EXPECT_FALSE(SnsUrlAllowed("http://127.0.0.1:4443/x.pem", "127.0.0.1:4443"));
  EXPECT_FALSE(SnsUrlAllowed("https://127.0.0.1:4444/x.pem", "127.0.0.1:4443"));
}

// The gate's order of checks, on fakes: what is refused before anything is fetched.
class CountingVerifier : public SnsSignatureVerifier {
 public:
  Result<SignatureCheck> Verify(const std::string&, int, std::string_view,
                                const std::string&) override {
    ++calls;
    return answer;
  }
  int calls = 0;
  SignatureCheck answer = SignatureCheck::kValid;
};
class CountingGetter : public HttpsGetter {
 public:
  Result<Answer> Get(const std::string& url) override {
    urls.push_back(url);
    return Answer{200, "<ConfirmSubscriptionResponse/>"};
  }
  std::vector<std::string> urls;
};

TEST(SnsGateTest, RefusesBeforeAnyFetchWhatTheEnvelopeAloneCondemns) {
  CountingVerifier verifier;
  CountingGetter getter;
  SnsOptions o;
  o.topic_arns = {kTopic};
  SnsGate gate(o, verifier, getter);
  json m = {{"Type", "SubscriptionConfirmation"},
            {"MessageId", "m"},
            {"Token", "t"},
            {"TopicArn", kTopic},
            {"Message", "confirm"},
            {"SubscribeURL", "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription"},
            {"Timestamp", "2026-12-08T01:00:00Z"},
            {"SignatureVersion", "1"},
            {"Signature", "c2ln"},
            {"SigningCertURL", "https://sns.us-east-1.amazonaws.com/c.pem"}};
  auto refusal = [&](const json& doc) {
    SnsDecision d = gate.Screen(doc.dump());
    return d.refusal ? SnsRefusalName(*d.refusal) : "none";
  };
  json t = m;
  t["TopicArn"] = kOtherTopic;
  EXPECT_STREQ(refusal(t), "foreign-topic");
  t = m;
  t.erase("Signature");
  EXPECT_STREQ(refusal(t), "unsigned");
  t = m;
  t["SignatureVersion"] = "3";
  EXPECT_STREQ(refusal(t), "signature-version");
  t = m;
  t["SigningCertURL"] = "http://sns.us-east-1.amazonaws.com/c.pem";
  EXPECT_STREQ(refusal(t), "certificate-url");
  t = m;
  t["SubscribeURL"] = "https://evil.example/?Action=ConfirmSubscription";
  EXPECT_STREQ(refusal(t), "subscribe-url");
  EXPECT_EQ(verifier.calls, 0);
  EXPECT_TRUE(getter.urls.empty());
  // A missing field SNS always sends is malformed (400), not a refusal.
  t = m;
  t.erase("Token");
  EXPECT_EQ(gate.Screen(t.dump()).kind, SnsDecision::Kind::kMalformed);
  // Signed and allowed: verified, then the SubscribeURL visited once.
  EXPECT_EQ(gate.Screen(m.dump()).kind, SnsDecision::Kind::kConfirmed);
  EXPECT_EQ(verifier.calls, 1);
  ASSERT_EQ(getter.urls.size(), 1u);
  verifier.answer = SignatureCheck::kBadSignature;
  EXPECT_STREQ(refusal(m), "bad-signature");
  EXPECT_EQ(getter.urls.size(), 1u);
}

TEST(SnsSettingsTest, TopicArnsMustBeSnsTopicArns) {
  EXPECT_TRUE(app::CheckSnsTopicArns({kTopic, "arn:aws-cn:sns:cn-north-1:123456789012:t"}).ok());
  for (const char* bad : {"bucket-events", "arn:aws:sqs:us-east-1:123456789012:q",
                          "arn:aws:sns:us-east-1:123456789012", "arn:aws:sns::123456789012:t",
                          "arn:aws:sns:us-east-1:123456789012:t:extra"}) {
    Status s = app::CheckSnsTopicArns({kTopic, bad});
    EXPECT_FALSE(s.ok()) << bad;
    EXPECT_NE(s.message().find(bad), std::string::npos) << s.message();
  }
}

// ---------------------------------------------------------------------------------------------
// Over real sockets: the webhook, a local HTTPS server standing for SNS's hosts, OpenSSL.

// The HTTPS server of SNS's hosts: serves the signing certificate (and a rogue one) and answers
// SubscribeURLs, counting requests.
class FakeSnsHost {
 public:
  explicit FakeSnsHost(const testing::SnsTestPki& pki) : server_(pki.tls_cert(), pki.tls_key()) {
    const std::string signer = pki.signer_pem(), rogue = pki.rogue_pem();
    server_.Get("/SimpleNotificationService-test.pem",
                [this, signer](const httplib::Request&, httplib::Response& res) {
                  ++cert_fetches;
                  res.set_content(signer, "application/x-pem-file");
                });
    server_.Get("/rogue.pem", [this, rogue](const httplib::Request&, httplib::Response& res) {
      ++cert_fetches;
      res.set_content(rogue, "application/x-pem-file");
    });
    server_.Get("/fails.pem",
                [](const httplib::Request&, httplib::Response& res) { res.status = 500; });
    server_.Get("/", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard<std::mutex> l(mu_);
      confirmations.push_back(req.get_param_value("Token"));
      res.set_content("<ConfirmSubscriptionResponse><ConfirmSubscriptionResult><SubscriptionArn>" +
                          std::string(kTopic) +
                          ":1</SubscriptionArn></ConfirmSubscriptionResult>"
                          "</ConfirmSubscriptionResponse>",
                      "text/xml");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // stop() before the loop runs would be lost (it acts only on a running server).
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~FakeSnsHost() {
    server_.stop();
    thread_.join();
  }
  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string url(const std::string& path) const { return "https://" + host() + path; }
  std::vector<std::string> Confirmations() {
    std::lock_guard<std::mutex> l(mu_);
    return confirmations;
  }

  std::atomic<int> cert_fetches{0};

 private:
  httplib::SSLServer server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> confirmations;
};

class SnsWebhookTest : public fakes::EngineOnFakesTest {
 protected:
  static void SetUpTestSuite() { pki_ = new testing::SnsTestPki(); }
  static void TearDownTestSuite() {
    delete pki_;
    pki_ = nullptr;
  }

  void SetUp() override {
    host_ = std::make_unique<FakeSnsHost>(*pki_);
    ca_file_ = std::filesystem::temp_directory_path() /
               ("ds-sns-ca-" + std::to_string(::getpid()) + ".pem");
    std::ofstream(ca_file_) << pki_->ca_pem();
    ::setenv(app::kSnsTestHostEnv, host_->host().c_str(), 1);
    ::setenv(app::kSnsTestCaFileEnv, ca_file_.c_str(), 1);
    cache_.PutFile("k", "cached");
  }
  void TearDown() override {
    server_.reset();
    sns_.reset();
    ::unsetenv(app::kSnsTestHostEnv);
    ::unsetenv(app::kSnsTestCaFileEnv);
    std::filesystem::remove(ca_file_);
  }

  // Opens the SNS service as serve does (the test-only environment read there) and a webhook.
  void StartWebhook(std::vector<std::string> topics) {
    metrics_ = std::make_unique<OpsMetrics>(clock_, nullptr);
    Result<std::unique_ptr<app::SnsService>> sns =
        app::SnsService::Open(topics, [this](const SnsDecision& d) { metrics_->OnSns(d); });
    ASSERT_TRUE(sns.ok()) << sns.status().ToString();
    sns_ = std::move(sns).value();
    WebhookOptions w;
    w.listener.port = 0;
    w.listener.workers = 2;
    w.token = kWebhookToken;
    server_ = std::make_unique<WebhookServer>(*engine_, w, nullptr);
    server_->set_sns_gate(&sns_->gate());
    Status s = server_->Start();
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  struct Reply {
    int status = 0;
    json body;
  };
  Reply Post(const json& doc) {
    httplib::Client c("127.0.0.1", server_->port());
    c.set_read_timeout(30, 0);
    httplib::Headers h = {{"Authorization", std::string("Bearer ") + kWebhookToken},
                          {"x-amz-sns-message-type", doc.value("Type", "")}};
    httplib::Result r = c.Post("/", h, doc.dump(), "text/plain; charset=UTF-8");
    if (!r) return {};
    return {r->status, json::parse(r->body, nullptr, false)};
  }

  // A Notification carrying `message`, signed with `key` (default: the SNS test signer) at
  // SignatureVersion `version`.
  json Notification(const std::string& message, int version = 1, const std::string& topic = kTopic,
                    EVP_PKEY* key = nullptr,
                    const std::string& cert_path = "/SimpleNotificationService-test.pem") {
    json m = {{"Type", "Notification"},
              {"MessageId", "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324"},
              {"TopicArn", topic},
              {"Subject", "Amazon S3 Notification"},
              {"Message", message},
              {"Timestamp", "2026-12-08T01:00:00.000Z"},
              {"SignatureVersion", std::to_string(version)},
              {"SigningCertURL", host_->url(cert_path)},
              {"UnsubscribeURL", host_->url("/?Action=Unsubscribe&SubscriptionArn=x")}};
    Sign(&m, key, version);
    return m;
  }
  json Confirmation(const std::string& type, const std::string& topic = kTopic,
                    std::string subscribe_url = "") {
    if (subscribe_url.empty()) {
      subscribe_url = host_->url("/?Action=ConfirmSubscription&TopicArn=" + topic +
                                 "&Token=secret-confirmation-token");
    }
    json m = {{"Type", type},
              {"MessageId", "165545c9-2a5c-472c-8df2-7ff2be2b3b1b"},
              {"Token", "secret-confirmation-token"},
              {"TopicArn", topic},
              {"Message", "You have chosen to subscribe to the topic " + topic},
              {"SubscribeURL", subscribe_url},
              {"Timestamp", "2026-12-08T01:00:00.000Z"},
              {"SignatureVersion", "2"},
              {"SigningCertURL", host_->url("/SimpleNotificationService-test.pem")}};
    Sign(&m, nullptr, 2);
    return m;
  }
  void Sign(json* m, EVP_PKEY* key, int version) {
    (*m)["Signature"] = testing::SignBase64(key != nullptr ? key : pki_->signer_key(), version,
                                            AwsStringToSign(*m));
  }

  // Asserts a 403 naming `reason`, counted once, with the cached copy of "k" untouched.
  void ExpectRefused(const json& doc, const std::string& reason) {
    Reply r = Post(doc);
    EXPECT_EQ(r.status, 403) << r.body.dump();
    EXPECT_EQ(r.body.value("refusal", ""), reason) << r.body.dump();
    EXPECT_TRUE(cache_.Has("k"));
    EXPECT_NE(metrics_->Render().find("delete_sync_sns_refused_total{reason=\"" + reason + "\"} 1"),
              std::string::npos)
        << metrics_->Render();
  }

  static testing::SnsTestPki* pki_;
  std::unique_ptr<FakeSnsHost> host_;
  std::filesystem::path ca_file_;
  std::unique_ptr<OpsMetrics> metrics_;
  std::unique_ptr<app::SnsService> sns_;
  std::unique_ptr<WebhookServer> server_;
};
testing::SnsTestPki* SnsWebhookTest::pki_ = nullptr;

TEST_F(SnsWebhookTest, SignedV1NotificationIsApplied) {
  StartWebhook({kTopic});
  Reply r = Post(Notification(RemovalMessage("k"), 1));
  EXPECT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(r.body.value("applied", 0), 1) << r.body.dump();
  EXPECT_FALSE(cache_.Has("k"));
}

TEST_F(SnsWebhookTest, SignedV2NotificationIsApplied) {
  StartWebhook({kTopic});
  Reply r = Post(Notification(RemovalMessage("k"), 2));
  EXPECT_EQ(r.status, 200) << r.body.dump();
  EXPECT_FALSE(cache_.Has("k"));
  EXPECT_NE(metrics_->Render().find(
                "delete_sync_sns_messages_total{type=\"Notification\",outcome=\"verified\"} 1"),
            std::string::npos)
      << metrics_->Render();
}

TEST_F(SnsWebhookTest, CertificateIsFetchedOnceAndCached) {
  StartWebhook({kTopic});
  cache_.PutFile("k2", "cached");
  EXPECT_EQ(Post(Notification(RemovalMessage("k"), 1)).status, 200);
  EXPECT_EQ(Post(Notification(RemovalMessage("k2"), 2)).status, 200);
  EXPECT_EQ(Post(Confirmation("UnsubscribeConfirmation")).status, 200);
  EXPECT_EQ(host_->cert_fetches.load(), 1);
  EXPECT_EQ(sns_->certificate_fetches(), 1);
  EXPECT_FALSE(cache_.Has("k2"));
}

TEST_F(SnsWebhookTest, TamperedMessageIsRefused) {
  StartWebhook({kTopic});
  json doc = Notification(RemovalMessage("other"), 2);
  doc["Message"] = RemovalMessage("k");  // signed for "other", delivered for "k"
  ExpectRefused(doc, "bad-signature");
}

TEST_F(SnsWebhookTest, SignatureByAnotherKeyIsRefused) {
  StartWebhook({kTopic});
  ExpectRefused(Notification(RemovalMessage("k"), 1, kTopic, pki_->rogue_key()), "bad-signature");
}

TEST_F(SnsWebhookTest, CertificateNotIssuedByATrustAnchorIsRefused) {
  StartWebhook({kTopic});
  // Signed by the rogue key, whose self-signed certificate is served from the allowed host.
  ExpectRefused(Notification(RemovalMessage("k"), 2, kTopic, pki_->rogue_key(), "/rogue.pem"),
                "bad-certificate");
  EXPECT_EQ(host_->cert_fetches.load(), 1);
}

TEST_F(SnsWebhookTest, CertificateUrlOnAForeignHostOrOverHttpIsRefusedWithoutFetching) {
  StartWebhook({kTopic});
  json doc = Notification(RemovalMessage("k"), 1);
  doc["SigningCertURL"] = "https://sns.us-east-1.amazonaws.com.evil.example/cert.pem";
  Sign(&doc, nullptr, 1);
  ExpectRefused(doc, "certificate-url");
  doc["SigningCertURL"] = "http://" + host_->host() + "/SimpleNotificationService-test.pem";
  Sign(&doc, nullptr, 1);
  Reply r = Post(doc);
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.body.value("refusal", ""), "certificate-url");
  EXPECT_TRUE(cache_.Has("k"));
  EXPECT_EQ(host_->cert_fetches.load(), 0);
  EXPECT_EQ(sns_->certificate_fetches(), 0);
}

TEST_F(SnsWebhookTest, UnsignedEnvelopeIsRefused) {
  StartWebhook({kTopic});
  json doc = Notification(RemovalMessage("k"), 1);
  doc.erase("Signature");
  doc.erase("SignatureVersion");
  doc.erase("SigningCertURL");
  ExpectRefused(doc, "unsigned");
}

TEST_F(SnsWebhookTest, ForeignTopicIsRefusedEvenWhenSigned) {
  StartWebhook({kTopic});
  ExpectRefused(Notification(RemovalMessage("k"), 2, kOtherTopic), "foreign-topic");
  EXPECT_EQ(host_->cert_fetches.load(), 0);
}

TEST_F(SnsWebhookTest, ConfirmationOfAnAllowedTopicVisitsTheSubscribeUrl) {
  StartWebhook({kTopic});
  Reply r = Post(Confirmation("SubscriptionConfirmation"));
  EXPECT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(r.body.value("sns", ""), "confirmed");
  EXPECT_EQ(r.body.value("topic", ""), kTopic);
  EXPECT_EQ(host_->Confirmations(), std::vector<std::string>{"secret-confirmation-token"});
  EXPECT_TRUE(cache_.Has("k"));
}

TEST_F(SnsWebhookTest, ConfirmationOfAnotherTopicIsNotVisited) {
  StartWebhook({kTopic});
  ExpectRefused(Confirmation("SubscriptionConfirmation", kOtherTopic), "foreign-topic");
  EXPECT_TRUE(host_->Confirmations().empty());
}

TEST_F(SnsWebhookTest, ConfirmationWithASubscribeUrlOnAForeignHostIsNotVisited) {
  StartWebhook({kTopic});
  // Signed by the SNS test signer, but the SubscribeURL points elsewhere (the local host over
  // plain http, then a foreign https host).
  ExpectRefused(
      Confirmation(
          "SubscriptionConfirmation", kTopic,
          "https://evil.example/?Action=ConfirmSubscription&Token=secret-confirmation-token"),
      "subscribe-url");
  Reply r = Post(Confirmation("SubscriptionConfirmation", kTopic,
                              "http://" + host_->host() + "/?Action=ConfirmSubscription&Token=t"));
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.body.value("refusal", ""), "subscribe-url");
  EXPECT_TRUE(host_->Confirmations().empty());
}

TEST_F(SnsWebhookTest, OnlyTheSignedMessageIsApplied) {
  StartWebhook({kTopic});
  cache_.PutFile("other", "cached");
  // A genuine signed message for "other", replayed with an unsigned "Records" member for "k".
  json doc = Notification(RemovalMessage("other"), 2);
  doc["Records"] = json::parse(RemovalMessage("k"))["Records"];
  Reply r = Post(doc);
  EXPECT_EQ(r.status, 200) << r.body.dump();
  EXPECT_FALSE(cache_.Has("other"));
  EXPECT_TRUE(cache_.Has("k"));
}

TEST_F(SnsWebhookTest, AnEscapedTypeKeyIsStillScreened) {
  StartWebhook({kTopic});
  std::string body =
      json{{"Type", "Notification"}, {"TopicArn", kTopic}, {"Message", RemovalMessage("k")}}.dump();
  body.replace(body.find("\"Type\""), 6, "\"\\u0054ype\"");
  httplib::Client c("127.0.0.1", server_->port());
  httplib::Result r = c.Post("/", {{"Authorization", std::string("Bearer ") + kWebhookToken}}, body,
                             "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 403) << body << " -> " << r->body;
  EXPECT_TRUE(cache_.Has("k"));
}

TEST_F(SnsWebhookTest, CertificateHostErrorIs503AndChangesNothing) {
  StartWebhook({kTopic});
  Reply r = Post(Notification(RemovalMessage("k"), 1, kTopic, nullptr, "/fails.pem"));
  EXPECT_EQ(r.status, 503) << r.body.dump();
  EXPECT_TRUE(cache_.Has("k"));
  // The sender's retry, signed with a certificate that can be fetched, applies.
  EXPECT_EQ(Post(Notification(RemovalMessage("k"), 1)).status, 200);
  EXPECT_FALSE(cache_.Has("k"));
}

// The verifier's cache on its own, with a getter that serves the signing certificate for any URL:
// bounded (the oldest dropped first), and a certificate that fails is not kept.
TEST_F(SnsWebhookTest, VerifierCacheIsBoundedAndKeepsOnlyVerifiedCertificates) {
  class PemGetter : public HttpsGetter {
   public:
    explicit PemGetter(std::string pem) : pem_(std::move(pem)) {}
    Result<Answer> Get(const std::string& url) override {
      ++gets;
      return Answer{url.find("bad") != std::string::npos ? 404L : 200L, pem_};
    }
    int gets = 0;

   private:
    std::string pem_;
  };
  PemGetter getter(pki_->signer_pem());
  crypto::SnsTrustOptions trust;
  trust.ca_file = ca_file_.string();
  trust.max_certificates = 2;
  Result<std::unique_ptr<crypto::OpenSslSnsVerifier>> v =
      crypto::OpenSslSnsVerifier::Create(getter, trust);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  const std::string data = "Message\nm\n";
  const std::string sig = testing::SignBase64(pki_->signer_key(), 2, data);
  auto verify = [&](const std::string& url) { return *(*v)->Verify(url, 2, data, sig); };
  EXPECT_EQ(verify("https://a/1.pem"), SignatureCheck::kValid);
  EXPECT_EQ(verify("https://a/2.pem"), SignatureCheck::kValid);
  EXPECT_EQ(verify("https://a/1.pem"), SignatureCheck::kValid);
  EXPECT_EQ(getter.gets, 2);
  EXPECT_EQ(verify("https://a/3.pem"), SignatureCheck::kValid);  // drops 1.pem, the oldest
  EXPECT_EQ(verify("https://a/2.pem"), SignatureCheck::kValid);
  EXPECT_EQ(getter.gets, 3);
  EXPECT_EQ(verify("https://a/1.pem"), SignatureCheck::kValid);
  EXPECT_EQ(getter.gets, 4);
  EXPECT_EQ(verify("https://a/bad.pem"), SignatureCheck::kBadCertificate);
  EXPECT_EQ(verify("https://a/bad.pem"), SignatureCheck::kBadCertificate);
  EXPECT_EQ(getter.gets, 6);
  EXPECT_EQ((*v)->fetches(), 6);
  EXPECT_EQ(*(*v)->Verify("https://a/3.pem", 1, data, sig), SignatureCheck::kBadSignature);
}

TEST_F(SnsWebhookTest, WithoutTopicsNotificationsApplyOnTheTokenAndConfirmationsAreRefused) {
  StartWebhook({});
  json doc = {{"Type", "Notification"}, {"Message", RemovalMessage("k")}};  // unsigned
  Reply r = Post(doc);
  EXPECT_EQ(r.status, 200) << r.body.dump();
  EXPECT_FALSE(cache_.Has("k"));
  cache_.PutFile("k", "cached");
  ExpectRefused(Confirmation("SubscriptionConfirmation"), "foreign-topic");
  EXPECT_TRUE(host_->Confirmations().empty());
  EXPECT_EQ(host_->cert_fetches.load(), 0);
}

TEST_F(SnsWebhookTest, NonSnsDocumentsAreUnaffected) {
  StartWebhook({kTopic});
  Reply r = Post(json::parse(RemovalMessage("k")));
  EXPECT_EQ(r.status, 200) << r.body.dump();
  EXPECT_FALSE(cache_.Has("k"));
}

}  // namespace
}  // namespace ds
