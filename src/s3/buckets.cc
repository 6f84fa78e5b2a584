// S3Client's bucket operations: CreateBucket, DeleteBucket, SetBucketVersioning, and
// CheckBucket with the operator-facing errors of Impl::BucketError.
#include <string>

#include "s3/client.h"
#include "s3/client_internal.h"
#include "s3/xml.h"

namespace ds {

Status S3Client::CheckBucket(const std::string& bucket, const std::string& prefix) {
  DS_RETURN_IF_ERROR(impl_->CheckNames(bucket, nullptr));
  s3_internal::Request req;
  req.method = "GET";
  req.op = "ListObjectsV2";
  req.bucket = bucket;
  req.query = {{"list-type", "2"}, {"max-keys", "1"}};
  if (!prefix.empty()) req.query.emplace_back("prefix", prefix);
  Result<s3_internal::Response> resp = impl_->Execute(req);
  if (!resp.ok()) return resp.status();
  if (resp->ok()) return Status::Ok();
  return impl_->BucketError(req, *resp);
}

Status S3Client::Impl::BucketError(const s3_internal::Request& req,
                                   const s3_internal::Response& resp) const {
  const std::string& code = resp.error.code;
  const std::string http = "HTTP " + std::to_string(resp.status) + (code.empty() ? "" : " " + code);
  const std::string bucket = "bucket '" + req.bucket + "'";
  // With the credential chain, hints name the source instead of the AWS_* key variables.
  const bool chain = config.credentials != nullptr;
  const std::string key_id = chain
                                 ? "credentials " + config.credentials->Describe()
                                 : "access key id " + s3_internal::MaskKeyId(config.access_key_id);
  const std::string check = chain ? "check the source of the " + key_id : "";
  if (code == "NoSuchBucket" || (resp.status == 404 && code.empty())) {
    return Status::NotFound(bucket + " does not exist (" + http + ")");
  }
  if (resp.status == 401 || resp.status == 403) {
    std::string hint;
    if (code == "InvalidAccessKeyId") {
      hint = "the store does not know the " + key_id + ": " +
             (chain ? check : "check AWS_ACCESS_KEY_ID");
    } else if (code == "SignatureDoesNotMatch") {
      hint = "the secret key does not match the " + key_id + ": " +
             (chain ? check : "check AWS_SECRET_ACCESS_KEY");
    } else if (code == "ExpiredToken" || code == "InvalidToken" || code == "TokenRefreshRequired") {
      hint = "the session token is expired or invalid: " +
             (chain ? check : std::string("check AWS_SESSION_TOKEN"));
    } else if (code == "AccessDenied" || code == "AllAccessDisabled") {
      hint = "the " + key_id + " may not list the bucket: it needs s3:ListBucket on it";
    } else {
      hint = chain ? check
                   : "check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN (" +
                         key_id + ")";
    }
    return Status::Denied("access denied to " + bucket + " (" + http + "): " + hint);
  }
  if (code == "PermanentRedirect" || code == "AuthorizationHeaderMalformed" || resp.status == 301) {
    return Status::Invalid(bucket + " is not in region " + config.region + " (" + http +
                           "): check AWS_REGION");
  }
  return MapError(req, resp);
}

Status S3Client::CreateBucket(const std::string& bucket) {
  DS_RETURN_IF_ERROR(impl_->CheckNames(bucket, nullptr));
  std::string body;
  Result<s3_internal::Endpoint> e = s3_internal::ParseEndpoint(impl_->config.endpoint);
  // AWS wants a LocationConstraint outside us-east-1; other stores may refuse one that does not
  // name their zone group, so send it to AWS only.
  if (e.ok() && s3_internal::IsAwsHost(e->host) && impl_->config.region != "us-east-1") {
    body = s3::BuildCreateBucketConfiguration(impl_->config.region);
  }
  s3_internal::Request req;
  req.method = "PUT";
  req.op = "CreateBucket";
  req.bucket = bucket;
  req.body = &body;
  req.content_type = "application/xml";
  Result<s3_internal::Response> resp = impl_->Execute(req);
  if (!resp.ok()) return resp.status();
  if (resp->ok() || resp->error.code == "BucketAlreadyOwnedByYou") return Status::Ok();
  return impl_->MapError(req, *resp);
}

Status S3Client::DeleteBucket(const std::string& bucket) {
  DS_RETURN_IF_ERROR(impl_->CheckNames(bucket, nullptr));
  s3_internal::Request req;
  req.method = "DELETE";
  req.op = "DeleteBucket";
  req.bucket = bucket;
  Result<s3_internal::Response> resp = impl_->Execute(req);
  if (!resp.ok()) return resp.status();
  if (resp->ok()) return Status::Ok();
  return impl_->MapError(req, *resp);
}

Status S3Client::SetBucketVersioning(const std::string& bucket, bool enabled) {
  DS_RETURN_IF_ERROR(impl_->CheckNames(bucket, nullptr));
  const std::string body = s3::BuildVersioningConfiguration(enabled);
  s3_internal::Request req;
  req.method = "PUT";
  req.op = "PutBucketVersioning";
  req.bucket = bucket;
  req.query = {{"versioning", ""}};
  req.body = &body;
  req.content_type = "application/xml";
  Result<s3_internal::Response> resp = impl_->Execute(req);
  if (!resp.ok()) return resp.status();
  if (resp->ok()) return Status::Ok();
  return impl_->MapError(req, *resp);
}

}  // namespace ds
