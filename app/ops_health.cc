#include "ops_health.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <nlohmann/json.hpp>

#include "core/cache_fs.h"
#include "core/cache_layout.h"
#include "fs/posix.h"
#include "s3/client.h"

namespace ds::app {
namespace {

int64_t MillisSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               t0)
      .count();
}

}  // namespace

std::string ReadyReport::ToJson() const {
  nlohmann::ordered_json j;
  j["ready"] = ready;
  j["checks"] = nlohmann::ordered_json::array();
  for (const CheckResult& c : checks) {
    j["checks"].push_back({{"name", c.name}, {"ok", c.ok}, {"ms", c.ms}, {"detail", c.detail}});
  }
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

ReadinessChecker::ReadinessChecker(StateStore& state, std::string cache_root,
                                   std::unique_ptr<S3Client> probe, std::string bucket,
                                   std::string prefix)
    : state_(state),
      cache_root_(std::move(cache_root)),
      probe_(std::move(probe)),
      bucket_(std::move(bucket)),
      prefix_(std::move(prefix)) {}

ReadyReport ReadinessChecker::Check(bool stopping) const {
  ReadyReport r;
  if (stopping) r.checks.push_back({"shutdown", false, "the service is stopping", 0});

  auto t0 = std::chrono::steady_clock::now();
  Result<std::pair<int64_t, int64_t>> counts = state_.JobCounts();
  r.checks.push_back({"state", counts.ok(),
                      counts.ok() ? std::to_string(counts->first) + " download(s) waiting"
                                  : counts.status().ToString(),
                      MillisSince(t0)});

  t0 = std::chrono::steady_clock::now();
  static std::atomic<uint64_t> seq{0};
  std::string probe = CacheLayout(cache_root_).ReservedDir() + "/readyz-" +
                      std::to_string(getpid()) + "-" + std::to_string(seq++);
  // A plain (not durable) write: the probe asks whether the folder takes new files, not
  // whether they survive a crash, and must stay cheap on a shared file system.
  UniqueFd fd(open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  bool cache_ok = fd.valid();
  std::string cache_detail = "writable";
  if (!cache_ok) {
    cache_detail = "cannot create a file in " + CacheLayout(cache_root_).ReservedDir() + ": " +
                   posix::ErrnoText(errno);
  } else {
    if (write(fd.get(), "ok\n", 3) != 3) {
      cache_ok = false;
      cache_detail = "cannot write to the cache folder: " + posix::ErrnoText(errno);
    }
    fd.reset();
    if (unlink(probe.c_str()) != 0 && cache_ok) {
      cache_ok = false;
      cache_detail = "cannot remove a file in the cache folder: " + posix::ErrnoText(errno);
    }
  }
  r.checks.push_back({"cache", cache_ok, cache_detail, MillisSince(t0)});

  if (disk_cache_ != nullptr && reserve_ > 0) {
    t0 = std::chrono::steady_clock::now();
    Result<bool> has = disk_cache_->HasReserve();
    Result<uint64_t> free_bytes = disk_cache_->FreeBytes();
    const std::string free_text =
        free_bytes.ok() ? std::to_string(*free_bytes) + " bytes free" : "free space unknown";
    if (!has.ok()) {
      r.checks.push_back({"disk", false, has.status().ToString(), MillisSince(t0)});
    } else if (*has && free_bytes.ok() && *free_bytes < reserve_ / 4) {
      r.checks.push_back({"disk", false,
                          "the cache's file system is nearly full (" + free_text +
                              "): downloads fail until space returns; the reserve of " +
                              std::to_string(reserve_) + " bytes keeps removals working",
                          MillisSince(t0)});
    } else if (*has) {
      r.checks.push_back(
          {"disk", true, free_text + "; reserve of " + std::to_string(reserve_) + " bytes in place",
           MillisSince(t0)});
    } else {
      r.checks.push_back({"disk", false,
                          "the cache's file system is full (" + free_text + "): its reserve of " +
                              std::to_string(reserve_) +
                              " bytes is released for removals; downloads wait until space returns",
                          MillisSince(t0)});
    }
  }

  t0 = std::chrono::steady_clock::now();
  if (!probe_ || bucket_.empty()) {
    r.checks.push_back({"s3", false,
                        !probe_ ? "object store not configured" : "no --bucket to check",
                        MillisSince(t0)});
  } else {
    Status bucket = probe_->CheckBucket(bucket_, prefix_);
    r.checks.push_back({"s3", bucket.ok(),
                        bucket.ok() ? "bucket '" + bucket_ + "' answered" : bucket.message(),
                        MillisSince(t0)});
  }

  r.ready = true;
  for (const CheckResult& c : r.checks) r.ready = r.ready && c.ok;
  return r;
}

std::unique_ptr<S3Client> MakeProbeClient(const S3Client* store,
                                          std::chrono::milliseconds timeout) {
  if (store == nullptr) return nullptr;
  S3Config cfg = store->config();
  cfg.max_attempts = 1;
  cfg.connect_timeout = timeout;
  cfg.request_timeout = timeout;
  return std::make_unique<S3Client>(cfg);
}

}  // namespace ds::app
