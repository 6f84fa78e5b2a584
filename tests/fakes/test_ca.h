// A certificate authority made by a test (GnuTLS): issues server and client certificates for
// TLS tests of the listeners. Header-only, so that unit and integration tests share it.
#pragma once

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include <cstdint>
#include <ctime>
#include <stdexcept>
#include <string>

namespace ds::testing {

struct TestCert {
  std::string cert_pem;
  std::string key_pem;
};

class TestCa {
 public:
  enum Purpose { kServer = 1, kClient = 2 };

  // A new self-signed CA with a fresh P-256 key.
  explicit TestCa(const std::string& common_name) {
    Check(gnutls_x509_privkey_init(&key_), "privkey_init");
    Check(gnutls_x509_privkey_generate(key_, GNUTLS_PK_ECDSA,
                                       GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0),
          "generate");
    Check(gnutls_x509_crt_init(&crt_), "crt_init");
    Fill(crt_, key_, common_name, 30 * 86400);
    Check(gnutls_x509_crt_set_basic_constraints(crt_, 1, -1), "ca constraints");
    Check(gnutls_x509_crt_set_key_usage(crt_, GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN),
          "ca usage");
    Check(gnutls_x509_crt_sign2(crt_, crt_, key_, GNUTLS_DIG_SHA256, 0), "self-sign");
  }

  // An existing CA (e.g. the RGW lab's, which the lab's radosgw trusts).
  TestCa(const std::string& cert_pem, const std::string& key_pem) {
    gnutls_datum_t c = Datum(cert_pem), k = Datum(key_pem);
    Check(gnutls_x509_crt_init(&crt_), "crt_init");
    Check(gnutls_x509_crt_import(crt_, &c, GNUTLS_X509_FMT_PEM), "import CA certificate");
    Check(gnutls_x509_privkey_init(&key_), "privkey_init");
    Check(gnutls_x509_privkey_import2(key_, &k, GNUTLS_X509_FMT_PEM, nullptr, 0), "import CA key");
  }

  ~TestCa() {
    gnutls_x509_crt_deinit(crt_);
    gnutls_x509_privkey_deinit(key_);
  }
  TestCa(const TestCa&) = delete;
  TestCa& operator=(const TestCa&) = delete;

  std::string cert_pem() const { return CrtPem(crt_); }

  // A leaf certificate for 127.0.0.1, ::1 and localhost, valid from a minute ago for
  // `valid_s` seconds (negative: already expired), with the extended key usage of `purposes`.
  TestCert Issue(const std::string& common_name, int purposes = kServer,
                 int64_t valid_s = 86400) const {
    gnutls_x509_privkey_t key = nullptr;
    gnutls_x509_crt_t crt = nullptr;
    Check(gnutls_x509_privkey_init(&key), "privkey_init");
    Check(gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
                                       GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0),
          "generate");
    Check(gnutls_x509_crt_init(&crt), "crt_init");
    Fill(crt, key, common_name, valid_s);
    Check(gnutls_x509_crt_set_basic_constraints(crt, 0, -1), "constraints");
    Check(gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE), "usage");
    if (purposes & kServer) {
      Check(gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER, 0), "purpose");
    }
    if (purposes & kClient) {
      Check(gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_CLIENT, 0), "purpose");
    }
    const unsigned char v4[4] = {127, 0, 0, 1};
    unsigned char v6[16] = {};
    v6[15] = 1;
    Check(gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, v4, sizeof v4,
                                               GNUTLS_FSAN_APPEND),
          "san");
    Check(gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, v6, sizeof v6,
                                               GNUTLS_FSAN_APPEND),
          "san");
    Check(gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, "localhost", 9,
                                               GNUTLS_FSAN_APPEND),
          "san");
    unsigned char id[64];
    size_t id_size = sizeof id;
    if (gnutls_x509_crt_get_subject_key_id(crt_, id, &id_size, nullptr) >= 0) {
      Check(gnutls_x509_crt_set_authority_key_id(crt, id, id_size), "authority key id");
    }
    Check(gnutls_x509_crt_sign2(crt, crt_, key_, GNUTLS_DIG_SHA256, 0), "sign");
    TestCert out{CrtPem(crt), KeyPem(key)};
    gnutls_x509_crt_deinit(crt);
    gnutls_x509_privkey_deinit(key);
    return out;
  }

 private:
  static void Check(int rc, const char* what) {
    if (rc < 0)
      throw std::runtime_error(std::string("test CA: ") + what + ": " + gnutls_strerror(rc));
  }
  static gnutls_datum_t Datum(const std::string& s) {
    return {reinterpret_cast<unsigned char*>(const_cast<char*>(s.data())),
            static_cast<unsigned int>(s.size())};
  }
  static void Fill(gnutls_x509_crt_t crt, gnutls_x509_privkey_t key, const std::string& cn,
                   int64_t valid_s) {
    static unsigned serial_counter = 0;
    const std::time_t now = std::time(nullptr);
    unsigned char serial[8];
    uint64_t s = (static_cast<uint64_t>(now) << 16) ^ ++serial_counter;
    for (int i = 7; i >= 0; --i, s >>= 8) serial[i] = static_cast<unsigned char>(s);
    serial[0] &= 0x7f;
    Check(gnutls_x509_crt_set_version(crt, 3), "version");
    Check(gnutls_x509_crt_set_serial(crt, serial, sizeof serial), "serial");
    const std::time_t start = valid_s < 0 ? now + valid_s - 3600 : now - 60;
    Check(gnutls_x509_crt_set_activation_time(crt, start), "activation");
    Check(gnutls_x509_crt_set_expiration_time(crt, now + valid_s), "expiration");
    Check(gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, cn.data(),
                                        static_cast<unsigned>(cn.size())),
          "dn");
    Check(gnutls_x509_crt_set_key(crt, key), "set key");
    unsigned char id[64];
    size_t id_size = sizeof id;
    Check(gnutls_x509_crt_get_key_id(crt, 0, id, &id_size), "key id");
    Check(gnutls_x509_crt_set_subject_key_id(crt, id, id_size), "subject key id");
  }
  static std::string CrtPem(gnutls_x509_crt_t crt) {
    gnutls_datum_t d{};
    Check(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &d), "export");
    std::string s(reinterpret_cast<char*>(d.data), d.size);
    gnutls_free(d.data);
    return s;
  }
  static std::string KeyPem(gnutls_x509_privkey_t key) {
    gnutls_datum_t d{};
    Check(
        gnutls_x509_privkey_export2_pkcs8(key, GNUTLS_X509_FMT_PEM, nullptr, GNUTLS_PKCS_PLAIN, &d),
        "export key");
    std::string s(reinterpret_cast<char*>(d.data), d.size);
    gnutls_free(d.data);
    return s;
  }

  gnutls_x509_crt_t crt_ = nullptr;
  gnutls_x509_privkey_t key_ = nullptr;
};

}  // namespace ds::testing
