// AWS credentials and where they come from: one interface for a source of credentials
// (CredentialsProvider), the standard chain of sources in the order the AWS SDKs try them, and
// RefreshingCredentials, which every AWS call (S3 now; SQS and STS later) asks for the
// credentials to sign one request with.
//
// The chain (DefaultCredentialsChain), as the AWS SDKs order it ("1) env 2) web identity
// 3) profile config 4) container/instance"):
//   1. environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN;
//   2. web identity (EKS IRSA): AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN, STS
//      AssumeRoleWithWebIdentity;
//   3. the shared config and credentials files, profile AWS_PROFILE: static keys or
//      credential_process;
//   4. container credentials (ECS task role, EKS Pod Identity): AWS_CONTAINER_CREDENTIALS_*;
//   5. EC2 instance metadata (IMDSv2), unless AWS_EC2_METADATA_DISABLED=true.
// The providers themselves are declared in aws/providers.h.
//
// Secrets. Nothing here logs or puts into a Status a secret access key, a session token, a web
// identity token or a container authorization token; access key ids appear masked ("AKIA…").
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"

namespace ds::aws {

// Environment variables, name -> value (the process environment, or a test's map). Empty
// values count as unset everywhere.
using Variables = std::map<std::string, std::string>;

// Every variable the chain reads (FromEnvironment copies these out of the process environment).
extern const char* const kCredentialVariables[];
extern const size_t kCredentialVariableCount;

struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // "" for long-term keys
  // When they stop being accepted; none for long-term keys, which are never refreshed.
  std::optional<std::chrono::system_clock::time_point> expiration;
};

// "key AKIA…, expires 2026-12-08T03:00:00Z" (or "no expiry"): for logs, never a secret.
std::string DescribeCredentials(const Credentials& c);

// A source of credentials. Implementations are thread-compatible: the chain and
// RefreshingCredentials call Fetch from one thread at a time.
class CredentialsProvider {
 public:
  virtual ~CredentialsProvider() = default;
  // The source's name for logs and errors: "environment", "web identity", "profile 'x'", ...
  virtual std::string Name() const = 0;
  // One attempt at getting credentials (it may read files, run a process, call a server). The
  // contract every provider keeps:
  //  - OK: non-empty access key id and secret, no line breaks in any field;
  //  - kNotFound: this source is not configured here; the message says why ("AWS_ROLE_ARN is
  //    not set"), and the chain moves on to the next source;
  //  - any other code: the source is configured but failed (kUnavailable: worth trying again
  //    later, a network error, a 5xx, a timeout; kPermissionDenied: the source refused;
  //    kInvalidArgument: a setting or an answer is malformed). The chain stops there: it never
  //    falls back from a configured source to another identity.
  virtual Result<Credentials> Fetch() = 0;
};

// When RefreshingCredentials refreshes temporary credentials, relative to their expiry and to
// their lifetime L (expiry minus the time they were fetched):
//  - a background refresh starts at expiry - min(refresh_before, L/2), and is retried every
//    min(retry_every, remaining/4) (at least 100 ms) while it fails; callers keep getting the
//    current credentials meanwhile, without waiting;
//  - from expiry - min(expired_margin, L/4) on, the credentials count as expired: a caller
//    waits for a refresh (one at a time: callers arriving meanwhile wait for the same one).
struct RefreshOptions {
  std::chrono::milliseconds refresh_before{std::chrono::minutes(5)};
  std::chrono::milliseconds expired_margin{std::chrono::seconds(15)};
  std::chrono::milliseconds retry_every{std::chrono::seconds(10)};
};

// The credentials every request is signed with, from one source, refreshed before they expire.
//
// Thread safety: Get, SourceName and Describe may be called from any number of threads at once;
// the fields below are guarded by mu_. One background thread (started only for credentials with
// an expiry, or when the first fetch failed) refreshes them; the destructor stops it, waiting
// for a fetch in flight.
//
// Logs: the source and DescribeCredentials once at construction and at each refresh (info),
// each failed refresh (warn, with the Status message); never a secret.
class RefreshingCredentials {
 public:
  // `source` is the provider that answered (or, when `first` is kUnavailable, the one that is
  // configured but could not answer yet); `first` its first answer.
  RefreshingCredentials(std::unique_ptr<CredentialsProvider> source, Result<Credentials> first,
                        RefreshOptions options = {});
  ~RefreshingCredentials();
  RefreshingCredentials(const RefreshingCredentials&) = delete;
  RefreshingCredentials& operator=(const RefreshingCredentials&) = delete;

  // Credentials valid now. Returns at once while the current ones have not expired (see
  // RefreshOptions), even while a refresh runs. When they have expired (or none were ever
  // fetched), waits for one refresh and returns its outcome; a failed refresh is returned as
  // "AWS credentials from <source>: <message>" with its code, and callers arriving within a
  // second of a failure get that failure again without another fetch.
  Result<Credentials> Get();
  // The source's name ("environment", "web identity", ...).
  std::string SourceName() const;
  // "from <source>, key AKIA…, expires ...": for logs and S3Config::Describe.
  std::string Describe() const;

  // How many fetches the source answered (the first included): for tests.
  int fetches() const;

 private:
  using TimePoint = std::chrono::system_clock::time_point;
  // Whether the current credentials must not be used any more at `now`. REQUIRES: mu_ held.
  bool ExpiredLocked(TimePoint now) const;
  // When the next background refresh is due (max() when none is). REQUIRES: mu_ held.
  TimePoint NextRefreshLocked() const;
  // One fetch from the source, or a wait for the one in flight. REQUIRES: lock holds mu_
  // (released while fetching).
  void RefreshLocked(std::unique_lock<std::mutex>& lock, bool background);
  void RefreshLoop();

  const std::unique_ptr<CredentialsProvider> source_;
  const std::string source_name_;
  const RefreshOptions options_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::optional<Credentials> current_;  // GUARDED_BY(mu_)
  TimePoint fetched_at_{};              // GUARDED_BY(mu_): when current_ was fetched
  Status last_error_;                   // GUARDED_BY(mu_): of the last fetch, OK if it worked
  TimePoint last_error_at_{};           // GUARDED_BY(mu_)
  TimePoint retry_at_{};                // GUARDED_BY(mu_): next background try after a failure
  bool refreshing_ = false;             // GUARDED_BY(mu_): a fetch is in flight
  bool stop_ = false;                   // GUARDED_BY(mu_)
  int fetches_ = 0;                     // GUARDED_BY(mu_)
  std::thread refresher_;
};

// The sources of the standard chain (see the top of this file) configured from `vars`, in
// order. `home` for "~" is vars["HOME"].
std::vector<std::unique_ptr<CredentialsProvider>> DefaultCredentialsChain(const Variables& vars);

// Tries `chain` in order: the first source that answers OK is kept and wrapped into a
// RefreshingCredentials (which logs it). Otherwise:
//  - every source kNotFound: kNotFound "no AWS credentials found; tried: environment (why);
//    web identity (why); ..." naming every source and why it had none;
//  - a configured source failed with kUnavailable (STS or IMDS unreachable for now): that
//    source is kept all the same, with its error, so that requests retry it (the error is
//    logged); the service starts and its readiness reports the store as not ready;
//  - any other failure of a configured source: that failure, as "AWS credentials from
//    <source>: <message>", with the sources skipped before it and why.
Result<std::shared_ptr<RefreshingCredentials>> ResolveCredentials(
    std::vector<std::unique_ptr<CredentialsProvider>> chain, RefreshOptions options = {});

// ---- Helpers shared by the providers -------------------------------------------------------

// "2026-12-08T03:00:00Z", also with fractional seconds or a "+00:00" offset. kInvalidArgument
// naming `what` when malformed.
Result<std::chrono::system_clock::time_point> ParseIso8601(const std::string& text,
                                                           const std::string& what);
// "2026-12-08T03:00:00Z".
std::string FormatIso8601(std::chrono::system_clock::time_point t);
// The first four characters of an access key id and "…".
std::string MaskKeyId(const std::string& id);
// kInvalidArgument "<what>: no access key id" / "no secret" / "a line break" / "':' in the key
// id" unless `c` keeps
// the OK part of CredentialsProvider::Fetch's contract.
Status CheckCredentials(const Credentials& c, const std::string& what);

}  // namespace ds::aws
