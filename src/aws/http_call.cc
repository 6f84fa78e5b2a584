// Perform and FormEncode of http_call.h, over libcurl.
#include "aws/http_call.h"

#include <curl/curl.h>

#include <memory>
#include <mutex>
#include <string>

namespace ds::aws {
namespace {

constexpr size_t kMaxAnswer = 1024 * 1024;

struct AnswerSink {
  std::string* body;
  bool overflow = false;
};

size_t OnAnswerBody(char* buf, size_t size, size_t n, void* userdata) {
  auto* sink = static_cast<AnswerSink*>(userdata);
  size_t len = size * n;
  if (sink->body->size() + len > kMaxAnswer) {
    sink->overflow = true;
    return CURL_WRITEFUNC_ERROR;
  }
  sink->body->append(buf, len);
  return len;
}

void CurlGlobalInitOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct CurlFree {
  void operator()(CURL* h) const { curl_easy_cleanup(h); }
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

}  // namespace

Result<HttpAnswer> Perform(const HttpCall& call) {
  CurlGlobalInitOnce();
  std::unique_ptr<CURL, CurlFree> h(curl_easy_init());
  if (!h) return Status::Internal(call.what + ": curl_easy_init failed");
  curl_slist* list = nullptr;
  for (const std::string& header : call.headers) list = curl_slist_append(list, header.c_str());
  std::unique_ptr<curl_slist, CurlFree> headers(list);

  HttpAnswer answer;
  AnswerSink sink{&answer.body};
  char errbuf[CURL_ERROR_SIZE] = {0};
  CURL* c = h.get();
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_URL, call.url.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  if (call.no_proxy) curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(call.connect_timeout.count()));
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(call.timeout.count()));
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &OnAnswerBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
  if (!call.ca_bundle.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, call.ca_bundle.c_str());
  if (call.method == "PUT" || call.method == "POST") {
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(call.body.size()));
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, call.body.data());
    if (call.method == "PUT") curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "PUT");
  } else {
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
  }

  CURLcode rc = curl_easy_perform(c);
  if (sink.overflow) {
    return Status::Invalid(call.what + ": answer larger than " + std::to_string(kMaxAnswer) +
                           " bytes");
  }
  if (rc != CURLE_OK) {
    std::string text = curl_easy_strerror(rc);
    if (errbuf[0] != '\0') text += std::string(": ") + errbuf;
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    if (rc == CURLE_URL_MALFORMAT || rc == CURLE_UNSUPPORTED_PROTOCOL) {
      return Status::Invalid(call.what + ": " + text);
    }
    return Status::Unavailable(call.what + ": " + text);
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &answer.status);
  return answer;
}

std::string FormEncode(const std::string& value) {
  CurlGlobalInitOnce();
  char* out = curl_easy_escape(nullptr, value.data(), static_cast<int>(value.size()));
  if (out == nullptr) return "";
  std::string s(out);
  curl_free(out);
  return s;
}

}  // namespace ds::aws
