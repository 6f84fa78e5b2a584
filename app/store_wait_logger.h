// A warning in the log for each request to the object store that has had no answer for a while
// (commands that end, and serve's reconcile passes).
#pragma once

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "core/store_watch.h"

namespace ds::app {

// While alive, logs a warning for each request to the store that has had no answer for
// kStoreWaitNoticeAfterMs, and again every kStoreWaitNoticeEveryMs while it still waits:
// "<context>: waiting on the store: ListObjectsV2 s3://b/ (...): no answer from <endpoint> for
// 15 s". Looks once a second. Does nothing for a null watch.
class StoreWaitLogger {
 public:
  StoreWaitLogger(StoreWatch* watch, std::string context);
  ~StoreWaitLogger();
  StoreWaitLogger(const StoreWaitLogger&) = delete;
  StoreWaitLogger& operator=(const StoreWaitLogger&) = delete;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace ds::app
