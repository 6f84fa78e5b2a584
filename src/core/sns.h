// Amazon SNS HTTPS subscriptions: the JSON envelope SNS POSTs to an HTTPS endpoint, the rules
// for trusting it, and the decision of what to do with one (SnsGate).
//
// What is signed (docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html):
// the canonical string of SnsCanonicalString, signed with SHA1withRSA (SignatureVersion "1")
// or SHA256withRSA ("2") by the key of the X.509 certificate at SigningCertURL. That URL, and
// a SubscribeURL, are trusted only over https on a host sns.<region>.amazonaws.com (or
// .amazonaws.com.cn), with no user info and no port; a test may allow one more host
// (SnsOptions::test_host), never a user.
//
// No I/O here: fetching and checking the certificate is SnsSignatureVerifier's (an adapter:
// crypto/sns_signature.h), visiting a SubscribeURL is HttpsGetter's (transport/https_get.h).
// Pure functions are safe from any thread; SnsGate is thread-safe if its verifier and getter
// are.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace ds {

enum class SnsType { kNotification, kSubscriptionConfirmation, kUnsubscribeConfirmation };
// "Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation".
const char* SnsTypeName(SnsType t);

// The fields of an SNS envelope. Absent string fields are "".
struct SnsEnvelope {
  SnsType type = SnsType::kNotification;
  std::string message_id, topic_arn, message, timestamp;
  std::optional<std::string> subject;  // Notification only; absent or null: not signed
  std::string token, subscribe_url;    // the two confirmations only
  std::string signature_version, signature, signing_cert_url;
};

// The envelope in `body` when it is one: a JSON object whose "Type" is one of the three SNS
// types. nullopt when it is not (any other document, or not JSON: the notification parser
// judges those). kInvalidArgument, naming the field, when it is one but has no Message, or a
// field is not a string. (The other fields SNS always sends are required by SnsGate when it
// verifies, not here: unverified envelopes made by hand carry only Type and Message.)
Result<std::optional<SnsEnvelope>> ParseSnsEnvelope(std::string_view body);

// The string SNS signs: "Name\nvalue\n" for each signed field in byte order of the names.
// Notification: Message, MessageId, Subject (only when present), Timestamp, TopicArn, Type.
// The confirmations: Message, MessageId, SubscribeURL, Timestamp, Token, TopicArn, Type.
std::string SnsCanonicalString(const SnsEnvelope& e);

// The authority (host[:port], lower case) of an https:// URL; nullopt for another scheme, a
// URL with user info ('@'), or an empty host.
std::optional<std::string> HttpsAuthority(std::string_view url);
// Whether `authority` is sns.<region>.amazonaws.com or sns.<region>.amazonaws.com.cn (region:
// lower-case letters, digits and '-'; no port).
bool IsSnsHost(std::string_view authority);
// Whether `url` may be fetched or visited: https, and its authority IsSnsHost or equal to
// `test_host` when that is not empty.
bool SnsUrlAllowed(std::string_view url, std::string_view test_host);

// Why an SNS envelope was refused. Refused envelopes change nothing and are answered 403;
// sending them again cannot help.
enum class SnsRefusal {
  kUnsigned,            // no Signature, SignatureVersion or SigningCertURL
  kSignatureVersion,    // SignatureVersion is neither "1" nor "2"
  kCertificateUrl,      // SigningCertURL is not https on an SNS host
  kBadCertificate,      // the certificate does not parse, or does not verify against the trust
                        // anchors (system trust store), or has expired
  kBadSignature,        // the signature does not match the canonical string
  kForeignTopic,        // TopicArn is not one of --sns-topic-arn
  kSubscribeUrl,        // a SubscribeURL that is not https on an SNS host
  kConfirmationFailed,  // visiting the SubscribeURL was answered with an error status
};
inline constexpr size_t kSnsRefusalCount = 8;
// Stable machine name, used in logs, counters and replies: "unsigned", "signature-version",
// "certificate-url", "bad-certificate", "bad-signature", "foreign-topic", "subscribe-url",
// "confirmation-failed".
const char* SnsRefusalName(SnsRefusal r);
// One line for an operator.
const char* SnsRefusalReason(SnsRefusal r);

// The outcome of checking a signature.
enum class SignatureCheck { kValid, kBadSignature, kBadCertificate };

// Checks signatures with the certificate at a SigningCertURL (adapter: OpenSslSnsVerifier).
class SnsSignatureVerifier {
 public:
  virtual ~SnsSignatureVerifier() = default;
  // Whether `signature_b64` (base64, as sent) is the signature of `data` by the key of the
  // certificate at `cert_url`, with SHA-1 (`version` 1) or SHA-256 (2). Called only with a URL
  // that SnsUrlAllowed accepted. A non-OK Status (kUnavailable) means the certificate could not
  // be fetched now (network, 5xx): the sender should retry; nothing was decided.
  virtual Result<SignatureCheck> Verify(const std::string& cert_url, int version,
                                        std::string_view data,
                                        const std::string& signature_b64) = 0;
};

// One GET over HTTPS (adapter: CurlHttpsGetter).
class HttpsGetter {
 public:
  struct Answer {
    long status = 0;
    std::string body;
  };
  virtual ~HttpsGetter() = default;
  // GETs `url` (https only, no redirects followed, the server's certificate verified). A
  // non-OK Status when no HTTP answer came (connection, TLS, timeout, too large).
  virtual Result<Answer> Get(const std::string& url) = 0;
};

struct SnsOptions {
  // --sns-topic-arn: the topics whose messages the webhook accepts. Empty: SNS envelopes are
  // not verified (the webhook token alone authenticates them, as before) and subscription
  // confirmations are refused (kForeignTopic).
  std::vector<std::string> topic_arns;
  // Tests only (DS_TEST_SNS_HOST): one more host[:port] allowed for SigningCertURL and
  // SubscribeURL. Empty in production.
  std::string test_host;
};

// What to do with one webhook body.
struct SnsDecision {
  enum class Kind {
    kNotSns,        // not an SNS envelope: apply it as any notification document
    kUnverified,    // an SNS Notification accepted unverified (no --sns-topic-arn): apply it
    kVerified,      // an SNS Notification whose signature and topic were verified: apply it
    kConfirmed,     // a SubscriptionConfirmation verified and its SubscribeURL visited: 200
    kUnsubscribed,  // an UnsubscribeConfirmation verified and logged: 200, nothing changes
    kRefused,       // refused (`refusal`): 403, nothing changes
    kMalformed,     // an SNS envelope missing a field: 400, nothing changes
    kRetry,         // the certificate or the SubscribeURL did not answer: 503, nothing changes
  };
  Kind kind = Kind::kNotSns;
  std::optional<SnsRefusal> refusal;  // kRefused only
  SnsType type = SnsType::kNotification;
  std::string topic_arn;  // when the body is an SNS envelope
  std::string detail;     // for the reply and the log: no token, no SubscribeURL query
  // kVerified: the document to apply, {"Type":"Notification","Message":<the signed Message>},
  // so that nothing the signature does not cover (a "Records" member beside it) is applied.
  std::string verified_document;
};

// Screens the webhook's bodies: decides, for an SNS envelope, whether it is verified, refused or
// a subscription to confirm, and confirms it. Rules (docs/SEMANTICS.md, "SNS HTTPS
// subscriptions"):
//  - without topics (SnsOptions::topic_arns empty), a Notification is kUnverified and a
//    SubscriptionConfirmation is refused kForeignTopic; an UnsubscribeConfirmation is logged;
//  - with topics, every SNS envelope is checked in this order, before anything is fetched:
//    topic allowed (else kForeignTopic), signature fields present (kUnsigned), MessageId,
//    Timestamp and (confirmations) Token present (else kMalformed), version 1 or 2
//    (kSignatureVersion), SigningCertURL allowed (kCertificateUrl), SubscribeURL allowed
//    (kSubscribeUrl); then the signature (kBadCertificate, kBadSignature); then, for a
//    SubscriptionConfirmation, one GET of its SubscribeURL (2xx: kConfirmed; another status:
//    kConfirmationFailed; no answer: kRetry).
// Each decision is logged (topic, type, reason; never the Token or the SubscribeURL's query)
// and passed to `observer` (metrics).
class SnsGate {
 public:
  SnsGate(SnsOptions options, SnsSignatureVerifier& verifier, HttpsGetter& getter,
          std::function<void(const SnsDecision&)> observer = nullptr);

  SnsDecision Screen(std::string_view body);

  bool verifying() const { return !options_.topic_arns.empty(); }
  const SnsOptions& options() const { return options_; }

 private:
  SnsDecision Decide(std::string_view body);
  SnsDecision Check(const SnsEnvelope& e);

  const SnsOptions options_;
  SnsSignatureVerifier& verifier_;
  HttpsGetter& getter_;
  std::function<void(const SnsDecision&)> observer_;
};

}  // namespace ds
