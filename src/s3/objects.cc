// S3Client's operations on one object: GetObject, HeadObject, PutObject, DeleteObject (and
// Impl::DeleteOne, which DeleteObjects uses for keys XML cannot carry).
#include <charconv>
#include <cstdint>
#include <map>
#include <string>

#include "s3/client.h"
#include "s3/client_internal.h"
#include "s3/xml.h"

namespace ds {
namespace {

ObjectInfo InfoFromHeaders(const std::string& key, const s3_internal::Response& resp) {
  ObjectInfo info;
  info.key = key;
  auto get = [&](const char* name) -> std::string {
    auto it = resp.headers.find(name);
    return it == resp.headers.end() ? std::string() : it->second;
  };
  std::string length = get("content-length");
  uint64_t size = 0;
  auto [ptr, ec] = std::from_chars(length.data(), length.data() + length.size(), size);
  info.size = (ec == std::errc() && !length.empty()) ? size : resp.delivered;
  info.etag = get("etag");
  if (info.etag.size() >= 2 && info.etag.front() == '"' && info.etag.back() == '"') {
    info.etag = info.etag.substr(1, info.etag.size() - 2);
  }
  info.version_id = get("x-amz-version-id");
  info.last_modified = get("last-modified");
  for (const auto& [name, value] : resp.headers) {
    if (s3_internal::StartsWith(name, "x-amz-meta-")) info.metadata[name] = value;
  }
  return info;
}

}  // namespace

Result<ObjectInfo> S3Client::GetObject(const std::string& bucket, const std::string& key,
                                       const std::string& version_id, const BodySink& sink) {
  DS_RETURN_IF_ERROR(impl_->CheckNames(bucket, &key));
  if (!sink) return Status::Invalid("GetObject needs a body sink");
  s3_internal::Request req;
  req.method = "GET";
  req.op = "GetObject";
  req.bucket = bucket;
  req.key = key;
  req.version_id = version_id;
  if (!version_id.empty()) req.query.emplace_back("versionId", version_id);
  req.sink = &sink;
  Result<s3_internal::Response> resp = impl_->Execute(req);
  if (!resp.ok()) return resp.status();
  if (!resp->ok()) return impl_->MapError(req, *resp);
  return InfoFromHeaders(key, *resp);
}

Result<ObjectInfo> S3Client::HeadObject(const std::string& bucket, const std::string& key,
                                        const std::string& version_id) {
  DS_RETURN_IF_ERROR(impl_->CheckNames(bucket, &key));
  s3_internal::Request req;
  req.method = "HEAD";
  req.op = "HeadObject";
  req.bucket = bucket;
  req.key = key;
  req.version_id = version_id;
  if (!version_id.empty()) req.query.emplace_back("versionId", version_id);
  Result<s3_internal::Response> resp = impl_->Execute(req);
  if (!resp.ok()) return resp.status();
  if (!resp->ok()) return impl_->MapError(req, *resp);
  return InfoFromHeaders(key, *resp);
}

Result<DeleteOutcome> S3Client::Impl::DeleteOne(const std::string& bucket, const ObjectId& id) {
  s3_internal::Request req;
  req.method = "DELETE";
  req.op = "DeleteObject";
  req.bucket = bucket;
  req.key = id.key;
  req.version_id = id.version_id;
  if (!id.version_id.empty()) req.query.emplace_back("versionId", id.version_id);
  Result<s3_internal::Response> resp = Execute(req);
  if (!resp.ok()) return resp.status();
  DeleteOutcome o;
  o.id = id;
  if (resp->ok()) {
    o.deleted = true;
    return o;
  }
  Status s = MapError(req, *resp);
  if (resp->error.code == "NoSuchBucket" || s.code() == Code::kUnavailable) return s;
  o.error_code =
      resp->error.code.empty() ? "HTTP " + std::to_string(resp->status) : resp->error.code;
  o.error_message = resp->error.message.empty() ? s.message() : resp->error.message;
  return o;
}

Status S3Client::PutObject(const std::string& bucket, const std::string& key,
                           const std::string& body,
                           const std::map<std::string, std::string>& metadata) {
  DS_RETURN_IF_ERROR(impl_->CheckNames(bucket, &key));
  s3_internal::Request req;
  req.method = "PUT";
  req.op = "PutObject";
  req.bucket = bucket;
  req.key = key;
  req.body = &body;
  req.content_type = "application/octet-stream";
  for (const auto& [name, value] : metadata) {
    std::string lower = s3_internal::Lower(name);
    req.headers.emplace_back(
        s3_internal::StartsWith(lower, "x-amz-meta-") ? lower : "x-amz-meta-" + lower, value);
  }
  Result<s3_internal::Response> resp = impl_->Execute(req);
  if (!resp.ok()) return resp.status();
  if (resp->ok()) return Status::Ok();
  return impl_->MapError(req, *resp);
}

Status S3Client::DeleteObject(const std::string& bucket, const std::string& key,
                              const std::string& version_id) {
  DS_RETURN_IF_ERROR(impl_->CheckNames(bucket, &key));
  Result<DeleteOutcome> o = impl_->DeleteOne(bucket, {key, version_id});
  if (!o.ok()) return o.status();
  if (o->deleted) return Status::Ok();
  std::string where = s3::DescribeTarget({"DELETE", bucket, key, version_id});
  std::string m = "DELETE " + where + ": " + o->error_code;
  if (!o->error_message.empty() && o->error_message.find(o->error_code) == std::string::npos) {
    m += ": " + o->error_message;
  }
  if (o->error_code == "AccessDenied") return Status::Denied(m);
  return Status::Invalid(m);
}

}  // namespace ds
