// SnsSignatureVerifier (core/sns.h) on OpenSSL: fetches the signing certificate (through an
// HttpsGetter), verifies it against the trust anchors, and checks RSA signatures with it
// (SignatureVersion 1: SHA1withRSA, 2: SHA256withRSA).
//
// The certificate: the first PEM certificate of the answer; any further ones are untrusted
// intermediates. It must chain to a trust anchor (the system trust store, or in tests the CA file
// of SnsTrustOptions::ca_file), be within its validity period, and hold an RSA key; otherwise
// kBadCertificate. A verified certificate is cached per URL (at most max_certificates, the
// oldest dropped first) until it expires: a message signed with a known certificate costs no
// request. A certificate that failed is not cached. Thread-safe.
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <cstdint>
#include <ctime>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "core/sns.h"

namespace ds::crypto {

struct SnsTrustOptions {
  std::string ca_file;  // "": the system trust store; tests only (DS_TEST_SNS_CA_FILE)
  size_t max_certificates = 16;
};

class OpenSslSnsVerifier : public SnsSignatureVerifier {
 public:
  // kInvalidArgument when `ca_file` is set and cannot be loaded. `getter` must outlive it.
  static Result<std::unique_ptr<OpenSslSnsVerifier>> Create(HttpsGetter& getter,
                                                            SnsTrustOptions options);
  ~OpenSslSnsVerifier() override;

  // A non-OK Status (kUnavailable) when the certificate could not be fetched (no answer, or a
  // 5xx); a 4xx answer or a body that holds no certificate is kBadCertificate.
  Result<SignatureCheck> Verify(const std::string& cert_url, int version, std::string_view data,
                                const std::string& signature_b64) override;

  // Certificates fetched (cache misses), for tests and metrics.
  int64_t fetches() const;

 private:
  struct Key {
    std::shared_ptr<EVP_PKEY> key;
    std::time_t not_after = 0;
  };
  OpenSslSnsVerifier(HttpsGetter& getter, SnsTrustOptions options, X509_STORE* store);
  // The verified key of the certificate at `url`: from the cache, else fetched and verified.
  Result<std::shared_ptr<EVP_PKEY>> KeyFor(const std::string& url, bool* bad_certificate);

  HttpsGetter& getter_;
  const SnsTrustOptions options_;
  X509_STORE* store_;  // owned; X509_STORE is safe to share between verifications

  mutable std::mutex mu_;
  std::map<std::string, Key> keys_;  // GUARDED_BY(mu_)
  std::deque<std::string> order_;    // GUARDED_BY(mu_): insertion order, for eviction
  int64_t fetches_ = 0;              // GUARDED_BY(mu_)
};

}  // namespace ds::crypto
