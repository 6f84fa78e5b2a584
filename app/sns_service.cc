#include "sns_service.h"

#include <spdlog/spdlog.h>

#include <cstdlib>

namespace ds::app {

Status CheckSnsTopicArns(const std::vector<std::string>& arns) {
  for (const std::string& arn : arns) {
    std::vector<std::string> parts;
    size_t start = 0;
    for (size_t colon; (colon = arn.find(':', start)) != std::string::npos; start = colon + 1) {
      parts.push_back(arn.substr(start, colon - start));
    }
    parts.push_back(arn.substr(start));
    const bool ok = parts.size() == 6 && parts[0] == "arn" && !parts[1].empty() &&
                    parts[2] == "sns" && !parts[3].empty() && !parts[4].empty() &&
                    !parts[5].empty();
    if (!ok) {
      return Status::Invalid(
          "--sns-topic-arn must be an SNS topic ARN such as "
          "arn:aws:sns:us-east-1:123456789012:bucket-events, not '" +
          arn + "'");
    }
  }
  return Status::Ok();
}

Result<std::unique_ptr<SnsService>> SnsService::Open(
    const std::vector<std::string>& topic_arns, std::function<void(const SnsDecision&)> observer) {
  DS_RETURN_IF_ERROR(CheckSnsTopicArns(topic_arns));
  SnsOptions options;
  options.topic_arns = topic_arns;
  HttpsGetOptions get_options;
  crypto::SnsTrustOptions trust;
  if (const char* host = std::getenv(kSnsTestHostEnv); host != nullptr && *host != '\0') {
    options.test_host = host;
    spdlog::warn(
        "{}={}: SNS certificates and SubscribeURLs are also accepted from this host "
        "(for tests only)",
        kSnsTestHostEnv, host);
  }
  if (const char* ca = std::getenv(kSnsTestCaFileEnv); ca != nullptr && *ca != '\0') {
    get_options.ca_file = ca;
    trust.ca_file = ca;
    spdlog::warn(
        "{}={}: SNS certificates are verified against this file instead of the system "
        "trust store (for tests only)",
        kSnsTestCaFileEnv, ca);
  }
  std::unique_ptr<SnsService> s(new SnsService());
  s->getter_ = std::make_unique<CurlHttpsGetter>(get_options);
  Result<std::unique_ptr<crypto::OpenSslSnsVerifier>> verifier =
      crypto::OpenSslSnsVerifier::Create(*s->getter_, trust);
  if (!verifier.ok()) return verifier.status();
  s->verifier_ = std::move(verifier).value();
  s->gate_ = std::make_unique<SnsGate>(std::move(options), *s->verifier_, *s->getter_,
                                       std::move(observer));
  return s;
}

}  // namespace ds::app
