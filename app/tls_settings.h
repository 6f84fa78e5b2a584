// The TLS settings of a listener: --webhook-tls-cert/-key and --webhook-client-ca for the
// webhook, --metrics-tls-cert/-key and --metrics-client-ca for --metrics-listen (issue 19).
#pragma once

#include <memory>
#include <string>

#include "config.h"
#include "transport/tls_credentials.h"

namespace ds::app {

class TlsSettings {
 public:
  // `prefix` is "webhook" or "metrics"; `listener` names the listen setting in help texts.
  TlsSettings(std::string prefix, std::string listener)
      : prefix_(std::move(prefix)), listener_(std::move(listener)) {}
  void Register(Settings& s);
  // After Settings::Resolve. Checks that the settings go together and, when set, reads and
  // checks the files (kInvalidArgument naming the setting and the file). `listening`: whether
  // the listener is on at all (TLS settings for a listener that is off are an error). Null
  // credentials: plain HTTP.
  Result<std::shared_ptr<TlsCredentials>> Load(bool listening) const;

 private:
  std::string prefix_, listener_;
  std::string cert_, key_, client_ca_;
};

// SIGHUP: re-reads the certificate and key of `creds` (when set) and logs the outcome; a
// failure keeps the pair in use.
void ReloadTls(const std::shared_ptr<TlsCredentials>& creds, const std::string& listener);

// One line for the start-up log: "TLS (certificate CN=..., expires 2027-...)".
std::string DescribeTls(const std::shared_ptr<TlsCredentials>& creds);

}  // namespace ds::app
