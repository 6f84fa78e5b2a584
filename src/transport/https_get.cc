#include "transport/https_get.h"

#include <curl/curl.h>

#include <memory>
#include <mutex>

namespace ds {
namespace {

struct Sink {
  std::string body;
  size_t max = 0;
  bool too_big = false;
};

size_t AppendBounded(char* p, size_t size, size_t n, void* out) {
  Sink* sink = static_cast<Sink*>(out);
  if (sink->body.size() + size * n > sink->max) {
    sink->too_big = true;
    return 0;  // curl stops with CURLE_WRITE_ERROR
  }
  sink->body.append(p, size * n);
  return size * n;
}

}  // namespace

CurlHttpsGetter::CurlHttpsGetter(HttpsGetOptions options) : options_(std::move(options)) {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

Result<HttpsGetter::Answer> CurlHttpsGetter::Get(const std::string& url) {
  if (!HttpsAuthority(url)) return Status::Invalid("not an https URL");
  ++requests_;
  std::unique_ptr<CURL, void (*)(CURL*)> h(curl_easy_init(), curl_easy_cleanup);
  if (!h) return Status::Internal("curl_easy_init failed");
  Sink sink;
  sink.max = options_.max_body;
  char error[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(h.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(h.get(), CURLOPT_PROTOCOLS_STR, "https");
  curl_easy_setopt(h.get(), CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h.get(), CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(h.get(), CURLOPT_SSL_VERIFYHOST, 2L);
  if (!options_.ca_file.empty()) {
    curl_easy_setopt(h.get(), CURLOPT_CAINFO, options_.ca_file.c_str());
    curl_easy_setopt(h.get(), CURLOPT_CAPATH, nullptr);
  }
  curl_easy_setopt(h.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h.get(), CURLOPT_TIMEOUT_MS, static_cast<long>(options_.timeout_ms));
  curl_easy_setopt(h.get(), CURLOPT_WRITEFUNCTION, &AppendBounded);
  curl_easy_setopt(h.get(), CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(h.get(), CURLOPT_ERRORBUFFER, error);
  const CURLcode rc = curl_easy_perform(h.get());
  if (sink.too_big) {
    return Status::Invalid("the answer is over " + std::to_string(options_.max_body) + " bytes");
  }
  if (rc != CURLE_OK) {
    return Status::Unavailable(std::string("GET failed: ") +
                               (error[0] != '\0' ? error : curl_easy_strerror(rc)));
  }
  Answer a;
  curl_easy_getinfo(h.get(), CURLINFO_RESPONSE_CODE, &a.status);
  a.body = std::move(sink.body);
  return a;
}

}  // namespace ds
