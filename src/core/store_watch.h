// Saying when work waits on the object store: which requests are outstanding, for how long,
// and at which endpoint. A WatchedStore wraps the real store and records each request in a
// StoreWatch; passes and the service ask the watch what has been waiting for too long. Time
// comes from the Clock (tests drive it); nothing here does I/O.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "common/clock.h"
#include "core/object_store.h"

namespace ds {

// A request is reported once it has waited this long, then again every kStoreWaitNoticeEveryMs.
inline constexpr int64_t kStoreWaitNoticeAfterMs = 5000;
inline constexpr int64_t kStoreWaitNoticeEveryMs = 10000;

struct StoreWait {
  std::string op;         // "ListObjectsV2", "GetObject", "HeadObject", "DeleteObjects"
  std::string target;     // "s3://bucket/prefix-or-key"
  std::string progress;   // what came back so far ("" when nothing yet)
  std::string endpoint;   // where the request went
  int64_t waited_ms = 0;  // since the request was sent, or since the store last sent data
};

// "ListObjectsV2 s3://b/p (1,000 object(s) listed so far): no answer from
// http://127.0.0.1:7480 for 15 s"
std::string DescribeStoreWait(const StoreWait& w);

class StoreWatch {
 public:
  StoreWatch(Clock& clock, std::string endpoint);

  // A request is sent: waiting on the store from now. Returns its id.
  uint64_t Begin(std::string op, std::string target);
  // The store answered something (`count` objects listed or bytes received so far, the last
  // key listed): not waiting on it while our side handles the answer.
  void Pause(uint64_t id, int64_t count, const std::string& last_key = "");
  // Our side handed control back to the store: waiting on it again from now.
  void Resume(uint64_t id);
  void End(uint64_t id);

  // The requests that have waited on the store for at least `min_ms`, longest first.
  std::vector<StoreWait> Waiting(int64_t min_ms);
  // For a log line every so often: each request is returned once its wait reaches `after_ms`,
  // then `after_ms + every_ms`, `after_ms + 2 * every_ms`, ... (one call may be late: the next
  // is still due on that schedule).
  std::vector<StoreWait> Due(int64_t after_ms, int64_t every_ms);

  const std::string& endpoint() const { return endpoint_; }

 private:
  struct Request {
    std::string op, target, last_key;
    int64_t count = 0;
    bool waiting = true;
    int64_t since_ms = 0;
    int64_t next_notice_ms = -1;  // the wait at which Due reports it next; -1: after_ms
  };
  StoreWait ToWait(const Request& r, int64_t now) const;

  Clock& clock_;
  const std::string endpoint_;
  std::mutex mu_;
  uint64_t next_id_ = 1;
  std::map<uint64_t, Request> requests_;
};

// An ObjectStore that records every request of `inner` in `watch`. A listing waits on the
// store until its first key and between keys (the next page), not while `visit` runs; a
// download waits until its first bytes and between chunks, not while the sink writes.
class WatchedStore : public ObjectStore {
 public:
  WatchedStore(ObjectStore& inner, StoreWatch& watch) : inner_(inner), watch_(watch) {}

  Result<ObjectInfo> GetObject(const std::string& bucket, const std::string& key,
                               const std::string& version_id, const BodySink& sink) override;
  Result<ObjectInfo> HeadObject(const std::string& bucket, const std::string& key,
                                const std::string& version_id) override;
  Status ListObjects(const std::string& bucket, const std::string& prefix,
                     const std::function<bool(const ObjectInfo&)>& visit) override;
  Result<std::vector<DeleteOutcome>> DeleteObjects(const std::string& bucket,
                                                   const std::vector<ObjectId>& ids) override;

  StoreWatch& watch() { return watch_; }

 private:
  ObjectStore& inner_;
  StoreWatch& watch_;
};

}  // namespace ds
