// Saying when work waits on the store: the StoreWatch's bookkeeping with a driven clock, the
// WatchedStore around a store that hangs, and a reconcile pass whose listing hangs: its
// progress names the request, how long it has waited and the endpoint.
#include "core/store_watch.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "core/reconcile.h"
#include "fakes/fakes.h"

namespace ds {
namespace {

using fakes::FakeCacheFs;
using fakes::FakeObjectStore;
using fakes::FakeStateStore;

constexpr char kEndpoint[] = "http://127.0.0.1:9";

// A clock that the test moves while other threads read it.
class DrivenClock : public Clock {
 public:
  int64_t NowMillis() override { return now_.load(); }
  void Advance(int64_t ms) { now_ += ms; }

 private:
  std::atomic<int64_t> now_{1'700'000'000'000};
};

// One-shot events between the test and the threads it runs.
class Latch {
 public:
  void Open() {
    {
      std::lock_guard<std::mutex> l(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }
  // Waits for Open; false after a minute (a hang in the code under test, not a timing
  // assumption: nothing here takes more than milliseconds).
  bool Wait() {
    std::unique_lock<std::mutex> l(mu_);
    return cv_.wait_for(l, std::chrono::minutes(1), [&] { return open_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

// The fake bucket, whose listing hangs after `hang_after` keys (like an endpoint that stops
// answering between two pages) until released.
class HangingStore : public FakeObjectStore {
 public:
  Status ListObjects(const std::string& bucket, const std::string& prefix,
                     const std::function<bool(const ObjectInfo&)>& visit) override {
    size_t n = 0;
    return FakeObjectStore::ListObjects(bucket, prefix, [&](const ObjectInfo& o) {
      if (n++ == hang_after) {
        hanging.Open();
        release.Wait();
      }
      return visit(o);
    });
  }
  size_t hang_after = 0;
  Latch hanging, release;
};

TEST(StoreWatchTest, ReportsARequestAfterItsFirstWaitThenEveryIntervalUntilItEnds) {
  DrivenClock clock;
  StoreWatch watch(clock, kEndpoint);
  uint64_t id = watch.Begin("ListObjectsV2", "s3://b/p/");
  clock.Advance(kStoreWaitNoticeAfterMs - 1);
  EXPECT_TRUE(watch.Waiting(kStoreWaitNoticeAfterMs).empty());
  EXPECT_TRUE(watch.Due(kStoreWaitNoticeAfterMs, kStoreWaitNoticeEveryMs).empty());
  clock.Advance(1);
  std::vector<StoreWait> due = watch.Due(kStoreWaitNoticeAfterMs, kStoreWaitNoticeEveryMs);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].waited_ms, 5000);
  EXPECT_EQ(DescribeStoreWait(due[0]),
            "ListObjectsV2 s3://b/p/: no answer from http://127.0.0.1:9 for 5 s");
  // Reported: not again until the next interval has passed.
  EXPECT_TRUE(watch.Due(kStoreWaitNoticeAfterMs, kStoreWaitNoticeEveryMs).empty());
  clock.Advance(kStoreWaitNoticeEveryMs - 1);
  EXPECT_TRUE(watch.Due(kStoreWaitNoticeAfterMs, kStoreWaitNoticeEveryMs).empty());
  clock.Advance(1);
  due = watch.Due(kStoreWaitNoticeAfterMs, kStoreWaitNoticeEveryMs);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].waited_ms, 15000);
  // An answer starts the wait over; our own time with the answer is not waiting on the store.
  watch.Pause(id, 1000, "d001/obj0000999.bin");
  clock.Advance(60000);
  EXPECT_TRUE(watch.Waiting(0).empty());
  watch.Resume(id);
  clock.Advance(7000);
  due = watch.Due(kStoreWaitNoticeAfterMs, kStoreWaitNoticeEveryMs);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(DescribeStoreWait(due[0]),
            "ListObjectsV2 s3://b/p/ (1,000 object(s) listed so far, the last "
            "'d001/obj0000999.bin'): no answer from http://127.0.0.1:9 for 7 s");
  watch.End(id);
  clock.Advance(60000);
  EXPECT_TRUE(watch.Waiting(0).empty());
  EXPECT_TRUE(watch.Due(0, 0).empty());
}

TEST(StoreWatchTest, WatchedStoreRecordsAHangingListingAndForgetsItWhenItReturns) {
  DrivenClock clock;
  StoreWatch watch(clock, kEndpoint);
  HangingStore inner;
  inner.Put("b", "a", "1");
  inner.Put("b", "b", "2");
  inner.hang_after = 1;  // answers "a", then hangs
  WatchedStore store(inner, watch);
  std::vector<std::string> seen;
  std::thread lister([&] {
    EXPECT_TRUE(store
                    .ListObjects("b", "",
                                 [&](const ObjectInfo& o) {
                                   seen.push_back(o.key);
                                   return true;
                                 })
                    .ok());
  });
  ASSERT_TRUE(inner.hanging.Wait());
  clock.Advance(12000);
  std::vector<StoreWait> w = watch.Waiting(kStoreWaitNoticeAfterMs);
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0].op, "ListObjectsV2");
  EXPECT_EQ(w[0].target, "s3://b/");
  EXPECT_EQ(w[0].endpoint, kEndpoint);
  EXPECT_EQ(w[0].waited_ms, 12000);
  EXPECT_EQ(w[0].progress, "1 object(s) listed so far, the last 'a'");
  inner.release.Open();
  lister.join();
  EXPECT_EQ(seen, (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(watch.Waiting(0).empty());
}

TEST(StoreWatchTest, ReconcileProgressSaysWhenTheListingWaitsOnTheStore) {
  DrivenClock clock;
  StoreWatch watch(clock, kEndpoint);
  HangingStore inner;
  inner.Put("b", "a", "1");
  inner.Put("b", "b", "2");
  inner.hang_after = 1;
  WatchedStore store(inner, watch);
  FakeCacheFs cache;
  FakeStateStore state;
  EngineOptions eo;
  eo.bucket = "b";
  Engine engine(&store, cache, state, clock, eo);
  Reconciler reconciler(store, cache, state, engine, clock);

  std::mutex mu;
  std::condition_variable cv;
  std::vector<ReconcileReport> reports;
  ReconcileOptions o;
  o.bucket = "b";
  o.dry_run = true;
  o.store_watch = &watch;
  o.idle_poll_ms = 1;
  o.progress = [&](const ReconcileReport& r) {
    std::lock_guard<std::mutex> l(mu);
    reports.push_back(r);
    cv.notify_all();
  };
  ReconcileReport report;
  Status pass;
  std::thread t([&] { pass = reconciler.Run(o, &report); });
  ASSERT_TRUE(inner.hanging.Wait());
  clock.Advance(12000);
  ReconcileReport seen;
  bool named = false;
  {
    // Without a progress call while the merge waits, this never comes.
    std::unique_lock<std::mutex> l(mu);
    named = cv.wait_for(l, std::chrono::minutes(1),
                        [&] { return !reports.empty() && !reports.back().waiting.empty(); });
    if (named) seen = reports.back();
  }
  inner.release.Open();
  t.join();
  ASSERT_TRUE(named) << "no progress named the hanging listing";
  ASSERT_EQ(seen.waiting.size(), 1u);
  EXPECT_EQ(DescribeStoreWait(seen.waiting[0]),
            "ListObjectsV2 s3://b/ (1 object(s) listed so far, the last 'a'): no answer from "
            "http://127.0.0.1:9 for 12 s");
  EXPECT_EQ(seen.duration_ms, 12000);
  EXPECT_TRUE(pass.ok()) << pass.ToString();
  EXPECT_EQ(report.missing, 2);
  EXPECT_TRUE(report.waiting.empty());
  std::lock_guard<std::mutex> l(mu);
  EXPECT_TRUE(reports.back().waiting.empty());  // the final call: nothing waits any more
}

}  // namespace
}  // namespace ds
