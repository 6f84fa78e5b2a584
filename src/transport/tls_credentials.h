// The certificate, key and optional client CA of a TLS listener (issue 19): the webhook's
// --webhook-tls-cert/--webhook-tls-key/--webhook-client-ca and the same for --metrics-listen.
//
// Contract:
//   - Load reads and checks everything before the listener starts: each file readable, the
//     certificate chain PEM (leaf first), the key PEM (unencrypted PKCS#1/PKCS#8/SEC1), the key
//     matching the leaf certificate, the client CA a PEM list of one or more certificates. Any
//     failure is an error naming the setting and the file; nothing is served.
//   - Reload re-reads the certificate and key (rotation without a restart, on SIGHUP). New TLS
//     handshakes use the new pair at once; connections already open keep theirs. A failed reload
//     changes nothing: the previous pair stays in use and the error says why.
//   - The client CA is read once, at Load (a change needs a restart). When set, every connection
//     must present a certificate that chains to it and is valid for TLS client authentication.
//   - Thread-safe: Select is called on the listener's I/O thread during handshakes while
//     Reload runs on the signal-handling thread.
#pragma once

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/status.h"

namespace ds {

struct TlsFiles {
  std::string cert_file;       // PEM: the server certificate, then any intermediates
  std::string key_file;        // PEM: its private key
  std::string client_ca_file;  // PEM: CAs whose client certificates are accepted ("": none)
  // Flag names used in errors: "--webhook" gives --webhook-tls-cert, --webhook-tls-key and
  // --webhook-client-ca; "--metrics" the --metrics-* ones.
  std::string flag_prefix = "--webhook";
};

// What a loaded certificate says, for logs and metrics.
struct TlsCertificateInfo {
  std::string subject;
  int64_t not_before = 0;  // seconds since the epoch
  int64_t not_after = 0;
};

class TlsCredentials {
 public:
  ~TlsCredentials();
  TlsCredentials(const TlsCredentials&) = delete;
  TlsCredentials& operator=(const TlsCredentials&) = delete;

  static Result<std::shared_ptr<TlsCredentials>> Load(const TlsFiles& files);

  // Re-reads the certificate and key files; on failure keeps the current pair.
  Status Reload();

  // The pair for a new handshake (gnutls_certificate_retrieve_function2's out-parameters). The
  // pointers stay valid for the life of this object: pairs replaced by Reload are kept.
  void Select(gnutls_pcert_st** pcert, unsigned int* pcert_length, gnutls_privkey_t* key) const;

  bool requires_client_certificate() const { return !client_ca_pem_.empty(); }
  // The client CA file's text, for the server to name acceptable CAs in its request.
  const std::string& client_ca_pem() const { return client_ca_pem_; }
  // Ok when the session's peer presented a certificate chaining to the client CA and valid for
  // client authentication now; kUnauthenticated with the reason otherwise.
  Status VerifyClient(gnutls_session_t session) const;

  TlsCertificateInfo info() const;
  const TlsFiles& files() const { return files_; }

  struct Pair;

 private:
  explicit TlsCredentials(TlsFiles files) : files_(std::move(files)) {}
  static Result<std::shared_ptr<Pair>> ReadPair(const TlsFiles& files);

  TlsFiles files_;
  std::string client_ca_pem_;
  gnutls_x509_trust_list_t client_trust_ = nullptr;
  mutable std::mutex mu_;
  std::shared_ptr<Pair> current_;
  std::vector<std::shared_ptr<Pair>> retired_;  // still referenced by open handshakes
};

}  // namespace ds
