#include "core/erase.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

namespace ds {

using nlohmann::json;

bool ValidRequestId(const std::string& id) {
  if (id.empty() || id.size() > 128 || id[0] == '.') return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

Status ValidateEraseRequest(const EraseRequest& r) {
  if (r.bucket.empty()) return Status::Invalid("--bucket is required (or DELETE_SYNC_BUCKET)");
  int selectors = (r.keys.empty() ? 0 : 1) + (r.prefix ? 1 : 0) + (r.subject ? 1 : 0);
  if (selectors != 1) {
    return Status::Invalid("give exactly one of --key (repeatable), --prefix or --subject");
  }
  for (const std::string& k : r.keys) {
    if (k.empty()) return Status::Invalid("--key must not be empty");
  }
  if (r.subject && r.subject->empty()) return Status::Invalid("--subject must not be empty");
  if (r.scan && !r.subject) return Status::Invalid("--scan goes with --subject");
  if (!ValidRequestId(r.request_id)) {
    return Status::Invalid("request id '" + PrintableKey(r.request_id, 140) +
                           "' must be 1-128 of A-Z a-z 0-9 . _ - and not start with '.'");
  }
  return Status::Ok();
}

json EraseRequestToJson(const EraseRequest& r) {
  json j = json::object();
  j["request_id"] = r.request_id;
  j["bucket"] = r.bucket;
  if (!r.keys.empty()) j["keys"] = r.keys;
  if (r.prefix) j["prefix"] = *r.prefix;
  if (r.subject) {
    j["subject"] = *r.subject;
    j["scan"] = r.scan;
  }
  return j;
}

Result<EraseRequest> EraseRequestFromJson(const json& j) {
  if (!j.is_object()) return Status::Invalid("the erasure request must be a JSON object");
  EraseRequest r;
  static const std::set<std::string> kKnown = {"request_id", "bucket",  "keys",
                                               "prefix",     "subject", "scan"};
  for (const auto& [name, value] : j.items()) {
    if (!kKnown.count(name)) return Status::Invalid("unknown field '" + name + "'");
    if (name == "keys") {
      if (!value.is_array()) return Status::Invalid("'keys' must be an array of strings");
      for (const json& k : value) {
        if (!k.is_string()) return Status::Invalid("'keys' must be an array of strings");
        r.keys.push_back(k.get<std::string>());
      }
      if (r.keys.empty()) return Status::Invalid("'keys' must not be empty");
    } else if (name == "scan") {
      if (!value.is_boolean()) return Status::Invalid("'scan' must be true or false");
      r.scan = value.get<bool>();
    } else {
      if (!value.is_string()) return Status::Invalid("'" + name + "' must be a string");
      std::string v = value.get<std::string>();
      if (name == "request_id") r.request_id = v;
      if (name == "bucket") r.bucket = v;
      if (name == "prefix") r.prefix = v;
      if (name == "subject") r.subject = v;
    }
  }
  DS_RETURN_IF_ERROR(ValidateEraseRequest(r));
  return r;
}

namespace {

json PositionJson(const std::optional<AuditRef>& p) {
  if (!p) return nullptr;
  return json{{"seq", p->seq}, {"hash", p->hash}};
}

bool MatchesField(const std::string& name, const std::string& field) {
  auto norm = [](std::string v) {
    for (char& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    static const std::string kPrefix = "x-amz-meta-";
    return v.compare(0, kPrefix.size(), kPrefix) == 0 ? v.substr(kPrefix.size()) : v;
  };
  return !field.empty() && norm(name) == norm(field);
}

// The versions of exactly `key` (a listing by prefix also returns longer keys).
Result<std::vector<VersionEntry>> VersionsOf(VersionedStore& vs, const std::string& bucket,
                                             const std::string& key) {
  Result<std::vector<VersionEntry>> all = vs.ListVersions(bucket, key);
  if (!all.ok()) return all.status();
  std::vector<VersionEntry> out;
  for (const VersionEntry& v : *all) {
    if (v.key == key) out.push_back(v);
  }
  return out;
}

}  // namespace

Result<EraseOutcome> RunErase(const EraseRequest& req, const EraseDeps& deps) {
  DS_RETURN_IF_ERROR(ValidateEraseRequest(req));
  Clock& clock = *deps.clock;
  const int64_t started = clock.NowMillis();
  const json request = EraseRequestToJson(req);

  // 1. The request is on record before anything is touched.
  std::optional<AuditRef> request_pos;
  if (deps.audit) {
    Result<AuditRef> p = deps.audit("erasure-request", json{{"request", request}});
    if (!p.ok()) return Status(p.status().code(), "audit log: " + p.status().message());
    request_pos = *p;
  }
  spdlog::info("erase {}: {}", req.request_id,
               request.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));

  // 2. Resolve the keys.
  std::set<std::string> keys(req.keys.begin(), req.keys.end());
  json resolution = json::object();
  json resolution_errors = json::array();
  if (req.prefix) {
    Result<std::vector<VersionEntry>> listed = deps.versions->ListVersions(req.bucket, *req.prefix);
    if (listed.ok()) {
      for (const VersionEntry& v : *listed) keys.insert(v.key);
    } else {
      resolution_errors.push_back("bucket listing: " + listed.status().ToString());
    }
    Status ws = deps.cache->Walk(*req.prefix, [&](const std::string& p, const CacheEntryInfo&) {
      keys.insert(p);
      return true;
    });
    if (!ws.ok()) resolution_errors.push_back("cache walk: " + ws.ToString());
  }
  if (req.subject) {
    Result<std::vector<std::string>> indexed = deps.state->SubjectKeys(*req.subject, req.bucket);
    if (indexed.ok()) {
      keys.insert(indexed->begin(), indexed->end());
      resolution["indexed_keys"] = indexed->size();
    } else {
      resolution_errors.push_back("subject index: " + indexed.status().ToString());
    }
    if (req.scan) {
      int64_t scanned = 0, matched = 0;
      std::vector<std::string> all;
      Status ls = deps.store->ListObjects(req.bucket, "", [&](const ObjectInfo& o) {
        all.push_back(o.key);
        return true;
      });
      if (!ls.ok()) resolution_errors.push_back("bucket scan: " + ls.ToString());
      for (const std::string& k : all) {
        Result<ObjectInfo> head = deps.store->HeadObject(req.bucket, k, "");
        ++scanned;
        if (!head.ok()) {
          if (head.status().code() != Code::kNotFound) {
            resolution_errors.push_back("bucket scan: HEAD " + PrintableKey(k) + ": " +
                                        head.status().ToString());
          }
          continue;
        }
        for (const auto& [name, value] : head->metadata) {
          if (value == *req.subject && MatchesField(name, deps.subject_field)) {
            keys.insert(k);
            ++matched;
            // Keep the index in step with what the scan found.
            Status is = deps.state->IndexSubject(value, req.bucket, k);
            if (!is.ok()) spdlog::warn("cannot index subject of {}: {}", k, is.ToString());
            break;
          }
        }
      }
      resolution["scanned_objects"] = scanned;
      resolution["scan_matches"] = matched;
    }
  }
  resolution["complete"] = resolution_errors.empty();
  resolution["errors"] = resolution_errors;
  resolution["keys"] = keys.size();

  // 3. Per key: the copy from the cache, then every version from the bucket. Cache first: the
  // bucket's own removal notification would otherwise remove the copy a moment earlier and the
  // receipt would say "absent" for a copy that this erasure did remove.
  json key_reports = json::array();
  int64_t versions_removed = 0, copies_removed = 0, unverified = 0;
  std::map<std::string, std::string> removed_paths;  // absolute path -> key
  for (const std::string& key : keys) {
    json kr = json::object();
    kr["key"] = key;
    bool bucket_ok = false;
    // Cache.
    json c = json::object();
    std::optional<KeyRefusal> refusal = CheckKey(key, deps.limits);
    if (refusal) {
      c["result"] = "not-a-path";
      c["detail"] = std::string(RefusalName(*refusal)) +
                    ": the key cannot be a cache path, so there is no cache copy to remove";
    } else {
      Result<bool> r = deps.engine->RemoveForErasure(req.bucket, key, req.request_id);
      if (r.ok()) {
        c["result"] = *r ? "removed" : "absent";
        if (*r) ++copies_removed;
      } else {
        c["result"] = "failed";
        c["error"] = r.status().ToString();
      }
      removed_paths[deps.cache_root + "/" + key] = key;
    }
    c["time"] = FormatUtcMillis(clock.NowMillis());
    kr["cache"] = c;
    // Bucket.
    json b = json::object();
    Result<std::vector<VersionEntry>> vers = VersionsOf(*deps.versions, req.bucket, key);
    if (!vers.ok()) {
      b["result"] = "failed";
      b["error"] = vers.status().ToString();
    } else if (vers->empty()) {
      b["result"] = "nothing-left";
      b["versions_removed"] = json::array();
      bucket_ok = true;
    } else {
      std::vector<ObjectId> ids;
      for (const VersionEntry& v : *vers) ids.push_back({v.key, v.version_id});
      Result<std::vector<DeleteOutcome>> del = deps.versions->DeleteVersions(req.bucket, ids);
      if (!del.ok()) {
        b["result"] = "failed";
        b["error"] = del.status().ToString();
      } else {
        json removed = json::array();
        json failed = json::array();
        for (size_t i = 0; i < del->size() && i < vers->size(); ++i) {
          const DeleteOutcome& o = (*del)[i];
          json v = {{"version_id", (*vers)[i].version_id},
                    {"delete_marker", (*vers)[i].is_delete_marker}};
          if (o.deleted) {
            removed.push_back(v);
            ++versions_removed;
          } else {
            v["error"] = o.error_code + (o.error_message.empty() ? "" : ": " + o.error_message);
            failed.push_back(v);
          }
        }
        b["versions_removed"] = removed;
        if (!failed.empty()) b["versions_failed"] = failed;
        b["result"] = failed.empty() ? "deleted" : "partial";
        bucket_ok = failed.empty();
      }
    }
    b["time"] = FormatUtcMillis(clock.NowMillis());
    kr["bucket"] = b;

    (void)bucket_ok;
    key_reports.push_back(kr);
  }

  // 4. Verification: nothing left in the bucket (listing and HEAD), nothing in the cache.
  bool verified = resolution_errors.empty();
  for (json& kr : key_reports) {
    const std::string key = kr["key"].get<std::string>();
    json v = json::object();
    bool key_ok = true;
    Result<std::vector<VersionEntry>> left = VersionsOf(*deps.versions, req.bucket, key);
    if (!left.ok()) {
      v["bucket_listing"] = "unverified: " + left.status().ToString();
      key_ok = false;
    } else if (!left->empty()) {
      v["bucket_listing"] = "versions-left";
      v["versions_left"] = left->size();
      key_ok = false;
    } else {
      v["bucket_listing"] = "gone";
    }
    Result<ObjectInfo> head = deps.store->HeadObject(req.bucket, key, "");
    if (head.ok()) {
      v["head"] = "present";
      key_ok = false;
    } else if (head.status().code() == Code::kNotFound) {
      v["head"] = "not-found";
    } else {
      v["head"] = "unverified: " + head.status().ToString();
      key_ok = false;
    }
    if (kr["cache"]["result"] == "not-a-path") {
      v["cache"] = "not-a-path";
    } else {
      Result<CacheEntryInfo> st = deps.cache->Stat(key);
      if (!st.ok()) {
        v["cache"] = "unverified: " + st.status().ToString();
        key_ok = false;
      } else if (st->exists && !st->is_dir) {
        v["cache"] = "present";
        key_ok = false;
      } else {
        v["cache"] = "absent";
      }
    }
    v["verified"] = key_ok;
    v["time"] = FormatUtcMillis(clock.NowMillis());
    kr["verification"] = v;
    if (key_ok) {
      Status us = deps.state->UnindexKey(req.bucket, key);
      if (!us.ok()) spdlog::warn("cannot drop index rows of {}: {}", key, us.ToString());
    } else {
      ++unverified;
      verified = false;
    }
  }

  // 5. Processes still holding a removed file open.
  json holders = json::array();
  json holder_scan = json::object();
  if (deps.scan_holders) {
    std::vector<OpenHolder> all;
    bool complete = true;
    Status hs = deps.scan_holders(&all, &complete);
    if (!hs.ok()) {
      holder_scan["result"] = "failed: " + hs.ToString();
      complete = false;
    } else {
      holder_scan["result"] = "done";
    }
    holder_scan["complete"] = complete;
    for (const OpenHolder& h : all) {
      auto it = removed_paths.find(h.path);
      if (it == removed_paths.end()) continue;
      holders.push_back({{"pid", h.pid},
                         {"command", h.command},
                         {"fd", h.fd},
                         {"path", h.path},
                         {"key", it->second},
                         {"unlinked", h.deleted}});
    }
  } else {
    holder_scan["result"] = "skipped";
    holder_scan["complete"] = false;
  }
  const bool released = holders.empty();

  const bool nothing_found = versions_removed == 0 && copies_removed == 0;
  json summary = {{"keys", keys.size()},
                  {"versions_removed", versions_removed},
                  {"cache_copies_removed", copies_removed},
                  {"keys_unverified", unverified},
                  {"open_holders", holders.size()},
                  {"nothing_found", nothing_found}};

  // 6. The verification is on record too; its position covers the whole erasure.
  std::optional<AuditRef> verification_pos;
  std::string audit_error;
  if (deps.audit) {
    json failures = json::array();
    for (const json& kr : key_reports) {
      if (!kr["verification"]["verified"].get<bool>()) failures.push_back(kr["key"]);
    }
    json fields = {
        {"request_id", req.request_id}, {"verified", verified},
        {"data_released", released},    {"summary", summary},
        {"unverified_keys", failures},  {"resolution_complete", resolution_errors.empty()}};
    Result<AuditRef> p = deps.audit("verification", fields);
    if (p.ok()) {
      verification_pos = *p;
    } else {
      audit_error = p.status().ToString();
      verified = false;
    }
  }

  EraseOutcome out;
  out.verified = verified;
  out.data_released = released;
  json receipt = json::object();
  receipt["request_id"] = req.request_id;
  receipt["request"] = request;
  receipt["started"] = FormatUtcMillis(started);
  receipt["finished"] = FormatUtcMillis(clock.NowMillis());
  receipt["resolution"] = resolution;
  receipt["keys"] = key_reports;
  receipt["summary"] = summary;
  receipt["verification"] = {
      {"verified", verified}, {"data_released", released}, {"holder_scan", holder_scan}};
  receipt["open_holders"] = holders;
  receipt["audit"] = {{"request", PositionJson(request_pos)},
                      {"verification", PositionJson(verification_pos)}};
  if (!audit_error.empty()) receipt["audit"]["error"] = audit_error;
  if (!deps.audit) receipt["audit"]["note"] = "no audit log (audit-log = off)";
  receipt["ok"] = out.ok();
  if (nothing_found && out.ok()) {
    receipt["message"] = "nothing left to erase: no version in the bucket, no copy in the cache";
  }
  out.receipt = std::move(receipt);
  return out;
}

}  // namespace ds
