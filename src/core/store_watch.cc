#include "core/store_watch.h"

#include <algorithm>

#include "core/key_path.h"

namespace ds {

namespace {

// Ends the request when the call returns, however it returns.
class Scope {
 public:
  Scope(StoreWatch& w, std::string op, std::string target)
      : w_(w), id_(w.Begin(std::move(op), std::move(target))) {}
  ~Scope() { w_.End(id_); }
  uint64_t id() const { return id_; }

 private:
  StoreWatch& w_;
  uint64_t id_;
};

std::string Target(const std::string& bucket, const std::string& key) {
  return "s3://" + bucket + "/" + PrintableKey(key);
}

// 1234567 -> "1,234,567"
std::string Thousands(int64_t n) {
  const std::string digits = std::to_string(n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && digits[i - 1] != '-' && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

}  // namespace

std::string DescribeStoreWait(const StoreWait& w) {
  std::string s = w.op + " " + w.target;
  if (!w.progress.empty()) s += " (" + w.progress + ")";
  s += ": no answer";
  if (!w.endpoint.empty()) s += " from " + w.endpoint;
  s += " for " + std::to_string(w.waited_ms / 1000) + " s";
  return s;
}

StoreWatch::StoreWatch(Clock& clock, std::string endpoint)
    : clock_(clock), endpoint_(std::move(endpoint)) {}

uint64_t StoreWatch::Begin(std::string op, std::string target) {
  int64_t now = clock_.NowMillis();
  std::lock_guard<std::mutex> l(mu_);
  uint64_t id = next_id_++;
  Request& r = requests_[id];
  r.op = std::move(op);
  r.target = std::move(target);
  r.since_ms = now;
  return id;
}

void StoreWatch::Pause(uint64_t id, int64_t count, const std::string& last_key) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = requests_.find(id);
  if (it == requests_.end()) return;
  it->second.waiting = false;
  it->second.count = count;
  it->second.last_key.assign(last_key);
}

void StoreWatch::Resume(uint64_t id) {
  int64_t now = clock_.NowMillis();
  std::lock_guard<std::mutex> l(mu_);
  auto it = requests_.find(id);
  if (it == requests_.end()) return;
  it->second.waiting = true;
  it->second.since_ms = now;
  it->second.next_notice_ms = -1;
}

void StoreWatch::End(uint64_t id) {
  std::lock_guard<std::mutex> l(mu_);
  requests_.erase(id);
}

StoreWait StoreWatch::ToWait(const Request& r, int64_t now) const {
  std::string progress;
  if (r.count > 0) {
    progress = r.op == "ListObjectsV2"
                   ? Thousands(r.count) + " object(s) listed so far, the last '" +
                         PrintableKey(r.last_key) + "'"
                   : Thousands(r.count) + " byte(s) received so far";
  }
  return StoreWait{r.op, r.target, progress, endpoint_, std::max<int64_t>(0, now - r.since_ms)};
}

std::vector<StoreWait> StoreWatch::Waiting(int64_t min_ms) {
  int64_t now = clock_.NowMillis();
  std::vector<StoreWait> out;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& [id, r] : requests_) {
      if (r.waiting && now - r.since_ms >= min_ms) out.push_back(ToWait(r, now));
    }
  }
  std::stable_sort(out.begin(), out.end(), [](const StoreWait& a, const StoreWait& b) {
    return a.waited_ms > b.waited_ms;
  });
  return out;
}

std::vector<StoreWait> StoreWatch::Due(int64_t after_ms, int64_t every_ms) {
  int64_t now = clock_.NowMillis();
  std::vector<StoreWait> out;
  std::lock_guard<std::mutex> l(mu_);
  for (auto& [id, r] : requests_) {
    if (!r.waiting) continue;
    int64_t waited = now - r.since_ms;
    if (waited < (r.next_notice_ms < 0 ? after_ms : r.next_notice_ms)) continue;
    r.next_notice_ms = after_ms + ((waited - after_ms) / std::max<int64_t>(1, every_ms) + 1) *
                                      std::max<int64_t>(1, every_ms);
    out.push_back(ToWait(r, now));
  }
  return out;
}

Result<ObjectInfo> WatchedStore::GetObject(const std::string& bucket, const std::string& key,
                                           const std::string& version_id, const BodySink& sink) {
  Scope scope(watch_, "GetObject", Target(bucket, key));
  uint64_t received = 0;
  return inner_.GetObject(bucket, key, version_id, [&](const char* data, size_t size) {
    received += size;
    watch_.Pause(scope.id(), static_cast<int64_t>(received));
    Status s = sink(data, size);
    watch_.Resume(scope.id());
    return s;
  });
}

Result<ObjectInfo> WatchedStore::HeadObject(const std::string& bucket, const std::string& key,
                                            const std::string& version_id) {
  Scope scope(watch_, "HeadObject", Target(bucket, key));
  return inner_.HeadObject(bucket, key, version_id);
}

Status WatchedStore::ListObjects(const std::string& bucket, const std::string& prefix,
                                 const std::function<bool(const ObjectInfo&)>& visit) {
  Scope scope(watch_, "ListObjectsV2", Target(bucket, prefix));
  int64_t listed = 0;
  return inner_.ListObjects(bucket, prefix, [&](const ObjectInfo& info) {
    ++listed;
    watch_.Pause(scope.id(), listed, info.key);
    bool more = visit(info);
    watch_.Resume(scope.id());
    return more;
  });
}

Result<std::vector<DeleteOutcome>> WatchedStore::DeleteObjects(const std::string& bucket,
                                                               const std::vector<ObjectId>& ids) {
  Scope scope(watch_, "DeleteObjects",
              "s3://" + bucket + " (" + Thousands(static_cast<int64_t>(ids.size())) + " key(s))");
  return inner_.DeleteObjects(bucket, ids);
}

}  // namespace ds
