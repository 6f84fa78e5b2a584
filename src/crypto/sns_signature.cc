#include "crypto/sns_signature.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include <optional>
#include <vector>

namespace ds::crypto {
namespace {

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, Deleter<X509_STORE_CTX, X509_STORE_CTX_free>>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, Deleter<EVP_MD_CTX, EVP_MD_CTX_free>>;

void FreeX509Stack(STACK_OF(X509) * s) { sk_X509_pop_free(s, X509_free); }
using X509StackPtr = std::unique_ptr<STACK_OF(X509), Deleter<STACK_OF(X509), FreeX509Stack>>;

// The bytes of base64 `text` (standard alphabet, padded, no line breaks needed); nullopt when it
// is not base64.
std::optional<std::string> DecodeBase64(const std::string& text) {
  std::string out(text.size() / 4 * 3 + 3, '\0');
  EVP_ENCODE_CTX* ctx = EVP_ENCODE_CTX_new();
  if (ctx == nullptr) return std::nullopt;
  EVP_DecodeInit(ctx);
  int n = 0, tail = 0;
  const int rc = EVP_DecodeUpdate(ctx, reinterpret_cast<unsigned char*>(out.data()), &n,
                                  reinterpret_cast<const unsigned char*>(text.data()),
                                  static_cast<int>(text.size()));
  const int end =
      rc < 0 ? -1 : EVP_DecodeFinal(ctx, reinterpret_cast<unsigned char*>(out.data()) + n, &tail);
  EVP_ENCODE_CTX_free(ctx);
  if (rc < 0 || end < 0) return std::nullopt;
  out.resize(static_cast<size_t>(n + tail));
  return out;
}

// Seconds since the epoch of an ASN1_TIME; 0 when it cannot be read.
std::time_t EpochOf(const ASN1_TIME* t) {
  struct tm tm = {};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return 0;
  return timegm(&tm);
}

}  // namespace

Result<std::unique_ptr<OpenSslSnsVerifier>> OpenSslSnsVerifier::Create(HttpsGetter& getter,
                                                                       SnsTrustOptions options) {
  X509_STORE* store = X509_STORE_new();
  if (store == nullptr) return Status::Internal("X509_STORE_new failed");
  const int loaded = options.ca_file.empty() ? X509_STORE_set_default_paths(store)
                                             : X509_STORE_load_file(store, options.ca_file.c_str());
  if (loaded != 1) {
    X509_STORE_free(store);
    ERR_clear_error();
    return Status::Invalid(options.ca_file.empty()
                               ? "cannot load the system trust store"
                               : "cannot load the SNS trust anchors from " + options.ca_file);
  }
  return std::unique_ptr<OpenSslSnsVerifier>(
      new OpenSslSnsVerifier(getter, std::move(options), store));
}

OpenSslSnsVerifier::OpenSslSnsVerifier(HttpsGetter& getter, SnsTrustOptions options,
                                       X509_STORE* store)
    : getter_(getter), options_(std::move(options)), store_(store) {}

OpenSslSnsVerifier::~OpenSslSnsVerifier() { X509_STORE_free(store_); }

int64_t OpenSslSnsVerifier::fetches() const {
  std::lock_guard<std::mutex> l(mu_);
  return fetches_;
}

Result<std::shared_ptr<EVP_PKEY>> OpenSslSnsVerifier::KeyFor(const std::string& url,
                                                             bool* bad_certificate) {
  *bad_certificate = false;
  const std::time_t now = std::time(nullptr);
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = keys_.find(url);
    if (it != keys_.end() && it->second.not_after > now) return it->second.key;
    ++fetches_;
  }
  Result<HttpsGetter::Answer> got = getter_.Get(url);
  if (!got.ok()) {
    return Status::Unavailable("cannot fetch the SNS signing certificate: " +
                               got.status().message());
  }
  if (got->status >= 500) {
    return Status::Unavailable("the SNS signing certificate's host answered HTTP " +
                               std::to_string(got->status));
  }
  auto bad = [&]() -> Result<std::shared_ptr<EVP_PKEY>> {
    ERR_clear_error();
    *bad_certificate = true;
    return std::shared_ptr<EVP_PKEY>();
  };
  if (got->status != 200) return bad();
  BioPtr bio(BIO_new_mem_buf(got->body.data(), static_cast<int>(got->body.size())));
  if (!bio) return Status::Internal("BIO_new_mem_buf failed");
  X509Ptr leaf(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!leaf) return bad();
  X509StackPtr chain(sk_X509_new_null());
  while (X509* more = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    sk_X509_push(chain.get(), more);
  }
  ERR_clear_error();  // the end of the PEM text
  StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!ctx || X509_STORE_CTX_init(ctx.get(), store_, leaf.get(), chain.get()) != 1) {
    return Status::Internal("X509_STORE_CTX_init failed");
  }
  if (X509_verify_cert(ctx.get()) != 1) return bad();
  EVP_PKEY* key = X509_get_pubkey(leaf.get());
  if (key == nullptr) return bad();
  std::shared_ptr<EVP_PKEY> shared(key, EVP_PKEY_free);
  if (EVP_PKEY_base_id(key) != EVP_PKEY_RSA) return bad();
  const std::time_t not_after = EpochOf(X509_get0_notAfter(leaf.get()));
  std::lock_guard<std::mutex> l(mu_);
  if (keys_.count(url) == 0) {
    order_.push_back(url);
    while (order_.size() > options_.max_certificates) {
      keys_.erase(order_.front());
      order_.pop_front();
    }
  }
  keys_[url] = Key{shared, not_after};
  return shared;
}

Result<SignatureCheck> OpenSslSnsVerifier::Verify(const std::string& cert_url, int version,
                                                  std::string_view data,
                                                  const std::string& signature_b64) {
  const EVP_MD* md = version == 1 ? EVP_sha1() : version == 2 ? EVP_sha256() : nullptr;
  if (md == nullptr) return SignatureCheck::kBadSignature;
  bool bad_certificate = false;
  Result<std::shared_ptr<EVP_PKEY>> key = KeyFor(cert_url, &bad_certificate);
  if (!key.ok()) return key.status();
  if (bad_certificate) return SignatureCheck::kBadCertificate;
  std::optional<std::string> signature = DecodeBase64(signature_b64);
  if (!signature || signature->empty()) return SignatureCheck::kBadSignature;
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, md, nullptr, key->get()) != 1) {
    ERR_clear_error();
    return Status::Internal("EVP_DigestVerifyInit failed");
  }
  const int rc = EVP_DigestVerify(
      ctx.get(), reinterpret_cast<const unsigned char*>(signature->data()), signature->size(),
      reinterpret_cast<const unsigned char*>(data.data()), data.size());
  ERR_clear_error();
  return rc == 1 ? SignatureCheck::kValid : SignatureCheck::kBadSignature;
}

}  // namespace ds::crypto
