#include "core/reconcile.h"

#include <gtest/gtest.h>

#include "fakes/fakes.h"

namespace ds {
namespace {

using fakes::FakeCacheFs;
using fakes::FakeClock;
using fakes::FakeObjectStore;
using fakes::FakeStateStore;

class ReconcileTest : public ::testing::Test {
 protected:
  ReconcileTest() {
    EngineOptions eo;
    eo.bucket = "b";
    engine_ = std::make_unique<Engine>(&store_, cache_, state_, clock_, eo);
    reconciler_ = std::make_unique<Reconciler>(store_, cache_, state_, *engine_, clock_);
  }

  // Puts the object in the bucket and a published copy in the cache, as an event would.
  void Mirror(const std::string& key, const std::string& body) {
    store_.Put("b", key, body);
    Event e;
    e.action = EventAction::kCreate;
    e.bucket = "b";
    e.key = key;
    ASSERT_EQ(engine_->Apply(e).outcome, Outcome::kQueued);
    engine_->DrainJobs();
    ASSERT_TRUE(cache_.Has(key));
  }

  ReconcileReport Run(ReconcileOptions o, Status* status = nullptr) {
    o.bucket = "b";
    ReconcileReport r;
    clock_.Advance(1000);
    Status s = reconciler_->Run(o, &r);
    if (status)
      *status = s;
    else
      EXPECT_TRUE(s.ok()) << s.ToString();
    return r;
  }

  FakeObjectStore store_;
  FakeCacheFs cache_;
  FakeStateStore state_;
  FakeClock clock_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<Reconciler> reconciler_;
};

TEST(CompareKeysTest, ByteOrderNotPathOrder) {
  // '-' (0x2D) < '/' (0x2F) < '0' (0x30); UTF-8 after ASCII; shorter prefix first.
  std::vector<std::string> keys = {"a", "a-b", "a/b", "a/c/d", "a0", "b", "Z", "\xc3\xbc"};
  std::vector<std::string> sorted = keys;
  std::sort(sorted.begin(), sorted.end(),
            [](const std::string& x, const std::string& y) { return CompareKeys(x, y) < 0; });
  EXPECT_EQ(sorted,
            (std::vector<std::string>{"Z", "a", "a-b", "a/b", "a/c/d", "a0", "b", "\xc3\xbc"}));
}

TEST_F(ReconcileTest, FindsMissingOrphanedStaleAndMatching) {
  Mirror("a-b", "same");        // matching
  Mirror("a/b", "old");         // stale: changes in the bucket behind our back
  Mirror("gone/x", "deleted");  // orphan: deleted, event lost
  store_.Put("b", "a/b", "new and longer");
  store_.Delete("b", "gone/x");
  store_.Put("b", "a0", "missing");         // missing: creation event lost
  store_.Put("b", "dir/", "");              // folder marker: refused, never a file
  cache_.PutFile("stray.txt", "not ours");  // untracked orphan
  ReconcileReport r = Run({});
  EXPECT_EQ(r.matching, 1);
  EXPECT_EQ(r.stale, 1);
  EXPECT_EQ(r.missing, 1);
  EXPECT_EQ(r.orphans, 1);
  EXPECT_EQ(r.untracked_orphans, 1);
  EXPECT_EQ(r.refused, 1);
  EXPECT_EQ(r.removed, 2);
  EXPECT_EQ(r.removed_keys, (std::vector<std::string>{"gone/x", "stray.txt"}));
  EXPECT_EQ(r.queued, 2);
  EXPECT_FALSE(cache_.Has("gone/x"));
  EXPECT_FALSE(cache_.Has("stray.txt"));
  engine_->DrainJobs();
  EXPECT_EQ(cache_.Read("a/b"), "new and longer");
  EXPECT_EQ(cache_.Read("a0"), "missing");
  // A second pass finds everything equal.
  ReconcileReport again = Run({});
  EXPECT_EQ(again.matching, 3);
  EXPECT_EQ(again.refused, 1);  // the folder marker
  EXPECT_EQ(again.removed + again.missing + again.stale + again.orphans, 0);
}

// Missing keys are journaled in groups of 256: a pass over more than two groups queues each key
// once, the last, partial group included, and the downloads fill the cache.
TEST_F(ReconcileTest, ManyMissingKeysAreAllQueuedAcrossBatches) {
  constexpr int kKeys = 600;
  for (int i = 0; i < kKeys; ++i) store_.Put("b", "m/" + std::to_string(1000 + i), "v");
  ReconcileReport r = Run({});
  EXPECT_EQ(r.missing, kKeys);
  EXPECT_EQ(r.queued, kKeys);
  EXPECT_EQ(state_.Jobs().size(), static_cast<size_t>(kKeys));
  EXPECT_EQ(engine_->DrainJobs(), static_cast<size_t>(kKeys));
  EXPECT_TRUE(cache_.Has("m/1000"));
  EXPECT_TRUE(cache_.Has("m/1599"));
}

// Issue 16, item 7: with its state lost, reconcile judged a file "matching" by its size alone.
// A file the service has no record of publishing is downloaded again instead.
TEST_F(ReconcileTest, FileWithoutARecordIsDownloadedAgainNotTrustedBySize) {
  store_.Put("b", "k", "bucket");
  cache_.PutFile("k", "cached");  // same size, other bytes, no record (the state was lost)
  ReconcileReport r = Run({});
  EXPECT_EQ(r.matching, 0);
  EXPECT_EQ(r.unverified, 1);
  EXPECT_EQ(r.queued, 1);
  engine_->DrainJobs();
  EXPECT_EQ(cache_.Read("k"), "bucket");
  ReconcileReport again = Run({});
  EXPECT_EQ(again.matching, 1);
  EXPECT_EQ(again.unverified, 0);
}

TEST_F(ReconcileTest, SameSizeDifferentEtagIsStale) {
  Mirror("k", "aaaa");
  store_.Put("b", "k", "bbbb");
  ReconcileReport r = Run({});
  EXPECT_EQ(r.stale, 1);
}

TEST_F(ReconcileTest, DryRunChangesNothing) {
  Mirror("keep", "x");
  Mirror("orphan", "y");
  store_.Delete("b", "orphan");
  store_.Put("b", "missing", "z");
  ReconcileOptions o;
  o.dry_run = true;
  ReconcileReport r = Run(o);
  EXPECT_EQ(r.orphans, 1);
  EXPECT_EQ(r.missing, 1);
  EXPECT_EQ(r.removed, 0);
  EXPECT_EQ(r.queued, 0);
  EXPECT_EQ(r.orphan_keys, std::vector<std::string>{"orphan"});
  EXPECT_TRUE(cache_.Has("orphan"));
  EXPECT_TRUE(state_.Jobs().empty());
}

TEST_F(ReconcileTest, DeleteOnlyRemovesButDownloadsNothing) {
  Mirror("orphan", "y");
  store_.Delete("b", "orphan");
  store_.Put("b", "missing", "z");
  ReconcileOptions o;
  o.delete_only = true;
  ReconcileReport r = Run(o);
  EXPECT_EQ(r.removed, 1);
  EXPECT_EQ(r.queued, 0);
  EXPECT_TRUE(state_.Jobs().empty());
}

TEST_F(ReconcileTest, MaxDeleteRefusesToRemoveAnything) {
  for (int i = 0; i < 5; ++i) Mirror("k" + std::to_string(i), "v");
  for (int i = 0; i < 5; ++i) store_.Delete("b", "k" + std::to_string(i));
  ReconcileOptions o;
  o.max_delete = 4;
  Status s;
  ReconcileReport r = Run(o, &s);
  EXPECT_EQ(s.code(), Code::kConflict);
  EXPECT_NE(s.message().find("refusing to remove 5 file(s)"), std::string::npos) << s.message();
  EXPECT_TRUE(r.max_delete_refused);
  EXPECT_EQ(r.removed, 0);
  EXPECT_EQ(cache_.Files().size(), 5u);
  o.max_delete = 5;
  r = Run(o);
  EXPECT_EQ(r.removed, 5);
}

// The default limit is a share of the cache: a bucket that looks empty (wrong prefix, endpoint
// or bucket) is refused, a restart after a tenth of the objects were deleted is not, and a small
// cache is never refused.
TEST_F(ReconcileTest, MaxDeletePercentRefusesABucketThatLooksEmptyButNotATenthDeleted) {
  for (int i = 0; i < 1000; ++i) Mirror("k" + std::to_string(i), "v");
  for (int i = 0; i < 100 + 1; ++i) store_.Delete("b", "k" + std::to_string(i));
  ReconcileOptions o;
  o.max_delete_percent = 50;
  ReconcileReport r = Run(o);
  EXPECT_FALSE(r.max_delete_refused);
  EXPECT_EQ(r.removed, 101);  // 10% of the cache: removed
  for (int i = 101; i < 1000; ++i) store_.Delete("b", "k" + std::to_string(i));
  Status s;
  r = Run(o, &s);  // 899 of 899: the bucket looks empty
  EXPECT_EQ(s.code(), Code::kConflict);
  EXPECT_NE(s.message().find("refusing to remove 899 of the 899 cached file(s)"), std::string::npos)
      << s.message();
  EXPECT_TRUE(r.max_delete_refused);
  EXPECT_EQ(r.removed, 0);
  EXPECT_EQ(cache_.Files().size(), 899u);
}

TEST_F(ReconcileTest, MaxDeletePercentNeverRefusesASmallPass) {
  for (int i = 0; i < 100; ++i) Mirror("k" + std::to_string(i), "v");
  for (int i = 0; i < 100; ++i) store_.Delete("b", "k" + std::to_string(i));
  ReconcileOptions o;
  o.max_delete_percent = 50;
  ReconcileReport r = Run(o);
  EXPECT_FALSE(r.max_delete_refused);
  EXPECT_EQ(r.removed, 100);
}

TEST_F(ReconcileTest, ListingErrorRemovesNothing) {
  Mirror("k", "v");
  ReconcileOptions o;
  o.bucket = "no-such-bucket";
  ReconcileReport r;
  Status s = reconciler_->Run(o, &r);
  EXPECT_EQ(s.code(), Code::kNotFound);
  EXPECT_EQ(r.removed, 0);
  EXPECT_TRUE(cache_.Has("k"));
}

class UnsortedStore : public FakeObjectStore {
 public:
  Status ListObjects(const std::string&, const std::string&,
                     const std::function<bool(const ObjectInfo&)>& visit) override {
    for (const char* k : {"b", "a"}) {
      ObjectInfo i;
      i.key = k;
      if (!visit(i)) break;
    }
    return Status::Ok();
  }
};

TEST_F(ReconcileTest, ListingOutOfOrderIsAnErrorAndRemovesNothing) {
  UnsortedStore bad;
  cache_.PutFile("orphan", "x");
  Reconciler rec(bad, cache_, state_, *engine_, clock_);
  ReconcileOptions o;
  o.bucket = "b";
  ReconcileReport r;
  Status s = rec.Run(o, &r);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("not in byte order"), std::string::npos);
  EXPECT_TRUE(cache_.Has("orphan"));
}

TEST_F(ReconcileTest, KeyChangedByAnEventDuringThePassIsLeftAlone) {
  Mirror("k", "v");
  store_.Delete("b", "k");
  // An event publishes k again while the pass runs (after it started).
  store_.after_get = nullptr;
  ReconcileOptions o;
  bool injected = false;
  o.progress_every_ms = 0;
  o.progress = [&](const ReconcileReport&) {
    if (injected) return;
    injected = true;
    KeyState st = state_.Key("b", "k");
    st.updated_ms = clock_.NowMillis() + 5;
    ASSERT_TRUE(state_.Transact([&](StateTxn& t) { return t.Put("b", "k", st); }).ok());
  };
  ReconcileReport r = Run(o);
  EXPECT_EQ(r.skipped_changed, 1);
  EXPECT_TRUE(cache_.Has("k"));
}

TEST_F(ReconcileTest, PrefixLimitsBothSides) {
  Mirror("train/a", "1");
  Mirror("test/a", "2");
  store_.Delete("b", "test/a");
  ReconcileOptions o;
  o.prefix = "train/";
  ReconcileReport r = Run(o);
  EXPECT_EQ(r.compared, 1);
  EXPECT_EQ(r.removed, 0);
  EXPECT_TRUE(cache_.Has("test/a"));
}

}  // namespace
}  // namespace ds
