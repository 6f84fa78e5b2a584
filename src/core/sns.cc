#include "core/sns.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

namespace ds {
namespace {

using nlohmann::json;

// The string member `name` of `obj`: "" when absent; kInvalidArgument when present and not a
// string, or absent and `required`.
Status SnsField(const json& obj, const char* name, bool required, std::string* out) {
  auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) {
    if (required) return Status::Invalid(std::string("SNS envelope: ") + name + ": missing");
    return Status::Ok();
  }
  if (!it->is_string()) {
    return Status::Invalid(std::string("SNS envelope: ") + name + ": not a string");
  }
  *out = it->get<std::string>();
  return Status::Ok();
}

void AppendField(std::string* out, const char* name, const std::string& value) {
  out->append(name);
  out->push_back('\n');
  out->append(value);
  out->push_back('\n');
}

// scheme://authority/path without the query: what a log may show of a URL.
std::string UrlForLog(const std::string& url) {
  return url.substr(0, std::min(url.find('?'), url.find('#')));
}

}  // namespace

const char* SnsTypeName(SnsType t) {
  switch (t) {
    case SnsType::kNotification:
      return "Notification";
    case SnsType::kSubscriptionConfirmation:
      return "SubscriptionConfirmation";
    case SnsType::kUnsubscribeConfirmation:
      return "UnsubscribeConfirmation";
  }
  return "Notification";
}

const char* SnsRefusalName(SnsRefusal r) {
  switch (r) {
    case SnsRefusal::kUnsigned:
      return "unsigned";
    case SnsRefusal::kSignatureVersion:
      return "signature-version";
    case SnsRefusal::kCertificateUrl:
      return "certificate-url";
    case SnsRefusal::kBadCertificate:
      return "bad-certificate";
    case SnsRefusal::kBadSignature:
      return "bad-signature";
    case SnsRefusal::kForeignTopic:
      return "foreign-topic";
    case SnsRefusal::kSubscribeUrl:
      return "subscribe-url";
    case SnsRefusal::kConfirmationFailed:
      return "confirmation-failed";
  }
  return "unsigned";
}

const char* SnsRefusalReason(SnsRefusal r) {
  switch (r) {
    case SnsRefusal::kUnsigned:
      return "the SNS message carries no signature";
    case SnsRefusal::kSignatureVersion:
      return "the SNS message's SignatureVersion is neither 1 nor 2";
    case SnsRefusal::kCertificateUrl:
      return "the SigningCertURL is not https on an sns.<region>.amazonaws.com host";
    case SnsRefusal::kBadCertificate:
      return "the signing certificate does not verify against the trust store";
    case SnsRefusal::kBadSignature:
      return "the SNS message's signature does not match its content";
    case SnsRefusal::kForeignTopic:
      return "the topic is not one of --sns-topic-arn";
    case SnsRefusal::kSubscribeUrl:
      return "the SubscribeURL is not https on an sns.<region>.amazonaws.com host";
    case SnsRefusal::kConfirmationFailed:
      return "SNS refused the subscription confirmation";
  }
  return "";
}

Result<std::optional<SnsEnvelope>> ParseSnsEnvelope(std::string_view body) {
  const json doc = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return std::optional<SnsEnvelope>();
  auto type = doc.find("Type");
  if (type == doc.end() || !type->is_string()) return std::optional<SnsEnvelope>();
  SnsEnvelope e;
  const std::string& t = type->get_ref<const std::string&>();
  if (t == "Notification") {
    e.type = SnsType::kNotification;
  } else if (t == "SubscriptionConfirmation") {
    e.type = SnsType::kSubscriptionConfirmation;
  } else if (t == "UnsubscribeConfirmation") {
    e.type = SnsType::kUnsubscribeConfirmation;
  } else {
    return std::optional<SnsEnvelope>();
  }
  const bool confirmation = e.type != SnsType::kNotification;
  // Envelopes posted by hand before signatures were checked carry only Type and Message:
  // the other fields are required by the verification (SnsGate::Check), not here.
  DS_RETURN_IF_ERROR(SnsField(doc, "Message", true, &e.message));
  DS_RETURN_IF_ERROR(SnsField(doc, "MessageId", false, &e.message_id));
  DS_RETURN_IF_ERROR(SnsField(doc, "TopicArn", false, &e.topic_arn));
  DS_RETURN_IF_ERROR(SnsField(doc, "Timestamp", false, &e.timestamp));
  DS_RETURN_IF_ERROR(SnsField(doc, "Token", false, &e.token));
  DS_RETURN_IF_ERROR(SnsField(doc, "SubscribeURL", false, &e.subscribe_url));
  DS_RETURN_IF_ERROR(SnsField(doc, "SignatureVersion", false, &e.signature_version));
  DS_RETURN_IF_ERROR(SnsField(doc, "Signature", false, &e.signature));
  DS_RETURN_IF_ERROR(SnsField(doc, "SigningCertURL", false, &e.signing_cert_url));
  if (auto s = doc.find("Subject"); !confirmation && s != doc.end() && !s->is_null()) {
    if (!s->is_string()) return Status::Invalid("SNS envelope: Subject: not a string");
    e.subject = s->get<std::string>();
  }
  return std::optional<SnsEnvelope>(std::move(e));
}

std::string SnsCanonicalString(const SnsEnvelope& e) {
  std::string out;
  AppendField(&out, "Message", e.message);
  AppendField(&out, "MessageId", e.message_id);
  if (e.type == SnsType::kNotification) {
    if (e.subject) AppendField(&out, "Subject", *e.subject);
  } else {
    AppendField(&out, "SubscribeURL", e.subscribe_url);
  }
  AppendField(&out, "Timestamp", e.timestamp);
  if (e.type != SnsType::kNotification) AppendField(&out, "Token", e.token);
  AppendField(&out, "TopicArn", e.topic_arn);
  AppendField(&out, "Type", SnsTypeName(e.type));
  return out;
}

std::optional<std::string> HttpsAuthority(std::string_view url) {
  constexpr std::string_view kScheme = "https://";
  if (url.size() < kScheme.size()) return std::nullopt;
  for (size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(url[i])) != kScheme[i]) return std::nullopt;
  }
  std::string_view rest = url.substr(kScheme.size());
  std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  if (authority.empty() || authority.find('@') != std::string_view::npos ||
      authority.find('\\') != std::string_view::npos) {
    return std::nullopt;
  }
  std::string out(authority);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool IsSnsHost(std::string_view authority) {
  constexpr std::string_view kPrefix = "sns.";
  if (authority.substr(0, kPrefix.size()) != kPrefix) return false;
  std::string_view rest = authority.substr(kPrefix.size());
  size_t dot = rest.find('.');
  if (dot == 0 || dot == std::string_view::npos) return false;
  for (char c : rest.substr(0, dot)) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  std::string_view domain = rest.substr(dot);
  return domain == ".amazonaws.com" || domain == ".amazonaws.com.cn";
}

bool SnsUrlAllowed(std::string_view url, std::string_view test_host) {
  std::optional<std::string> authority = HttpsAuthority(url);
  if (!authority) return false;
  if (!test_host.empty() && *authority == test_host) return true;
  return IsSnsHost(*authority);
}

SnsGate::SnsGate(SnsOptions options, SnsSignatureVerifier& verifier, HttpsGetter& getter,
                 std::function<void(const SnsDecision&)> observer)
    : options_(std::move(options)),
      verifier_(verifier),
      getter_(getter),
      observer_(std::move(observer)) {}

SnsDecision SnsGate::Screen(std::string_view body) {
  SnsDecision d = Decide(body);
  using Kind = SnsDecision::Kind;
  const char* type = SnsTypeName(d.type);
  switch (d.kind) {
    case Kind::kNotSns:
    case Kind::kUnverified:
    case Kind::kVerified:
      break;
    case Kind::kConfirmed:
      spdlog::info("SNS subscription confirmed: topic {} ({})", d.topic_arn, d.detail);
      break;
    case Kind::kUnsubscribed:
      spdlog::warn("SNS UnsubscribeConfirmation: topic {} no longer delivers to this webhook{}",
                   d.topic_arn, d.detail.empty() ? "" : " (" + d.detail + ")");
      break;
    case Kind::kRefused:
      spdlog::warn("refused SNS {} of topic {}: {} ({})", type, d.topic_arn,
                   SnsRefusalName(*d.refusal), d.detail);
      break;
    case Kind::kMalformed:
      spdlog::warn("rejected malformed SNS {}: {}", type, d.detail);
      break;
    case Kind::kRetry:
      spdlog::warn("SNS {} of topic {} not checked now, the sender retries: {}", type, d.topic_arn,
                   d.detail);
      break;
  }
  if (observer_ && d.kind != Kind::kNotSns) observer_(d);
  return d;
}

SnsDecision SnsGate::Decide(std::string_view body) {
  SnsDecision d;
  // Every envelope has a "Type" member: other documents skip the second JSON parse. (A key
  // can only be spelled otherwise with a \u escape.)
  if (body.find("\"Type\"") == std::string_view::npos &&
      body.find("\\u") == std::string_view::npos) {
    return d;
  }
  Result<std::optional<SnsEnvelope>> parsed = ParseSnsEnvelope(body);
  if (!parsed.ok()) {
    // Unverified, the notification parser judges it (and words the error) as before.
    if (!verifying()) return d;
    d.kind = SnsDecision::Kind::kMalformed;
    d.detail = parsed.status().message();
    return d;
  }
  if (!parsed->has_value()) return d;  // kNotSns
  const SnsEnvelope& e = **parsed;
  if (!verifying()) {
    d.type = e.type;
    d.topic_arn = e.topic_arn;
    switch (e.type) {
      case SnsType::kNotification:
        d.kind = SnsDecision::Kind::kUnverified;
        return d;
      case SnsType::kSubscriptionConfirmation:
        d.kind = SnsDecision::Kind::kRefused;
        d.refusal = SnsRefusal::kForeignTopic;
        d.detail = "no --sns-topic-arn is set: add this topic to it to confirm the subscription";
        return d;
      case SnsType::kUnsubscribeConfirmation:
        d.kind = SnsDecision::Kind::kUnsubscribed;
        d.detail = "not verified: no --sns-topic-arn is set";
        return d;
    }
  }
  return Check(e);
}

SnsDecision SnsGate::Check(const SnsEnvelope& e) {
  using Kind = SnsDecision::Kind;
  SnsDecision d;
  d.type = e.type;
  d.topic_arn = e.topic_arn;
  auto refuse = [&](SnsRefusal r, std::string detail) {
    d.kind = Kind::kRefused;
    d.refusal = r;
    d.detail = detail.empty() ? SnsRefusalReason(r) : std::move(detail);
    return d;
  };
  const std::vector<std::string>& topics = options_.topic_arns;
  if (std::find(topics.begin(), topics.end(), e.topic_arn) == topics.end()) {
    return refuse(SnsRefusal::kForeignTopic, "");
  }
  if (e.signature.empty() || e.signature_version.empty() || e.signing_cert_url.empty()) {
    return refuse(SnsRefusal::kUnsigned, "");
  }
  const char* missing = e.message_id.empty()                                    ? "MessageId"
                        : e.timestamp.empty()                                   ? "Timestamp"
                        : (e.type != SnsType::kNotification && e.token.empty()) ? "Token"
                                                                                : nullptr;
  if (missing != nullptr) {
    d.kind = Kind::kMalformed;
    d.detail = std::string("SNS envelope: ") + missing + ": missing";
    return d;
  }
  int version = 0;
  if (e.signature_version == "1") version = 1;
  if (e.signature_version == "2") version = 2;
  if (version == 0) return refuse(SnsRefusal::kSignatureVersion, "");
  if (!SnsUrlAllowed(e.signing_cert_url, options_.test_host)) {
    return refuse(SnsRefusal::kCertificateUrl,
                  std::string(SnsRefusalReason(SnsRefusal::kCertificateUrl)) + ": " +
                      UrlForLog(e.signing_cert_url));
  }
  if (e.type == SnsType::kSubscriptionConfirmation &&
      !SnsUrlAllowed(e.subscribe_url, options_.test_host)) {
    return refuse(SnsRefusal::kSubscribeUrl,
                  std::string(SnsRefusalReason(SnsRefusal::kSubscribeUrl)) + ": " +
                      UrlForLog(e.subscribe_url));
  }
  Result<SignatureCheck> check =
      verifier_.Verify(e.signing_cert_url, version, SnsCanonicalString(e), e.signature);
  if (!check.ok()) {
    d.kind = Kind::kRetry;
    d.detail = check.status().message();
    return d;
  }
  switch (*check) {
    case SignatureCheck::kBadCertificate:
      return refuse(SnsRefusal::kBadCertificate, "");
    case SignatureCheck::kBadSignature:
      return refuse(SnsRefusal::kBadSignature, "");
    case SignatureCheck::kValid:
      break;
  }
  switch (e.type) {
    case SnsType::kNotification:
      d.kind = Kind::kVerified;
      d.verified_document = json{{"Type", "Notification"}, {"Message", e.message}}.dump();
      return d;
    case SnsType::kUnsubscribeConfirmation:
      d.kind = Kind::kUnsubscribed;
      return d;
    case SnsType::kSubscriptionConfirmation:
      break;
  }
  Result<HttpsGetter::Answer> visit = getter_.Get(e.subscribe_url);
  const std::string where = "SubscribeURL " + UrlForLog(e.subscribe_url);
  if (!visit.ok()) {
    d.kind = Kind::kRetry;
    d.detail = where + ": " + visit.status().message();
    return d;
  }
  if (visit->status >= 500) {
    d.kind = Kind::kRetry;
    d.detail = where + " answered HTTP " + std::to_string(visit->status);
    return d;
  }
  if (visit->status < 200 || visit->status > 299) {
    return refuse(SnsRefusal::kConfirmationFailed,
                  where + " answered HTTP " + std::to_string(visit->status));
  }
  d.kind = Kind::kConfirmed;
  d.detail = where + " answered HTTP " + std::to_string(visit->status);
  return d;
}

}  // namespace ds
