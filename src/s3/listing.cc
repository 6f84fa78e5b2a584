// S3Client's listings, page after page: ListObjects (ListObjectsV2) and ListObjectVersions.
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "s3/client.h"
#include "s3/client_internal.h"
#include "s3/xml.h"

namespace ds {

Status S3Client::ListObjects(const std::string& bucket, const std::string& prefix,
                             const std::function<bool(const ObjectInfo&)>& visit) {
  DS_RETURN_IF_ERROR(impl_->CheckNames(bucket, nullptr));
  std::string token;
  for (;;) {
    s3_internal::Request req;
    req.method = "GET";
    req.op = "ListObjectsV2";
    req.bucket = bucket;
    req.query = {{"list-type", "2"}, {"encoding-type", "url"}};
    if (!prefix.empty()) req.query.emplace_back("prefix", prefix);
    if (!token.empty()) req.query.emplace_back("continuation-token", token);
    if (int n = impl_->page_size.load(); n > 0)
      req.query.emplace_back("max-keys", std::to_string(n));
    Result<s3_internal::Response> resp = impl_->Execute(req);
    if (!resp.ok()) return resp.status();
    if (!resp->ok()) return impl_->MapError(req, *resp);
    Result<s3::ListObjectsPage> page = s3::ParseListObjectsV2(resp->body);
    if (!page.ok()) return page.status();
    for (const ObjectInfo& info : page->objects) {
      if (!visit(info)) return Status::Ok();
    }
    if (!page->truncated) return Status::Ok();
    if (page->next_continuation_token.empty() || page->next_continuation_token == token) {
      return Status::Internal("ListObjectsV2 of s3://" + bucket +
                              ": truncated page without a new continuation token");
    }
    token = page->next_continuation_token;
  }
}

Result<std::vector<ObjectVersion>> S3Client::ListObjectVersions(const std::string& bucket,
                                                                const std::string& prefix) {
  DS_RETURN_IF_ERROR(impl_->CheckNames(bucket, nullptr));
  std::vector<ObjectVersion> out;
  std::string key_marker, version_marker;
  for (;;) {
    s3_internal::Request req;
    req.method = "GET";
    req.op = "ListObjectVersions";
    req.bucket = bucket;
    req.query = {{"versions", ""}, {"encoding-type", "url"}};
    if (!prefix.empty()) req.query.emplace_back("prefix", prefix);
    if (!key_marker.empty()) req.query.emplace_back("key-marker", key_marker);
    if (!version_marker.empty()) req.query.emplace_back("version-id-marker", version_marker);
    if (int n = impl_->page_size.load(); n > 0)
      req.query.emplace_back("max-keys", std::to_string(n));
    Result<s3_internal::Response> resp = impl_->Execute(req);
    if (!resp.ok()) return resp.status();
    if (!resp->ok()) return impl_->MapError(req, *resp);
    Result<s3::ListVersionsPage> page = s3::ParseListObjectVersions(resp->body);
    if (!page.ok()) return page.status();
    for (ObjectVersion& v : page->versions) out.push_back(std::move(v));
    if (!page->truncated) return out;
    if (page->next_key_marker.empty() ||
        (page->next_key_marker == key_marker && page->next_version_id_marker == version_marker)) {
      return Status::Internal("ListObjectVersions of s3://" + bucket +
                              ": truncated page without new markers");
    }
    key_marker = page->next_key_marker;
    version_marker = page->next_version_id_marker;
  }
}

}  // namespace ds
