// Tokens of the listeners: TokenMatches, HeadHasToken (Bearer or token=) and TokenSet.
#include <openssl/crypto.h>

#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "transport/http_listener.h"
#include "transport/listener_internal.h"

namespace ds {

bool TokenMatches(const std::string& presented, const std::string& expected) {
  if (expected.empty() || presented.size() != expected.size()) return false;
  return CRYPTO_memcmp(presented.data(), expected.data(), expected.size()) == 0;
}

bool HeadHasToken(const RequestHead& head, const std::string& token) {
  const std::string& auth = head.authorization;
  size_t space = auth.find(' ');
  if (space != std::string::npos &&
      listener_internal::EqualsIgnoringCase(auth.substr(0, space), "Bearer")) {
    size_t start = auth.find_first_not_of(' ', space);
    if (start != std::string::npos && TokenMatches(auth.substr(start), token)) return true;
  }
  return head.token_param && TokenMatches(*head.token_param, token);
}

void TokenSet::Replace(std::vector<std::string> tokens) {
  std::vector<std::string> kept;
  for (std::string& t : tokens) {
    if (!t.empty()) kept.push_back(std::move(t));
  }
  std::lock_guard<std::mutex> l(mu_);
  tokens_ = std::move(kept);
}

bool TokenSet::Accepts(const RequestHead& head) const {
  std::lock_guard<std::mutex> l(mu_);
  bool ok = false;
  for (const std::string& t : tokens_) ok = HeadHasToken(head, t) || ok;  // no early exit
  return ok;
}

size_t TokenSet::size() const {
  std::lock_guard<std::mutex> l(mu_);
  return tokens_.size();
}

}  // namespace ds
