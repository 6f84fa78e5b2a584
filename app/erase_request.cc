#include "erase_request.h"

#include <limits.h>
#include <spdlog/spdlog.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <mutex>
#include <random>

#include "core/cache_layout.h"
#include "fs/open_holders.h"
#include "fs/posix.h"
#include "s3/versioned_adapter.h"

namespace ds::app {

std::string NewRequestId(int64_t now_ms) {
  std::string t = FormatUtcMillis(now_ms);  // 2024-01-02T03:04:05.678Z
  std::string compact;
  for (char c : t) {
    if (std::isalnum(static_cast<unsigned char>(c))) compact += c;
  }
  std::random_device rd;
  char rnd[9];
  std::snprintf(rnd, sizeof rnd, "%08x", static_cast<unsigned>(rd()));
  return "erase-" + compact + "-" + rnd;
}

namespace {

// Writes `text` to "<dir>/<id>.json" (or "<id>.2.json", ... when a receipt of that request id
// exists: receipts are never overwritten): temp file, fsync, link into place, fsync the folder.
Result<std::string> WriteReceipt(const std::string& dir, const std::string& id,
                                 const std::string& text) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::Io("create " + dir + ": " + ec.message());
  std::string tmp = dir + "/." + id + ".tmp." + std::to_string(getpid());
  posix::WriteFileOptions tmp_opts;
  tmp_opts.sync_folder = false;  // the folder is fsynced once the receipt is linked into place
  DS_RETURN_IF_ERROR(posix::WriteFileDurably(tmp, text, tmp_opts));
  std::string final_path;
  for (int n = 1; n < 10000; ++n) {
    final_path = dir + "/" + id + (n == 1 ? "" : "." + std::to_string(n)) + ".json";
    if (link(tmp.c_str(), final_path.c_str()) == 0) break;
    if (errno != EEXIST) {
      int err = errno;
      unlink(tmp.c_str());
      return posix::IoError("link " + final_path, err);
    }
    final_path.clear();
  }
  unlink(tmp.c_str());
  if (final_path.empty()) return Status::Io("too many receipts for request id " + id);
  DS_RETURN_IF_ERROR(posix::FsyncDir(dir));
  return final_path;
}

}  // namespace

Result<ErasureResult> ExecuteErase(Runtime& rt, const std::string& cache_root,
                                   const std::string& receipts_dir, const EraseRequest& req) {
  char resolved[PATH_MAX];
  if (realpath(cache_root.c_str(), resolved) == nullptr) {
    return posix::IoError("realpath " + cache_root, errno);
  }
  if (rt.s3 == nullptr) return Status::Invalid("erase needs the object store (AWS_* variables)");
  S3VersionedStore versions(*rt.s3);
  EraseDeps deps;
  deps.versions = &versions;
  deps.store = rt.s3.get();
  deps.cache = rt.cache.get();
  deps.state = rt.state.get();
  deps.engine = rt.engine.get();
  deps.clock = &SystemClock();
  deps.limits = rt.engine->options().limits;
  deps.cache_root = resolved;
  deps.subject_field = rt.engine->options().subject_field;
  if (rt.audit) {
    AuditLog* log = rt.audit.get();
    deps.audit = [log](const std::string& type, const nlohmann::json& fields) -> Result<AuditRef> {
      Result<AuditPosition> p = log->Append(type, fields);
      if (!p.ok()) return p.status();
      return AuditRef{p->seq, p->hash};
    };
  }
  std::string root = resolved;
  deps.scan_holders = [root](std::vector<OpenHolder>* h, bool* complete) {
    return ScanOpenHolders(root, h, complete);
  };

  Result<EraseOutcome> out = RunErase(req, deps);
  if (!out.ok()) return out.status();
  using nlohmann::json;
  ErasureResult result;
  result.ok = out->ok();
  // Keys are bytes: anything that is not UTF-8 is replaced in the JSON text, never thrown on.
  result.receipt_line = out->receipt.dump(-1, ' ', false, json::error_handler_t::replace);
  Result<std::string> written =
      WriteReceipt(receipts_dir, req.request_id,
                   out->receipt.dump(2, ' ', false, json::error_handler_t::replace) + "\n");
  if (written.ok()) {
    result.receipt_path = *written;
  } else {
    result.receipt_saved = written.status();
  }
  spdlog::info("erase {}: receipt {}; {}", req.request_id,
               written.ok() ? *written : std::string("(not kept)"),
               result.ok ? "verified gone" : "NOT everything verified gone");
  return result;
}

EraseReply HandleEraseRequest(Runtime& rt, const std::string& cache_root, const std::string& bucket,
                              const std::string& service, nlohmann::json request) {
  if (!request.contains("bucket") && !bucket.empty()) request["bucket"] = bucket;
  if (!request.contains("request_id")) {
    request["request_id"] = NewRequestId(SystemClock().NowMillis());
  }
  Result<EraseRequest> req = EraseRequestFromJson(request);
  Status v = req.ok() ? ValidateEraseRequest(*req) : req.status();
  if (v.ok() && !bucket.empty() && req->bucket != bucket) {
    v = Status::Invalid(service + " mirrors bucket '" + bucket + "', not '" + req->bucket + "'");
  }
  if (!v.ok()) return {EraseEnd::kInvalid, v.message(), ""};
  static std::mutex one_at_a_time;
  std::lock_guard<std::mutex> lock(one_at_a_time);
  const std::string dir = CacheLayout(cache_root).ReceiptsDir();
  Result<ErasureResult> out = ExecuteErase(rt, cache_root, dir, *req);
  if (!out.ok()) return {EraseEnd::kFailed, out.status().message(), ""};
  if (!out->receipt_saved.ok()) {
    return {EraseEnd::kReceiptNotKept, "cannot keep the receipt: " + out->receipt_saved.message(),
            out->receipt_line};
  }
  if (!out->ok) return {EraseEnd::kIncomplete, "", out->receipt_line};
  return {EraseEnd::kDone, "", out->receipt_line};
}

}  // namespace ds::app
