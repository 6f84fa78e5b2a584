// HttpsGetter (core/sns.h) on libcurl: one GET over HTTPS, for an SNS signing certificate or a
// SubscribeURL. https only (an http:// URL is refused without a connection), no redirects
// followed, the server's certificate verified against the system trust store (or, in tests,
// against the CA file of HttpsGetOptions::ca_file), a bounded body and a deadline.
// Thread-safe: each Get uses its own handle.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/sns.h"

namespace ds {

struct HttpsGetOptions {
  std::string ca_file;          // "": the system trust store; tests only (DS_TEST_SNS_CA_FILE)
  int64_t timeout_ms = 10000;   // the whole request
  size_t max_body = 64 * 1024;  // a longer answer is an error (a certificate is ~2 KiB)
};

class CurlHttpsGetter : public HttpsGetter {
 public:
  explicit CurlHttpsGetter(HttpsGetOptions options);

  // kUnavailable when no answer came (connection, TLS, timeout); kInvalidArgument for a URL
  // that is not https or an answer over max_body.
  Result<Answer> Get(const std::string& url) override;

  // Requests made (answered or not).
  int64_t requests() const { return requests_; }

 private:
  const HttpsGetOptions options_;
  std::atomic<int64_t> requests_{0};
};

}  // namespace ds
