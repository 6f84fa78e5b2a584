#include "store_wait_logger.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <utility>

namespace ds::app {

StoreWaitLogger::StoreWaitLogger(StoreWatch* watch, std::string context) {
  if (watch == nullptr) return;
  thread_ = std::thread([this, watch, context = std::move(context)] {
    std::unique_lock<std::mutex> l(mu_);
    while (!cv_.wait_for(l, std::chrono::seconds(1), [&] { return stop_; })) {
      for (const StoreWait& w : watch->Due(kStoreWaitNoticeAfterMs, kStoreWaitNoticeEveryMs)) {
        spdlog::warn("{}: waiting on the store: {}", context, DescribeStoreWait(w));
      }
    }
  });
}

StoreWaitLogger::~StoreWaitLogger() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace ds::app
