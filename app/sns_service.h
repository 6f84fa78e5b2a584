// The webhook's SNS screening as serve opens it: --sns-topic-arn checked, and the SnsGate
// (core/sns.h) on its adapters: a libcurl HTTPS getter (transport/https_get.h) and the OpenSSL
// signature verifier (crypto/sns_signature.h), both trusting the system trust store.
//
// Tests only: DS_TEST_SNS_HOST (host:port) is allowed as a SigningCertURL and SubscribeURL host
// besides sns.<region>.amazonaws.com, and DS_TEST_SNS_CA_FILE (a PEM file) replaces the system
// trust store, for the HTTPS fetches and for the signing certificate. Each is logged as a
// warning when set. Never set them in production: they let that host sign SNS messages.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "core/sns.h"
#include "crypto/sns_signature.h"
#include "transport/https_get.h"

namespace ds::app {

inline constexpr const char* kSnsTestHostEnv = "DS_TEST_SNS_HOST";
inline constexpr const char* kSnsTestCaFileEnv = "DS_TEST_SNS_CA_FILE";

// kInvalidArgument, naming the value, unless each of `arns` is an SNS topic ARN
// (arn:<partition>:sns:<region>:<account>:<topic>).
Status CheckSnsTopicArns(const std::vector<std::string>& arns);

// The gate and its adapters, owned together.
class SnsService {
 public:
  // Reads the test-only environment. kInvalidArgument when DS_TEST_SNS_CA_FILE cannot be loaded
  // or the system trust store cannot be.
  static Result<std::unique_ptr<SnsService>> Open(
      const std::vector<std::string>& topic_arns,
      std::function<void(const SnsDecision&)> observer = nullptr);

  SnsGate& gate() { return *gate_; }
  // Certificates fetched so far (the cache's misses).
  int64_t certificate_fetches() const { return verifier_->fetches(); }

 private:
  SnsService() = default;
  std::unique_ptr<CurlHttpsGetter> getter_;
  std::unique_ptr<crypto::OpenSslSnsVerifier> verifier_;
  std::unique_ptr<SnsGate> gate_;
};

}  // namespace ds::app
