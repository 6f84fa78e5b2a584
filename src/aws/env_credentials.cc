// EnvironmentCredentials (providers.h): the keys in AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
// and AWS_SESSION_TOKEN.
#include <string>

#include "aws/providers.h"
#include "aws/variables.h"

namespace ds::aws {

EnvironmentCredentials::EnvironmentCredentials(const Variables& vars)
    : key_id_(Get(vars, "AWS_ACCESS_KEY_ID")),
      secret_(Get(vars, "AWS_SECRET_ACCESS_KEY")),
      token_(Get(vars, "AWS_SESSION_TOKEN")) {}

Result<Credentials> EnvironmentCredentials::Fetch() {
  if (key_id_.empty() && secret_.empty()) {
    return Status::NotFound("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set");
  }
  if (key_id_.empty()) {
    return Status::Invalid(
        "AWS_ACCESS_KEY_ID is not set (AWS_SECRET_ACCESS_KEY is): S3 credentials are read from "
        "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary "
        "credentials)");
  }
  if (secret_.empty()) {
    return Status::Invalid("AWS_SECRET_ACCESS_KEY is not set (AWS_ACCESS_KEY_ID is)");
  }
  Credentials c;
  c.access_key_id = key_id_;
  c.secret_access_key = secret_;
  c.session_token = token_;
  return c;
}

}  // namespace ds::aws
