// The Engine and the state horizon (docs/SEMANTICS.md 3.6): downloads of old events checked
// against the bucket before they are published (src/core/engine_jobs.cc), and state collection
// (Engine::CollectState).
#include <gtest/gtest.h>

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "core/engine.h"
#include "engine_fixture.h"

namespace ds::engine_test {
namespace {

// The state horizon (docs/SEMANTICS.md 3.6). A creation whose event is older than the horizon
// may be older than removals whose tombstones were collected: its download is published only if
// the bucket's current object, asked after the GET, is the one downloaded.
class HorizonTest : public EngineTest {
 protected:
  static constexpr int64_t kDay = 24 * 3600 * 1000;
  Event CreateAt(const std::string& key, int64_t event_ms, const std::string& seq = "",
                 bool ordered = false) {
    Event e = Create(key, seq, ordered);
    e.event_time = FormatUtcMillis(event_ms);
    return e;
  }
  const int64_t horizon_ = EngineOptions::kDefaultStateHorizonMs;
};

TEST_F(HorizonTest, YoungCreationIsPublishedWithoutACheck) {
  store_.Put("b", "k", "v");
  engine_->Apply(CreateAt("k", clock_.NowMillis() - 44 * kDay));
  EXPECT_EQ(engine_->DrainJobs(), 1u);
  EXPECT_EQ(cache_.Read("k"), "v");
  EXPECT_EQ(store_.heads, 0);
  EXPECT_EQ(engine_->counters().horizon_checked.load(), 0);
}

TEST_F(HorizonTest, OldCreationIsPublishedWhenTheBucketStillHasTheSameObject) {
  store_.Put("b", "k", "v");
  engine_->Apply(CreateAt("k", clock_.NowMillis() - horizon_ - kDay));
  EXPECT_EQ(engine_->DrainJobs(), 1u);
  EXPECT_EQ(cache_.Read("k"), "v");
  EXPECT_EQ(store_.heads, 1);
  EXPECT_EQ(engine_->counters().horizon_checked.load(), 1);
  EXPECT_EQ(engine_->counters().horizon_refused.load(), 0);
}

// The GET returns an object the bucket no longer has (a replica or cache in front of the store
// still serves it, or it was deleted while the GET streamed and that removal's event is lost):
// an old creation must not bring it back.
TEST_F(HorizonTest, OldCreationOfAnObjectTheBucketNoLongerHasIsNotPublished) {
  store_.Put("b", "other", "x");  // the bucket exists; k is not in it
  store_.stale_get["k"] = {"deleted data", "etag-old", ""};
  engine_->Apply(CreateAt("k", clock_.NowMillis() - horizon_ - kDay));
  EXPECT_EQ(engine_->DrainJobs(), 1u);
  EXPECT_FALSE(cache_.Has("k"));
  EXPECT_EQ(cache_.temp_count(), 0u);
  EXPECT_EQ(store_.heads, 1);
  EXPECT_EQ(engine_->counters().horizon_refused.load(), 1);
  EXPECT_EQ(engine_->counters().gone.load(), 1);
  EXPECT_TRUE(state_.Jobs().empty());
}

TEST_F(HorizonTest, OldCreationWhoseObjectChangedIsDownloadedAgainNotPublishedAsIs) {
  store_.Put("b", "k", "new");
  store_.stale_get["k"] = {"old", "etag-old", ""};
  engine_->Apply(CreateAt("k", clock_.NowMillis() - horizon_ - kDay));
  EXPECT_EQ(engine_->DrainJobs(), 1u);
  EXPECT_FALSE(cache_.Has("k"));
  EXPECT_EQ(engine_->counters().horizon_refused.load(), 1);
  ASSERT_EQ(state_.Jobs().size(), 1u);  // retried
  store_.stale_get.clear();
  clock_.Advance(60 * 1000);
  EXPECT_EQ(engine_->DrainJobs(), 1u);
  EXPECT_EQ(cache_.Read("k"), "new");
  EXPECT_EQ(engine_->counters().horizon_checked.load(), 2);
}

TEST_F(HorizonTest, OffChecksNothingAndCollectsNothing) {
  EngineOptions o;
  o.state_horizon_ms = 0;
  Reset(o);
  store_.Put("b", "other", "x");
  engine_->Apply(Remove("k"));
  engine_->DrainJobs();  // the resync finds nothing: a tombstone
  store_.stale_get["k"] = {"v", "etag-v", ""};
  clock_.Advance(1000 * kDay);
  EXPECT_EQ(engine_->CollectState()->keys, 0);
  EXPECT_TRUE(state_.HasRow("b", "k"));
  engine_->Apply(CreateAt("k", 0));
  engine_->DrainJobs();
  EXPECT_EQ(store_.heads, 0);
}

// An ordered creation older than a removal (a lower sequencer) is stale while the removal's
// tombstone exists; after the tombstone is collected, nothing orders it, and the check against
// the bucket is what keeps it from resurrecting the deleted object.
TEST_F(HorizonTest, OrderedStaleCreationAfterItsTombstoneWasCollectedHitsTheCheck) {
  const int64_t t0 = clock_.NowMillis();
  store_.Put("b", "k", "v");
  engine_->Apply(CreateAt("k", t0, "0A", true));
  engine_->DrainJobs();
  ASSERT_TRUE(cache_.Has("k"));
  store_.Delete("b", "k");
  store_.stale_get["k"] = {"v", "etag-v", ""};
  EXPECT_EQ(engine_->Apply(Remove("k", "0B", true)).outcome, Outcome::kRemoved);
  EXPECT_EQ(engine_->Apply(CreateAt("k", t0, "0A", true)).outcome, Outcome::kStale);

  clock_.Advance(horizon_ + 1000);
  EXPECT_EQ(engine_->CollectState()->keys, 1);
  EXPECT_FALSE(state_.HasRow("b", "k"));
  EXPECT_EQ(engine_->Apply(CreateAt("k", t0, "0A", true)).outcome, Outcome::kQueued);
  EXPECT_EQ(engine_->DrainJobs(), 1u);
  EXPECT_FALSE(cache_.Has("k"));
  EXPECT_EQ(engine_->counters().horizon_refused.load(), 1);
}

// Collection keeps the rows it must: a present copy, a key with a job, a tombstone younger
// than the horizon.
TEST_F(HorizonTest, CollectionKeepsCopiesJobsAndYoungTombstones) {
  store_.Put("b", "present", "v");
  engine_->Apply(Create("present"));
  engine_->DrainJobs();
  EngineOptions o;
  o.resync_after_removal = false;
  Reset(o);
  engine_->Apply(Remove("old"));
  engine_->Apply(Remove("queued"));
  clock_.Advance(horizon_ + 1000);
  engine_->Apply(Remove("young"));
  engine_->Apply(Create("queued"));  // a job: kept whatever its row's age
  EXPECT_EQ(engine_->CollectState()->keys, 1);
  EXPECT_FALSE(state_.HasRow("b", "old"));
  for (const char* k : {"present", "queued", "young"}) EXPECT_TRUE(state_.HasRow("b", k)) << k;
  EXPECT_TRUE(cache_.Has("present"));
}

// A download still running after its row was collected (it outlived its lease: another worker
// finished its job, and the key's row went) is not published: what it started under is gone.
TEST_F(HorizonTest, DownloadWhoseKeyRowWasCollectedMeanwhileIsNotPublished) {
  store_.Put("b", "k", "v");
  engine_->Apply(Create("k"));
  std::vector<FetchJob> jobs = *state_.ClaimJobs(clock_.NowMillis(), 1);
  ASSERT_EQ(jobs.size(), 1u);
  store_.after_get = [&](const std::string&) {
    {
      std::lock_guard<std::recursive_mutex> l(state_.mu_);
      state_.jobs_.clear();
    }
    clock_.Advance(horizon_ + 1000);
    EXPECT_EQ(engine_->CollectState()->keys, 1);
  };
  EXPECT_EQ(engine_->RunJob(jobs[0]), JobOutcome::kDiscarded);
  EXPECT_FALSE(cache_.Has("k"));
}

}  // namespace
}  // namespace ds::engine_test
