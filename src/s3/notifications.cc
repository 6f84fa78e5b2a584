// S3Client's event plumbing: the bucket notification configuration (Get/Put) and the
// SNS-compatible topic API of Ceph RGW (CreateTopic, ListTopics), through Impl::SnsAction.
#include <string>
#include <utility>
#include <vector>

#include "s3/client.h"
#include "s3/client_internal.h"
#include "s3/xml.h"

namespace ds {

Result<std::string> S3Client::GetBucketNotification(const std::string& bucket) {
  DS_RETURN_IF_ERROR(impl_->CheckNames(bucket, nullptr));
  s3_internal::Request req;
  req.method = "GET";
  req.op = "GetBucketNotificationConfiguration";
  req.bucket = bucket;
  req.query = {{"notification", ""}};
  Result<s3_internal::Response> resp = impl_->Execute(req);
  if (!resp.ok()) return resp.status();
  if (resp->ok()) return resp->body;
  return impl_->MapError(req, *resp);
}

Status S3Client::PutBucketNotification(const std::string& bucket, const std::string& xml) {
  DS_RETURN_IF_ERROR(impl_->CheckNames(bucket, nullptr));
  s3_internal::Request req;
  req.method = "PUT";
  req.op = "PutBucketNotificationConfiguration";
  req.bucket = bucket;
  req.query = {{"notification", ""}};
  req.body = &xml;
  req.content_type = "application/xml";
  Result<s3_internal::Response> resp = impl_->Execute(req);
  if (!resp.ok()) return resp.status();
  if (resp->ok()) return Status::Ok();
  return impl_->MapError(req, *resp);
}

Result<std::string> S3Client::Impl::SnsAction(const char* op, const std::string& what,
                                              const s3::QueryParams& form) {
  const std::string body = s3::BuildQuery(form);
  s3_internal::Request req;
  req.method = "POST";
  req.op = op;
  req.body = &body;
  req.content_type = "application/x-www-form-urlencoded";
  req.service = "sns";
  Result<s3_internal::Response> resp = Execute(req);
  if (!resp.ok()) return resp.status();
  if (!resp->ok()) {
    return Status::Unavailable(what + ": HTTP " + std::to_string(resp->status) +
                               (resp->error.code.empty() ? "" : " " + resp->error.code) +
                               " (does this store have an SNS-compatible topic API?)");
  }
  return std::move(resp->body);
}

Result<std::string> S3Client::CreateTopic(
    const std::string& name, const std::vector<std::pair<std::string, std::string>>& attributes) {
  DS_RETURN_IF_ERROR(impl_->config_status);
  if (name.empty()) return Status::Invalid("topic name is empty");
  s3::QueryParams form = {{"Action", "CreateTopic"}, {"Name", name}};
  for (size_t i = 0; i < attributes.size(); ++i) {
    const std::string n = std::to_string(i + 1);
    form.emplace_back("Attributes.entry." + n + ".key", attributes[i].first);
    form.emplace_back("Attributes.entry." + n + ".value", attributes[i].second);
  }
  Result<std::string> answer = impl_->SnsAction("CreateTopic", "CreateTopic " + name, form);
  if (!answer.ok()) return answer.status();
  Result<std::string> arn = s3::ParseCreateTopicArn(*answer);
  if (!arn.ok()) return Status::Internal("CreateTopic " + name + ": " + arn.status().message());
  return arn;
}

Result<std::vector<TopicInfo>> S3Client::ListTopics() {
  DS_RETURN_IF_ERROR(impl_->config_status);
  std::vector<TopicInfo> out;
  std::string token;
  for (int page = 0; page < 10000; ++page) {
    s3::QueryParams form = {{"Action", "ListTopics"}};
    if (!token.empty()) form.emplace_back("NextToken", token);
    Result<std::string> answer = impl_->SnsAction("ListTopics", "ListTopics", form);
    if (!answer.ok()) return answer.status();
    Result<std::vector<TopicInfo>> topics = s3::ParseListTopics(*answer, &token);
    if (!topics.ok()) return Status::Internal("ListTopics: " + topics.status().message());
    for (TopicInfo& t : *topics) out.push_back(std::move(t));
    if (token.empty()) return out;
  }
  return Status::Internal("ListTopics: more than 10,000 pages");
}

}  // namespace ds
