// The worker lanes of HttpListener: a fixed set of threads running queued jobs in order (the
// sender lane and the operator lane, http_listener.h). Private to src/transport/ (the listener's
// files include it through listener_internal.h).
//
// Enqueue never blocks and never refuses a job; Shutdown runs every job queued before it, then
// joins the threads. busy() and queued() may be read from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace ds {

// Named rather than anonymous: HttpListener::Impl holds Lanes (GCC's -Wsubobject-linkage for a
// member whose type is in an anonymous namespace of a header, or of a file compiled in a unity
// batch, where it counts as an included file).
namespace listener_internal {

// A fixed set of threads running queued jobs in order; counts the busy ones.
class Lanes {
 public:
  explicit Lanes(int threads) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Run(); });
  }
  ~Lanes() { Shutdown(); }
  void Enqueue(std::function<void()> job) {
    {
      std::lock_guard<std::mutex> l(mu_);
      jobs_.push_back(std::move(job));
    }
    cv_.notify_one();
  }
  // Runs what is queued, then joins the threads.
  void Shutdown() {
    {
      std::lock_guard<std::mutex> l(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (std::thread& t : threads_) {
      if (t.joinable()) t.join();
    }
    threads_.clear();
  }
  int64_t busy() const { return busy_; }
  int64_t queued() const {
    std::lock_guard<std::mutex> l(mu_);
    return static_cast<int64_t>(jobs_.size());
  }

 private:
  void Run() {
    while (true) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> l(mu_);
        cv_.wait(l, [this] { return stopping_ || !jobs_.empty(); });
        if (jobs_.empty()) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
        ++busy_;
      }
      job();
      --busy_;
    }
  }

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::atomic<int64_t> busy_{0};
  std::vector<std::thread> threads_;
};

}  // namespace listener_internal

}  // namespace ds
