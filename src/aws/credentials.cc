// RefreshingCredentials, the chain's resolution (ResolveCredentials, DefaultCredentialsChain)
// and the helpers of credentials.h. The providers are in the files listed in providers.h.
#include "aws/credentials.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "aws/providers.h"

namespace ds::aws {

const char* const kCredentialVariables[] = {
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_CA_BUNDLE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_ENDPOINT_URL_STS",
    "AWS_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_EC2_METADATA_DISABLED",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE",
    "HOME",
};
const size_t kCredentialVariableCount = sizeof(kCredentialVariables) / sizeof(char*);

// ---- Helpers ---------------------------------------------------------------------------------

std::string MaskKeyId(const std::string& id) {
  if (id.size() <= 4) return "…";
  return id.substr(0, 4) + "…";
}

std::string FormatIso8601(std::chrono::system_clock::time_point t) {
  std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Result<std::chrono::system_clock::time_point> ParseIso8601(const std::string& text,
                                                           const std::string& what) {
  auto bad = [&] {
    return Status::Invalid(what + ": '" + text +
                           "' is not an ISO 8601 UTC time (2026-12-08T03:00:00Z)");
  };
  std::tm tm{};
  int consumed = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &consumed) != 6 ||
      consumed != 19) {
    return bad();
  }
  std::string rest = text.substr(19);
  if (!rest.empty() && rest[0] == '.') {  // fractional seconds: ignored
    size_t i = 1;
    while (i < rest.size() && std::isdigit(static_cast<unsigned char>(rest[i]))) ++i;
    if (i == 1) return bad();
    rest = rest.substr(i);
  }
  if (rest != "Z" && rest != "+00:00" && rest != "+0000") return bad();
  if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
      tm.tm_min > 59 || tm.tm_sec > 60) {
    return bad();
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  std::time_t secs = timegm(&tm);
  if (secs == static_cast<std::time_t>(-1)) return bad();
  return std::chrono::system_clock::from_time_t(secs);
}

std::string DescribeCredentials(const Credentials& c) {
  std::string s = "key " + MaskKeyId(c.access_key_id);
  if (!c.session_token.empty()) s += " with a session token";
  s += c.expiration.has_value() ? ", expires " + FormatIso8601(*c.expiration) : ", no expiry";
  return s;
}

Status CheckCredentials(const Credentials& c, const std::string& what) {
  if (c.access_key_id.empty()) return Status::Invalid(what + ": no access key id");
  if (c.access_key_id.find(':') != std::string::npos) {
    return Status::Invalid(what + ": the access key id contains ':'");
  }
  if (c.secret_access_key.empty()) return Status::Invalid(what + ": no secret access key");
  auto has_break = [](const std::string& s) { return s.find_first_of("\r\n") != s.npos; };
  if (has_break(c.access_key_id) || has_break(c.secret_access_key) || has_break(c.session_token)) {
    return Status::Invalid(what + ": the credentials contain a line break");
  }
  return Status::Ok();
}

// ---- RefreshingCredentials -------------------------------------------------------------------

namespace {

// Callers arriving this soon after a failed fetch of expired credentials get the failure again.
constexpr std::chrono::seconds kFailureHold{1};
constexpr std::chrono::milliseconds kMinRetry{100};

}  // namespace

RefreshingCredentials::RefreshingCredentials(std::unique_ptr<CredentialsProvider> source,
                                             Result<Credentials> first, RefreshOptions options)
    : source_(std::move(source)), source_name_(source_->Name()), options_(options) {
  const auto now = std::chrono::system_clock::now();
  fetches_ = 1;
  if (first.ok()) {
    current_ = std::move(first).value();
    fetched_at_ = now;
    spdlog::info("AWS credentials from {}: {}", source_name_, DescribeCredentials(*current_));
  } else {
    last_error_ = first.status();
    last_error_at_ = now;
    retry_at_ = now + options_.retry_every;
    spdlog::error("AWS credentials from {} not available yet ({}); retrying", source_name_,
                  last_error_.message());
  }
  if (!current_.has_value() || current_->expiration.has_value()) {
    refresher_ = std::thread([this] { RefreshLoop(); });
  }
}

RefreshingCredentials::~RefreshingCredentials() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (refresher_.joinable()) refresher_.join();
}

std::string RefreshingCredentials::SourceName() const { return source_name_; }

std::string RefreshingCredentials::Describe() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (!current_.has_value()) return "from " + source_name_ + " (none yet)";
  return "from " + source_name_ + ", " + DescribeCredentials(*current_);
}

int RefreshingCredentials::fetches() const {
  std::lock_guard<std::mutex> lock(mu_);
  return fetches_;
}

bool RefreshingCredentials::ExpiredLocked(TimePoint now) const {
  if (!current_.has_value()) return true;
  if (!current_->expiration.has_value()) return false;
  const TimePoint expiry = *current_->expiration;
  const auto lifetime = std::max<std::chrono::system_clock::duration>(
      expiry - fetched_at_, std::chrono::system_clock::duration::zero());
  const auto margin =
      std::min<std::chrono::system_clock::duration>(options_.expired_margin, lifetime / 4);
  return now >= expiry - margin;
}

RefreshingCredentials::TimePoint RefreshingCredentials::NextRefreshLocked() const {
  if (!current_.has_value()) return retry_at_;
  if (!current_->expiration.has_value()) return TimePoint::max();
  const TimePoint expiry = *current_->expiration;
  const auto lifetime = std::max<std::chrono::system_clock::duration>(
      expiry - fetched_at_, std::chrono::system_clock::duration::zero());
  const TimePoint due =
      expiry - std::min<std::chrono::system_clock::duration>(options_.refresh_before, lifetime / 2);
  return last_error_.ok() ? due : std::max(due, retry_at_);
}

void RefreshingCredentials::RefreshLocked(std::unique_lock<std::mutex>& lock, bool background) {
  if (refreshing_) {
    cv_.wait(lock, [&] { return !refreshing_ || stop_; });
    return;
  }
  refreshing_ = true;
  lock.unlock();
  Result<Credentials> fresh = source_->Fetch();
  if (fresh.ok()) {
    Status check = CheckCredentials(*fresh, source_name_);
    if (!check.ok()) fresh = check;
  }
  lock.lock();
  refreshing_ = false;
  ++fetches_;
  const auto now = std::chrono::system_clock::now();
  if (fresh.ok()) {
    current_ = std::move(fresh).value();
    fetched_at_ = now;
    last_error_ = Status::Ok();
    spdlog::info("AWS credentials refreshed from {}: {}", source_name_,
                 DescribeCredentials(*current_));
  } else {
    last_error_ = fresh.status();
    last_error_at_ = now;
    auto retry =
        std::chrono::duration_cast<std::chrono::system_clock::duration>(options_.retry_every);
    if (current_.has_value() && current_->expiration.has_value()) {
      retry = std::min(retry, (*current_->expiration - now) / 4);
    }
    retry_at_ = now + std::max<std::chrono::system_clock::duration>(retry, kMinRetry);
    const bool usable = !ExpiredLocked(now);
    spdlog::warn("AWS credentials: {}refresh from {} failed: {}{}", background ? "background " : "",
                 source_name_, last_error_.message(),
                 usable ? " (the current credentials are still valid)" : "");
  }
  cv_.notify_all();
}

Result<Credentials> RefreshingCredentials::Get() {
  std::unique_lock<std::mutex> lock(mu_);
  auto now = std::chrono::system_clock::now();
  if (!ExpiredLocked(now)) return *current_;
  const bool recent_failure = !last_error_.ok() && now - last_error_at_ < kFailureHold;
  if (!recent_failure) RefreshLocked(lock, /*background=*/false);
  now = std::chrono::system_clock::now();
  if (!ExpiredLocked(now)) return *current_;
  Status why = last_error_.ok() ? Status::Unavailable("the credentials expired") : last_error_;
  return Status(why.code(), "AWS credentials from " + source_name_ + ": " + why.message());
}

void RefreshingCredentials::RefreshLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    const TimePoint due = NextRefreshLocked();
    if (due == TimePoint::max()) {
      cv_.wait(lock, [&] { return stop_; });
      break;
    }
    if (std::chrono::system_clock::now() < due) {
      // Woken by notify (a refresh by a caller, or stop) or at `due`: recompute either way.
      cv_.wait_until(lock, due);
      continue;
    }
    RefreshLocked(lock, /*background=*/true);
  }
}

// ---- The chain -----------------------------------------------------------------------------

std::vector<std::unique_ptr<CredentialsProvider>> DefaultCredentialsChain(const Variables& vars) {
  std::vector<std::unique_ptr<CredentialsProvider>> chain;
  chain.push_back(std::make_unique<EnvironmentCredentials>(vars));
  chain.push_back(std::make_unique<WebIdentityCredentials>(vars));
  chain.push_back(std::make_unique<ProfileCredentials>(vars));
  chain.push_back(std::make_unique<ContainerCredentials>(vars));
  chain.push_back(std::make_unique<InstanceMetadataCredentials>(vars));
  return chain;
}

Result<std::shared_ptr<RefreshingCredentials>> ResolveCredentials(
    std::vector<std::unique_ptr<CredentialsProvider>> chain, RefreshOptions options) {
  std::vector<std::string> skipped;
  auto tried = [&] {
    std::string s;
    for (const std::string& t : skipped) s += (s.empty() ? "" : "; ") + t;
    return s;
  };
  for (std::unique_ptr<CredentialsProvider>& p : chain) {
    const std::string name = p->Name();
    Result<Credentials> r = p->Fetch();
    if (r.ok()) {
      Status check = CheckCredentials(*r, name);
      if (!check.ok()) r = check;
    }
    if (r.ok() || r.status().code() == Code::kUnavailable) {
      if (!skipped.empty()) spdlog::debug("AWS credentials: skipped {}", tried());
      return std::make_shared<RefreshingCredentials>(std::move(p), std::move(r), options);
    }
    if (r.status().code() == Code::kNotFound) {
      skipped.push_back(name + " (" + r.status().message() + ")");
      continue;
    }
    std::string msg = "AWS credentials from " + name + ": " + r.status().message();
    if (!skipped.empty()) msg += " (skipped before it: " + tried() + ")";
    return Status(r.status().code(), msg);
  }
  return Status::NotFound("no AWS credentials found; tried: " + tried());
}

}  // namespace ds::aws
