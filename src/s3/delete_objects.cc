// S3Client::DeleteObjects: batches of at most 1000 keys per DeleteObjects request, keys XML
// cannot carry deleted one by one, and the answer's entries matched back to the request's ids.
#include <cstddef>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "s3/client.h"
#include "s3/client_internal.h"
#include "s3/xml.h"

namespace ds {
namespace {

// Largest DeleteObjects batch S3 accepts.
constexpr size_t kDeleteBatch = 1000;

}  // namespace

Status S3Client::Impl::DeleteBatch(const std::string& bucket, const std::vector<ObjectId>& ids,
                                   const std::vector<size_t>& positions,
                                   std::vector<DeleteOutcome>* out) {
  std::vector<ObjectId> batch;
  batch.reserve(positions.size());
  for (size_t p : positions) batch.push_back(ids[p]);
  const std::string body = s3::BuildDeleteRequest(batch, /*quiet=*/false);
  s3_internal::Request req;
  req.method = "POST";
  req.op = "DeleteObjects";
  req.bucket = bucket;
  req.query = {{"delete", ""}};
  req.body = &body;
  req.content_type = "application/xml";
  Result<s3_internal::Response> resp = Execute(req);
  if (!resp.ok()) return resp.status();
  if (!resp->ok()) return MapError(req, *resp);
  Result<std::vector<DeleteOutcome>> entries = s3::ParseDeleteResult(resp->body);
  if (!entries.ok()) return entries.status();

  // Match the answer's entries to the request's ids: by key and version, then by key alone
  // (stores differ in whether they echo the version id).
  std::multimap<std::pair<std::string, std::string>, size_t> exact;
  std::multimap<std::string, size_t> by_key;
  for (size_t p : positions) {
    exact.emplace(std::make_pair(ids[p].key, ids[p].version_id), p);
    by_key.emplace(ids[p].key, p);
  }
  std::vector<bool> done(ids.size(), false);
  std::map<std::pair<std::string, std::string>, DeleteOutcome> seen;
  auto take = [&](size_t p, const DeleteOutcome& e) {
    done[p] = true;
    DeleteOutcome o = e;
    o.id = ids[p];
    (*out)[p] = o;
    seen.emplace(std::make_pair(ids[p].key, ids[p].version_id), o);
    for (auto it = exact.begin(); it != exact.end(); ++it) {
      if (it->second == p) {
        exact.erase(it);
        break;
      }
    }
    for (auto it = by_key.begin(); it != by_key.end(); ++it) {
      if (it->second == p) {
        by_key.erase(it);
        break;
      }
    }
  };
  for (const DeleteOutcome& e : *entries) {
    auto it = exact.find({e.id.key, e.id.version_id});
    if (it != exact.end()) {
      take(it->second, e);
      continue;
    }
    auto kt = by_key.find(e.id.key);
    if (kt != by_key.end()) take(kt->second, e);
  }
  for (size_t p : positions) {
    if (done[p]) continue;
    auto it = seen.find({ids[p].key, ids[p].version_id});
    if (it != seen.end()) {  // the same id twice in the request, answered once
      (*out)[p] = it->second;
      continue;
    }
    DeleteOutcome o;
    o.id = ids[p];
    o.error_code = "MissingFromResponse";
    o.error_message = "the store's DeleteObjects answer did not mention this key";
    (*out)[p] = o;
  }
  return Status::Ok();
}

Result<std::vector<DeleteOutcome>> S3Client::DeleteObjects(const std::string& bucket,
                                                           const std::vector<ObjectId>& ids) {
  DS_RETURN_IF_ERROR(impl_->CheckNames(bucket, nullptr));
  std::vector<DeleteOutcome> out(ids.size());
  std::vector<size_t> batch;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i].key.empty()) {
      out[i].id = ids[i];
      out[i].error_code = "InvalidArgument";
      out[i].error_message = "empty key";
      continue;
    }
    if (!s3::IsXmlSafe(ids[i].key) || !s3::IsXmlSafe(ids[i].version_id)) {
      Result<DeleteOutcome> o = impl_->DeleteOne(bucket, ids[i]);
      if (!o.ok()) return o.status();
      out[i] = std::move(o).value();
      continue;
    }
    batch.push_back(i);
    if (batch.size() == kDeleteBatch) {
      DS_RETURN_IF_ERROR(impl_->DeleteBatch(bucket, ids, batch, &out));
      batch.clear();
    }
  }
  if (!batch.empty()) DS_RETURN_IF_ERROR(impl_->DeleteBatch(bucket, ids, batch, &out));
  return out;
}

}  // namespace ds
