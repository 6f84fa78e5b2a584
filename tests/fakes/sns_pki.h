// A test PKI for SNS message signatures (OpenSSL): a CA, an RSA signing certificate it issued
// (as SNS's SigningCertURL serves), a TLS server certificate for 127.0.0.1 it issued (for the
// HTTPS server that serves the signing certificate and answers SubscribeURLs), and a rogue
// self-signed RSA certificate that no trust anchor vouches for. Header-only.
#pragma once

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

namespace ds::testing {

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct X509Free {
  void operator()(X509* p) const { X509_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;

inline void SslCheck(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("test PKI: ") + what);
}

inline PkeyPtr NewRsaKey() {
  PkeyPtr key(EVP_RSA_gen(2048));
  SslCheck(key != nullptr, "RSA key generation");
  return key;
}

inline void AddExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  SslCheck(ext != nullptr, "extension");
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

// A certificate for `key` named `cn`, issued by `issuer` with `issuer_key` (null: self-signed),
// valid from an hour ago for a day; `ca` makes it a CA; `san` (e.g. "IP:127.0.0.1") is its
// subjectAltName when not empty.
inline X509Ptr MakeCert(EVP_PKEY* key, const std::string& cn, X509* issuer, EVP_PKEY* issuer_key,
                        bool ca, const std::string& san = "") {
  static long serial = 1;
  X509Ptr cert(X509_new());
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), ++serial);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 86400);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509* signer = issuer != nullptr ? issuer : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(signer));
  AddExtension(cert.get(), signer, NID_basic_constraints, ca ? "critical,CA:TRUE" : "CA:FALSE");
  AddExtension(cert.get(), signer, NID_key_usage,
               ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature,keyEncipherment");
  AddExtension(cert.get(), signer, NID_subject_key_identifier, "hash");
  if (!san.empty()) AddExtension(cert.get(), signer, NID_subject_alt_name, san.c_str());
  SslCheck(X509_sign(cert.get(), issuer_key != nullptr ? issuer_key : key, EVP_sha256()) > 0,
           "sign certificate");
  return cert;
}

inline std::string PemOf(X509* cert) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, cert);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(bio);
  return out;
}

// Base64 of the RSA signature of `data` with SHA-1 (`version` 1) or SHA-256 (2), as SNS sends.
inline std::string SignBase64(EVP_PKEY* key, int version, std::string_view data) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  SslCheck(
      EVP_DigestSignInit(ctx, nullptr, version == 1 ? EVP_sha1() : EVP_sha256(), nullptr, key) == 1,
      "DigestSignInit");
  size_t n = 0;
  const auto* in = reinterpret_cast<const unsigned char*>(data.data());
  SslCheck(EVP_DigestSign(ctx, nullptr, &n, in, data.size()) == 1, "DigestSign size");
  std::string sig(n, '\0');
  SslCheck(
      EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &n, in, data.size()) == 1,
      "DigestSign");
  EVP_MD_CTX_free(ctx);
  sig.resize(n);
  std::string out(4 * ((n + 2) / 3) + 1, '\0');
  int m = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(sig.data()), static_cast<int>(n));
  out.resize(static_cast<size_t>(m));
  return out;
}

class SnsTestPki {
 public:
  SnsTestPki()
      : ca_key_(NewRsaKey()),
        ca_(MakeCert(ca_key_.get(), "delete-sync test SNS CA", nullptr, nullptr, true)),
        signer_key_(NewRsaKey()),
        signer_(MakeCert(signer_key_.get(), "sns.amazonaws.com", ca_.get(), ca_key_.get(), false,
                         "DNS:sns.amazonaws.com")),
        tls_key_(NewRsaKey()),
        tls_(MakeCert(tls_key_.get(), "127.0.0.1", ca_.get(), ca_key_.get(), false,
                      "IP:127.0.0.1,DNS:localhost")),
        rogue_key_(NewRsaKey()),
        rogue_(MakeCert(rogue_key_.get(), "sns.amazonaws.com", nullptr, nullptr, false,
                        "DNS:sns.amazonaws.com")) {}

  std::string ca_pem() const { return PemOf(ca_.get()); }
  std::string signer_pem() const { return PemOf(signer_.get()); }
  std::string rogue_pem() const { return PemOf(rogue_.get()); }
  X509* tls_cert() const { return tls_.get(); }
  EVP_PKEY* tls_key() const { return tls_key_.get(); }
  EVP_PKEY* signer_key() const { return signer_key_.get(); }
  EVP_PKEY* rogue_key() const { return rogue_key_.get(); }

 private:
  PkeyPtr ca_key_;
  X509Ptr ca_;
  PkeyPtr signer_key_;
  X509Ptr signer_;
  PkeyPtr tls_key_;
  X509Ptr tls_;
  PkeyPtr rogue_key_;
  X509Ptr rogue_;
};

}  // namespace ds::testing
