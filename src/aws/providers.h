// The sources of the standard credential chain (credentials.h), one class each, each in its own
// file: environment (env_credentials.cc), web identity (web_identity_credentials.cc), profiles
// of the shared files (profile_credentials.cc, with credential_process), container credentials
// (container_credentials.cc) and EC2 instance metadata (instance_metadata_credentials.cc).
//
// Every class keeps CredentialsProvider::Fetch's contract (kNotFound: not configured here; any
// other failure: configured but failed) and reads its settings from the Variables given at
// construction; files (token files, the shared files) are read again at every Fetch, so that a
// rotated token or an edited profile is picked up at the next refresh.
#pragma once

#include <chrono>
#include <string>

#include "aws/credentials.h"

namespace ds::aws {

// AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN): long-term or session keys
// without a known expiry. kNotFound when neither is set; kInvalidArgument naming the missing
// variable when only one is.
class EnvironmentCredentials : public CredentialsProvider {
 public:
  explicit EnvironmentCredentials(const Variables& vars);
  std::string Name() const override { return "environment"; }
  Result<Credentials> Fetch() override;

 private:
  std::string key_id_, secret_, token_;
};

// EKS IAM roles for service accounts: the JWT in AWS_WEB_IDENTITY_TOKEN_FILE exchanged for the
// role AWS_ROLE_ARN's credentials by STS AssumeRoleWithWebIdentity (an unsigned POST of the
// query API, form-encoded: Action, Version 2011-06-15, RoleArn, RoleSessionName, WebIdentityToken;
// the XML answer read with pugixml). Session name AWS_ROLE_SESSION_NAME, else
// "delete-sync-<unix seconds>". Endpoint AWS_ENDPOINT_URL_STS, else the regional endpoint
// https://sts.<AWS_REGION or AWS_DEFAULT_REGION>.amazonaws.com (.amazonaws.com.cn in cn-*
// regions), else https://sts.amazonaws.com (AWS_ENDPOINT_URL is not used: with delete-sync it
// usually points at the S3-compatible store). Up to 3 attempts on network errors, timeouts and
// 5xx/Throttling/IDPCommunicationError answers.
//  - kNotFound: neither variable set; kInvalidArgument: only one, or a token file that is empty;
//  - kIoError: the token file cannot be read;
//  - kPermissionDenied: STS refused (4xx: "InvalidIdentityToken: ..." with STS's message);
//  - kUnavailable: STS unreachable or 5xx after the attempts.
class WebIdentityCredentials : public CredentialsProvider {
 public:
  explicit WebIdentityCredentials(const Variables& vars);
  std::string Name() const override { return "web identity"; }
  Result<Credentials> Fetch() override;

  // The STS endpoint it calls (for tests and messages).
  const std::string& endpoint() const { return endpoint_; }

 private:
  std::string token_file_, role_arn_, session_name_, endpoint_, ca_bundle_;
};

// The answer of STS AssumeRoleWithWebIdentity (HTTP `status`, body `xml`) as credentials, or as
// the error it carries: 2xx without Credentials/AccessKeyId, SecretAccessKey, SessionToken and
// Expiration is kInvalidArgument; an ErrorResponse is "<Code>: <Message>" (kUnavailable for 5xx,
// Throttling and IDPCommunicationError, kPermissionDenied otherwise). Exposed for tests.
Result<Credentials> ParseAssumeRoleWithWebIdentity(long status, const std::string& xml);

// A profile of the shared files: AWS_PROFILE (default "default") in AWS_SHARED_CREDENTIALS_FILE
// (default ~/.aws/credentials, sections "[name]") and AWS_CONFIG_FILE (default ~/.aws/config,
// sections "[default]" and "[profile name]"); for one profile, a key of the credentials file
// wins over the same key of the config file. What the profile gives:
//  - aws_access_key_id + aws_secret_access_key (+ aws_session_token): those keys;
//  - else credential_process: the command run by /bin/sh -c (stdin /dev/null, 60 s at most),
//    its standard output the JSON {"Version": 1, "AccessKeyId", "SecretAccessKey",
//    "SessionToken" (optional), "Expiration" (optional, ISO 8601)}; a non-zero exit is
//    kUnavailable naming the program (not its arguments) and the first line of its stderr;
//  - role_arn, source_profile, sso_*, web_identity_token_file without keys or a process:
//    kInvalidArgument (delete-sync does not assume roles from profiles; use credential_process,
//    e.g. `aws configure export-credentials --profile X --format process`).
// kNotFound: no such profile (or no files), unless AWS_PROFILE names it, which is then
// kInvalidArgument; kNotFound too for a profile without any credential setting (only a region).
class ProfileCredentials : public CredentialsProvider {
 public:
  explicit ProfileCredentials(const Variables& vars);
  std::string Name() const override;
  Result<Credentials> Fetch() override;

 private:
  std::string profile_, credentials_file_, config_file_;
  bool profile_named_ = false;  // AWS_PROFILE was set
  std::string home_missing_;    // why the default files cannot be found, "" when they can
};

// Runs `command` as credential_process does (see ProfileCredentials) and reads its answer.
// Exposed for tests.
Result<Credentials> RunCredentialProcess(const std::string& command,
                                         std::chrono::milliseconds timeout);

// ECS task roles and EKS Pod Identity: a GET of AWS_CONTAINER_CREDENTIALS_RELATIVE_URI on
// http://169.254.170.2, else of AWS_CONTAINER_CREDENTIALS_FULL_URI, which must be https or name
// (as an address, or a host name all of whose addresses are) a loopback address, the ECS
// address 169.254.170.2 or the EKS Pod Identity addresses 169.254.170.23 and fd00:ec2::23.
// Authorization header: the contents of AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (read at every
// fetch), else AWS_CONTAINER_AUTHORIZATION_TOKEN. The answer: JSON with AccessKeyId,
// SecretAccessKey, Token, Expiration. 2 s to connect, 5 s per attempt, up to 3 attempts on
// network errors and 5xx.
//  - kNotFound: neither URI variable set;
//  - kInvalidArgument: a FULL_URI that is not allowed, a token with a line break, a bad answer;
//  - kPermissionDenied: 4xx (with the answer's "message" when it has one);
//  - kUnavailable: unreachable or 5xx after the attempts.
class ContainerCredentials : public CredentialsProvider {
 public:
  // `relative_base`: where RELATIVE_URI points (tests give a loopback server; the default is the
  // ECS agent's address).
  explicit ContainerCredentials(const Variables& vars,
                                std::string relative_base = "http://169.254.170.2");
  std::string Name() const override { return "container credentials"; }
  Result<Credentials> Fetch() override;

 private:
  std::string url_;           // "" when not configured
  std::string config_error_;  // a FULL_URI that is not allowed
  std::string token_, token_file_, ca_bundle_;
};

// True when a container credentials FULL_URI may be used (see ContainerCredentials); `why` says
// why not. Resolves host names. Exposed for tests.
bool ContainerUriAllowed(const std::string& uri, std::string* why);

// EC2 instance metadata, IMDSv2 only: PUT /latest/api/token (X-aws-ec2-metadata-token-ttl-seconds:
// 21600), then with X-aws-ec2-metadata-token GET /latest/meta-data/iam/security-credentials/ (the
// role's name, first line) and GET .../<role> (JSON: Code "Success", AccessKeyId,
// SecretAccessKey, Token, Expiration). Endpoint AWS_EC2_METADATA_SERVICE_ENDPOINT, else
// http://[fd00:ec2::254] when AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE is IPv6, else
// http://169.254.169.254. One attempt per request, 1 s to connect and 1 s per request, so that a
// machine without IMDS fails within about a second. IMDSv1 (no token) is never used.
//  - kNotFound: AWS_EC2_METADATA_DISABLED=true; no answer from the endpoint (not on EC2, or in a
//    container behind a hop limit of 1); the token refused (403: IMDS disabled); no role
//    attached to the instance (404);
//  - kInvalidArgument: a malformed answer; kUnavailable: other HTTP errors.
class InstanceMetadataCredentials : public CredentialsProvider {
 public:
  explicit InstanceMetadataCredentials(const Variables& vars);
  std::string Name() const override { return "EC2 instance metadata"; }
  Result<Credentials> Fetch() override;

 private:
  bool disabled_ = false;
  std::string endpoint_;
};

}  // namespace ds::aws
