#include "tls_settings.h"

#include <spdlog/spdlog.h>

#include <ctime>

#include "common/clock.h"

namespace ds::app {

namespace {

std::string UtcDate(int64_t seconds) { return FormatUtcMillis(seconds * 1000); }

}  // namespace

void TlsSettings::Register(Settings& s) {
  s.Add(prefix_ + "-tls-cert", &cert_,
        "serve " + listener_ +
            " over TLS with this PEM certificate (then any intermediates); read again on SIGHUP");
  s.Add(prefix_ + "-tls-key", &key_,
        "the PEM private key of --" + prefix_ + "-tls-cert (unencrypted); read again on SIGHUP");
  s.Add(prefix_ + "-client-ca", &client_ca_,
        "require a client certificate issued by a CA of this PEM file on " + listener_);
}

Result<std::shared_ptr<TlsCredentials>> TlsSettings::Load(bool listening) const {
  const std::string p = "--" + prefix_;
  if (cert_.empty() != key_.empty()) {
    return Status::Invalid(p + "-tls-cert and " + p + "-tls-key go together: set both");
  }
  if (!client_ca_.empty() && cert_.empty()) {
    return Status::Invalid(p + "-client-ca needs " + p + "-tls-cert and " + p +
                           "-tls-key: client certificates are part of TLS");
  }
  if (cert_.empty()) return std::shared_ptr<TlsCredentials>();
  if (!listening) {
    return Status::Invalid(p + "-tls-cert is set, but " + listener_ + " is off or unset");
  }
  TlsFiles files{cert_, key_, client_ca_, p};
  Result<std::shared_ptr<TlsCredentials>> creds = TlsCredentials::Load(files);
  if (!creds.ok()) return creds.status();
  TlsCertificateInfo info = (*creds)->info();
  int64_t now = static_cast<int64_t>(std::time(nullptr));
  if (info.not_after != 0 && info.not_after < now) {
    spdlog::warn("{}-tls-cert {} expired on {}: clients that verify it will refuse to connect", p,
                 cert_, UtcDate(info.not_after));
  }
  return creds;
}

void ReloadTls(const std::shared_ptr<TlsCredentials>& creds, const std::string& listener) {
  if (!creds) return;
  Status s = creds->Reload();
  if (s.ok()) {
    spdlog::info("SIGHUP: {} uses {}", listener, DescribeTls(creds));
  } else {
    spdlog::error("SIGHUP: {}; {} keeps its certificate ({})", s.message(), listener,
                  DescribeTls(creds));
  }
}

std::string DescribeTls(const std::shared_ptr<TlsCredentials>& creds) {
  if (!creds) return "plain HTTP";
  TlsCertificateInfo info = creds->info();
  return "TLS, certificate " + (info.subject.empty() ? std::string("(no subject)") : info.subject) +
         " expiring " + UtcDate(info.not_after) +
         (creds->requires_client_certificate() ? ", client certificates required" : "");
}

}  // namespace ds::app
