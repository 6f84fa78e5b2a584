// S3Client's lifetime, its pool of curl handles and the name checks every operation makes
// first; the string helpers of client_internal.h. The operations are in the files listed there.
#include "s3/client.h"

#include <curl/curl.h>

#include <cctype>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

#include "common/version.h"
#include "s3/client_internal.h"

namespace ds {
namespace s3_internal {

std::string Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool StartsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

}  // namespace s3_internal

namespace {

void EnsureCurlGlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

}  // namespace

S3Client::Impl::Impl(S3Config c) : config(std::move(c)) {
  config_status = config.Validate();
  sigv4 = "aws:amz:" + config.region + ":s3";
  user_agent = std::string("delete-sync/") + Version();
}

S3Client::Impl::~Impl() {
  for (CURL* h : pool) curl_easy_cleanup(h);
}

CURL* S3Client::Impl::AcquireHandle() {
  {
    std::lock_guard<std::mutex> lock(pool_mu);
    if (!pool.empty()) {
      CURL* h = pool.back();
      pool.pop_back();
      return h;
    }
  }
  return curl_easy_init();
}

void S3Client::Impl::ReleaseHandle(CURL* h) {
  std::lock_guard<std::mutex> lock(pool_mu);
  if (pool.size() < kMaxIdleHandles) {
    pool.push_back(h);
  } else {
    curl_easy_cleanup(h);
  }
}

Status S3Client::Impl::CheckNames(const std::string& bucket, const std::string* key) const {
  DS_RETURN_IF_ERROR(config_status);
  if (bucket.empty()) return Status::Invalid("bucket name is empty");
  if (bucket.find('/') != std::string::npos) {
    return Status::Invalid("bucket name '" + bucket + "' contains '/'");
  }
  if (key != nullptr && key->empty()) {
    return Status::Invalid("object key is empty (bucket '" + bucket + "')");
  }
  return Status::Ok();
}

S3Client::S3Client(S3Config config) : impl_(std::make_unique<Impl>(std::move(config))) {
  EnsureCurlGlobalInit();
}

S3Client::~S3Client() = default;

const S3Config& S3Client::config() const { return impl_->config; }

void S3Client::set_list_page_size(int n) { impl_->page_size.store(n < 0 ? 0 : n); }

}  // namespace ds
