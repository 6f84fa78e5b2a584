#include "transport/tls_credentials.h"

#include <gnutls/x509.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>

namespace ds {

namespace {

Result<std::string> ReadText(const std::string& path, const std::string& flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Status::Invalid("cannot read " + flag + " " + path + ": " + std::strerror(errno));
  }
  std::ostringstream s;
  s << in.rdbuf();
  if (s.str().empty()) return Status::Invalid(flag + " " + path + " is empty");
  return s.str();
}

gnutls_datum_t Datum(const std::string& s) {
  return {reinterpret_cast<unsigned char*>(const_cast<char*>(s.data())),
          static_cast<unsigned int>(s.size())};
}

// GnuTLS's message without its final full stop (it is quoted inside our sentences).
std::string Why(int rc) {
  std::string s = gnutls_strerror(rc);
  while (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

// The DER of a public key, to compare the key's with the certificate's.
std::string PubkeyDer(gnutls_pubkey_t key) {
  gnutls_datum_t out{};
  if (gnutls_pubkey_export2(key, GNUTLS_X509_FMT_DER, &out) != 0) return {};
  std::string der(reinterpret_cast<char*>(out.data), out.size);
  gnutls_free(out.data);
  return der;
}

}  // namespace

struct TlsCredentials::Pair {
  std::vector<gnutls_pcert_st> certs;
  gnutls_privkey_t key = nullptr;
  TlsCertificateInfo info;
  ~Pair() {
    for (auto& c : certs) gnutls_pcert_deinit(&c);
    if (key) gnutls_privkey_deinit(key);
  }
};

TlsCredentials::~TlsCredentials() {
  if (client_trust_) gnutls_x509_trust_list_deinit(client_trust_, 1);
}

Result<std::shared_ptr<TlsCredentials::Pair>> TlsCredentials::ReadPair(const TlsFiles& files) {
  const std::string cert_flag = files.flag_prefix + "-tls-cert";
  const std::string key_flag = files.flag_prefix + "-tls-key";
  Result<std::string> cert_pem = ReadText(files.cert_file, cert_flag);
  if (!cert_pem.ok()) return cert_pem.status();
  Result<std::string> key_pem = ReadText(files.key_file, key_flag);
  if (!key_pem.ok()) return key_pem.status();

  auto pair = std::make_shared<Pair>();
  // The chain: every certificate of the file, leaf first.
  gnutls_x509_crt_t* crts = nullptr;
  unsigned int n = 0;
  gnutls_datum_t cert_datum = Datum(*cert_pem);
  int rc = gnutls_x509_crt_list_import2(&crts, &n, &cert_datum, GNUTLS_X509_FMT_PEM, 0);
  if (rc < 0 || n == 0) {
    return Status::Invalid(cert_flag + " " + files.cert_file +
                           " holds no PEM certificate: " + (rc < 0 ? Why(rc) : "none found"));
  }
  pair->certs.resize(n);
  unsigned int imported = 0;
  for (unsigned int i = 0; i < n; ++i) {
    if (rc >= 0) {
      rc = gnutls_pcert_import_x509(&pair->certs[i], crts[i], 0);
      if (rc >= 0) ++imported;
    }
  }
  if (n > 0) {
    char dn[512];
    size_t dn_size = sizeof dn;
    if (gnutls_x509_crt_get_dn(crts[0], dn, &dn_size) == 0) pair->info.subject = dn;
    pair->info.not_before = static_cast<int64_t>(gnutls_x509_crt_get_activation_time(crts[0]));
    pair->info.not_after = static_cast<int64_t>(gnutls_x509_crt_get_expiration_time(crts[0]));
  }
  for (unsigned int i = 0; i < n; ++i) gnutls_x509_crt_deinit(crts[i]);
  gnutls_free(crts);
  pair->certs.resize(imported);
  if (rc < 0) {
    return Status::Invalid(cert_flag + " " + files.cert_file + ": " + Why(rc));
  }

  rc = gnutls_privkey_init(&pair->key);
  if (rc < 0) return Status::Internal("gnutls_privkey_init: " + Why(rc));
  gnutls_datum_t key_datum = Datum(*key_pem);
  rc = gnutls_privkey_import_x509_raw(pair->key, &key_datum, GNUTLS_X509_FMT_PEM, nullptr, 0);
  if (rc < 0) {
    return Status::Invalid(
        key_flag + " " + files.key_file +
        " holds no usable PEM private key (an unencrypted key is needed): " + Why(rc));
  }

  // The key must be the certificate's: otherwise every handshake would fail later.
  gnutls_pubkey_t from_key = nullptr;
  gnutls_pubkey_init(&from_key);
  rc = gnutls_pubkey_import_privkey(from_key, pair->key, 0, 0);
  const std::string key_der = rc >= 0 ? PubkeyDer(from_key) : std::string();
  gnutls_pubkey_deinit(from_key);
  const std::string cert_der = PubkeyDer(pair->certs[0].pubkey);
  if (key_der.empty() || key_der != cert_der) {
    return Status::Invalid(key_flag + " " + files.key_file +
                           " is not the key of the certificate in " + cert_flag + " " +
                           files.cert_file);
  }
  return pair;
}

Result<std::shared_ptr<TlsCredentials>> TlsCredentials::Load(const TlsFiles& files) {
  std::shared_ptr<TlsCredentials> creds(new TlsCredentials(files));
  Result<std::shared_ptr<Pair>> pair = ReadPair(files);
  if (!pair.ok()) return pair.status();
  creds->current_ = *pair;

  if (!files.client_ca_file.empty()) {
    const std::string flag = files.flag_prefix + "-client-ca";
    Result<std::string> pem = ReadText(files.client_ca_file, flag);
    if (!pem.ok()) return pem.status();
    int rc = gnutls_x509_trust_list_init(&creds->client_trust_, 0);
    if (rc < 0) return Status::Internal("gnutls_x509_trust_list_init: " + Why(rc));
    gnutls_datum_t d = Datum(*pem);
    rc = gnutls_x509_trust_list_add_trust_mem(creds->client_trust_, &d, nullptr,
                                              GNUTLS_X509_FMT_PEM, 0, 0);
    if (rc <= 0) {
      return Status::Invalid(flag + " " + files.client_ca_file + " holds no PEM certificate" +
                             (rc < 0 ? ": " + Why(rc) : std::string()));
    }
    creds->client_ca_pem_ = *pem;
  }
  return creds;
}

Status TlsCredentials::Reload() {
  Result<std::shared_ptr<Pair>> pair = ReadPair(files_);
  if (!pair.ok()) return pair.status();
  std::lock_guard<std::mutex> l(mu_);
  retired_.push_back(std::move(current_));
  current_ = *pair;
  return Status::Ok();
}

void TlsCredentials::Select(gnutls_pcert_st** pcert, unsigned int* pcert_length,
                            gnutls_privkey_t* key) const {
  std::lock_guard<std::mutex> l(mu_);
  *pcert = current_->certs.data();
  *pcert_length = static_cast<unsigned int>(current_->certs.size());
  *key = current_->key;
}

TlsCertificateInfo TlsCredentials::info() const {
  std::lock_guard<std::mutex> l(mu_);
  return current_->info;
}

Status TlsCredentials::VerifyClient(gnutls_session_t session) const {
  if (client_trust_ == nullptr) return Status::Ok();
  unsigned int n = 0;
  const gnutls_datum_t* peers = gnutls_certificate_get_peers(session, &n);
  if (peers == nullptr || n == 0) {
    return Status::Denied("no client certificate (" + files_.flag_prefix +
                          "-client-ca requires one)");
  }
  std::vector<gnutls_x509_crt_t> chain(n, nullptr);
  Status st = Status::Ok();
  for (unsigned int i = 0; i < n && st.ok(); ++i) {
    int rc = gnutls_x509_crt_init(&chain[i]);
    if (rc >= 0) rc = gnutls_x509_crt_import(chain[i], &peers[i], GNUTLS_X509_FMT_DER);
    if (rc < 0) st = Status::Denied("unreadable client certificate: " + Why(rc));
  }
  if (st.ok()) {
    gnutls_typed_vdata_st purpose{};
    purpose.type = GNUTLS_DT_KEY_PURPOSE_OID;
    purpose.data = reinterpret_cast<unsigned char*>(const_cast<char*>(GNUTLS_KP_TLS_WWW_CLIENT));
    unsigned int voutput = 0;
    int rc = gnutls_x509_trust_list_verify_crt2(client_trust_, chain.data(), n, &purpose, 1, 0,
                                                &voutput, nullptr);
    if (rc < 0) {
      st = Status::Denied("client certificate not verified: " + Why(rc));
    } else if (voutput != 0) {
      gnutls_datum_t text{};
      std::string reason = "rejected";
      if (gnutls_certificate_verification_status_print(voutput, GNUTLS_CRT_X509, &text, 0) == 0) {
        reason.assign(reinterpret_cast<char*>(text.data), text.size);
        gnutls_free(text.data);
      }
      st = Status::Denied("client certificate not accepted by " + files_.flag_prefix +
                          "-client-ca: " + reason);
    }
  }
  for (auto* c : chain) {
    if (c) gnutls_x509_crt_deinit(c);
  }
  return st;
}

}  // namespace ds
