// The Engine applying events (src/core/engine.cc): creations journaled, removals at once,
// ordering by sequencer, versions, scope and refusals, shadowed paths, group commits, and
// convergence whatever the delivery order.
#include "core/engine.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "engine_fixture.h"

namespace ds::engine_test {
namespace {

TEST_F(EngineTest, CreateIsQueuedThenPublished) {
  store_.Put("b", "dir/a.txt", "hello");
  EXPECT_EQ(engine_->Apply(Create("dir/a.txt")).outcome, Outcome::kQueued);
  EXPECT_FALSE(cache_.Has("dir/a.txt"));
  EXPECT_EQ(engine_->DrainJobs(), 1u);
  EXPECT_EQ(cache_.Read("dir/a.txt"), "hello");
  EXPECT_TRUE(state_.Key("b", "dir/a.txt").present);
  EXPECT_EQ(cache_.temp_count(), 0u);
}

TEST_F(EngineTest, RemoveUnlinksAtOnceAndIsIdempotent) {
  store_.Put("b", "k", "x");
  engine_->Apply(Create("k"));
  engine_->DrainJobs();
  store_.Delete("b", "k");
  EXPECT_EQ(engine_->Apply(Remove("k")).outcome, Outcome::kRemoved);
  EXPECT_FALSE(cache_.Has("k"));
  EXPECT_EQ(engine_->Apply(Remove("k")).outcome, Outcome::kAbsent);
  engine_->DrainJobs();  // the resync finds nothing
  EXPECT_FALSE(cache_.Has("k"));
}

TEST_F(EngineTest, BurstOfCreatesForOneKeyCostsOneDownload) {
  store_.Put("b", "k", "v3");
  engine_->Apply(Create("k"));
  engine_->Apply(Create("k"));
  engine_->Apply(Create("k"));
  EXPECT_EQ(state_.Jobs().size(), 1u);
  engine_->DrainJobs();
  EXPECT_EQ(store_.gets, 1);
  EXPECT_EQ(cache_.Read("k"), "v3");
}

TEST_F(EngineTest, OrderedLateCreateAfterRemoveIsStale) {
  // The removal (newer) arrives first; the older creation arrives late.
  EXPECT_EQ(engine_->Apply(Remove("k", "0055", true)).outcome, Outcome::kAbsent);
  store_.Put("b", "k", "old data that a buggy store still serves");
  EXPECT_EQ(engine_->Apply(Create("k", "0044", true)).outcome, Outcome::kStale);
  engine_->DrainJobs();
  EXPECT_FALSE(cache_.Has("k"));
}

TEST_F(EngineTest, OrderedDuplicateCreateAfterRemoveIsStale) {
  store_.Put("b", "k", "v");
  engine_->Apply(Create("k", "0A", true));
  engine_->DrainJobs();
  ASSERT_TRUE(cache_.Has("k"));
  EXPECT_EQ(engine_->Apply(Remove("k", "0B", true)).outcome, Outcome::kRemoved);
  EXPECT_EQ(engine_->Apply(Create("k", "0A", true)).outcome, Outcome::kStale);
  engine_->DrainJobs();
  EXPECT_FALSE(cache_.Has("k"));
}

TEST_F(EngineTest, OrderedCreateWithSameSequencerAsRemovalLoses) {
  engine_->Apply(Remove("k", "0C0F6F405D6ED209E1", true));
  store_.Put("b", "k", "v");
  EXPECT_EQ(engine_->Apply(Create("k", "0C0F6F405D6ED209E1", true)).outcome, Outcome::kStale);
}

TEST_F(EngineTest, OrderedStaleRemovalLeavesNewerCopy) {
  store_.Put("b", "k", "v2");
  engine_->Apply(Create("k", "0030", true));
  engine_->DrainJobs();
  EXPECT_EQ(engine_->Apply(Remove("k", "0020", true)).outcome, Outcome::kStale);
  EXPECT_EQ(cache_.Read("k"), "v2");
}

TEST_F(EngineTest, CreateQueuedBeforeOlderRemovalStillGetsRemovalApplied) {
  // v1 published at seq 10; a create at 30 is queued (not yet downloaded); the removal at 20
  // arrives: v1's copy must go now, not wait for the download of 30.
  store_.Put("b", "k", "v1");
  engine_->Apply(Create("k", "10", true));
  engine_->DrainJobs();
  store_.Put("b", "k", "v3");
  engine_->Apply(Create("k", "30", true));
  EXPECT_EQ(engine_->Apply(Remove("k", "20", true)).outcome, Outcome::kRemoved);
  EXPECT_FALSE(cache_.Has("k"));
  engine_->DrainJobs();
  EXPECT_EQ(cache_.Read("k"), "v3");
}

TEST_F(EngineTest, UnorderedLateDuplicateCreateChecksTheStore) {
  store_.Put("b", "k", "v");
  engine_->Apply(Create("k"));
  engine_->DrainJobs();
  store_.Delete("b", "k");
  engine_->Apply(Remove("k"));
  // A duplicate of the old creation arrives after the removal.
  EXPECT_EQ(engine_->Apply(Create("k")).outcome, Outcome::kQueued);
  engine_->DrainJobs();
  EXPECT_FALSE(cache_.Has("k"));
}

TEST_F(EngineTest, UnorderedLateRemovalAfterRecreateHealsFromTheStore) {
  // put v1, delete, put v2 happen in the store; events arrive: create, create, delete.
  store_.Put("b", "k", "v2");
  engine_->Apply(Create("k"));
  engine_->Apply(Create("k"));
  engine_->DrainJobs();
  EXPECT_EQ(engine_->Apply(Remove("k")).outcome, Outcome::kRemoved);
  EXPECT_FALSE(cache_.Has("k"));  // privacy first
  engine_->DrainJobs();           // resync: the store has v2
  EXPECT_EQ(cache_.Read("k"), "v2");
}

TEST_F(EngineTest, RemovalOfOtherVersionLeavesCacheAlone) {
  store_.Put("b", "k", "v2", "ver-2");
  engine_->Apply(Create("k"));
  engine_->DrainJobs();
  ASSERT_EQ(state_.Key("b", "k").version_id, "ver-2");
  Event old = Remove("k");
  old.version_id = "ver-1";
  EXPECT_EQ(engine_->Apply(old).outcome, Outcome::kOtherVersion);
  EXPECT_EQ(cache_.Read("k"), "v2");
}

TEST_F(EngineTest, RemovalOfCachedVersionRemovesThenFetchesTheNewCurrent) {
  store_.Put("b", "k", "v2", "ver-2");
  engine_->Apply(Create("k"));
  engine_->DrainJobs();
  store_.Put("b", "k", "v1", "ver-1");  // deleting ver-2 makes ver-1 current
  Event e = Remove("k", "0099", true);
  e.version_id = "ver-2";
  EXPECT_EQ(engine_->Apply(e).outcome, Outcome::kRemoved);
  EXPECT_FALSE(cache_.Has("k"));
  engine_->DrainJobs();
  EXPECT_EQ(cache_.Read("k"), "v1");
}

TEST_F(EngineTest, DeleteMarkerRemovesWhateverVersionIsCached) {
  store_.Put("b", "k", "v", "ver-1");
  engine_->Apply(Create("k"));
  engine_->DrainJobs();
  store_.Delete("b", "k");
  Event e = Make(EventAction::kRemove, "k", "", false, "ObjectRemoved:DeleteMarkerCreated");
  e.delete_marker = true;
  e.version_id = "marker-1";
  EXPECT_EQ(engine_->Apply(e).outcome, Outcome::kRemoved);
  EXPECT_FALSE(cache_.Has("k"));
}

TEST_F(EngineTest, RefusedKeysTouchNothing) {
  std::vector<std::pair<std::string, std::string>> cases = {
      {"../../etc/passwd", "dot-segment"},
      {"a/../b", "dot-segment"},
      {"./a", "dot-segment"},
      {"/etc/passwd", "leading-slash"},
      {"a//b", "empty-segment"},
      {std::string("a\0b", 3), "control-byte"},
      {"a\nb", "control-byte"},
      {"folder/", "folder-marker"},
      {".delete-sync/state.db", "reserved"},
      {".delete-sync", "reserved"},
      {std::string(256, 'x'), "segment-too-long"},
      {"", "empty"},
  };
  // 17 segments of 250 bytes: each fits NAME_MAX, the whole is over PATH_MAX (4096).
  std::string deep;
  for (int i = 0; i < 17; ++i) deep += (i ? "/" : "") + std::string(250, 'd');
  cases.emplace_back(deep, "path-too-long");
  for (const auto& [key, reason] : cases) {
    for (EventAction a : {EventAction::kCreate, EventAction::kRemove}) {
      ApplyResult r = engine_->Apply(Make(a, key, "", false));
      EXPECT_EQ(r.outcome, Outcome::kRefused) << PrintableKey(key);
      EXPECT_NE(r.message.find(reason), std::string::npos) << r.message;
      ASSERT_TRUE(r.refusal.has_value()) << PrintableKey(key);
      EXPECT_EQ(RefusalName(*r.refusal), reason);
    }
  }
  EXPECT_TRUE(state_.Jobs().empty());
  EXPECT_TRUE(cache_.Files().empty());
  EXPECT_EQ(engine_->counters().refused.load(), static_cast<int64_t>(cases.size() * 2));
  EXPECT_EQ(engine_->RefusalCounts().at("dot-segment"), 6);
}

TEST_F(EngineTest, OtherBucketAndOutsidePrefixAreOutOfScope) {
  EngineOptions o;
  o.prefix = "train/";
  Reset(o);
  Event other = Create("train/x");
  other.bucket = "other";
  EXPECT_EQ(engine_->Apply(other).outcome, Outcome::kOutOfScope);
  EXPECT_EQ(engine_->Apply(Remove("test/x")).outcome, Outcome::kOutOfScope);
  EXPECT_EQ(engine_->Apply(Create("train/x")).outcome, Outcome::kQueued);
}

TEST_F(EngineTest, IgnoredTypesChangeNothing) {
  Event e = Make(EventAction::kIgnore, "k", "", false, "ObjectRestore:Completed");
  EXPECT_EQ(engine_->Apply(e).outcome, Outcome::kIgnored);
  EXPECT_EQ(engine_->counters().ignored.load(), 1);
}

TEST_F(EngineTest, FileAndFolderOfTheSameNameConflict) {
  store_.Put("b", "a", "file");
  store_.Put("b", "a/b", "nested");
  engine_->Apply(Create("a"));
  engine_->DrainJobs();
  engine_->Apply(Create("a/b"));
  engine_->DrainJobs();
  EXPECT_EQ(cache_.Read("a"), "file");
  EXPECT_FALSE(cache_.Has("a/b"));
  auto counts = state_.JobCounts();
  EXPECT_EQ(counts->second, 1);  // kept as failed, for the operator
}

// Issue 16, shadowed keys: the key that lost the path is downloaded when the winner goes, in
// both orders (a file "a" shadowing "a/b", and a folder "a/" shadowing "a").
TEST_F(EngineTest, ShadowedKeyAppearsWhenTheKeyHoldingItsPathIsRemoved) {
  for (bool file_first : {true, false}) {
    SCOPED_TRACE(file_first ? "a first" : "a/b first");
    const std::string winner = file_first ? "a" : "a/b";
    const std::string loser = file_first ? "a/b" : "a";
    store_.Put("b", winner, "winner");
    store_.Put("b", loser, "loser");
    engine_->Apply(Create(winner));
    engine_->DrainJobs();
    engine_->Apply(Create(loser));
    engine_->DrainJobs();
    ASSERT_EQ(cache_.Read(winner), "winner");
    ASSERT_FALSE(cache_.Has(loser));
    ASSERT_EQ(state_.JobCounts()->second, 1);
    store_.Delete("b", winner);
    EXPECT_EQ(engine_->Apply(Remove(winner)).outcome, Outcome::kRemoved);
    engine_->DrainJobs();
    EXPECT_EQ(cache_.Read(loser), "loser");
    EXPECT_FALSE(cache_.Has(winner));
    EXPECT_EQ(state_.JobCounts()->second, 0);
    // Clean up for the other order.
    store_.Delete("b", loser);
    engine_->Apply(Remove(loser));
    engine_->DrainJobs();
    ASSERT_TRUE(cache_.Files().empty());
  }
}

class EngineGroupTest : public EngineTest {
 protected:
  EngineGroupTest() {
    engine_->set_audit(&audit_);
    for (const char* k : {"k1", "k2", "k3", "k4"}) {
      store_.Put("b", k, "data");
      engine_->Apply(Create(k, "01", true));
    }
    engine_->DrainJobs();
    audit_.records.clear();
    audit_.groups = 0;
  }
  std::vector<Outcome> Outcomes(const std::vector<ApplyResult>& rs) {
    std::vector<Outcome> out;
    for (const ApplyResult& r : rs) out.push_back(r.outcome);
    return out;
  }
  RecordingAudit audit_;
};

TEST_F(EngineGroupTest, AppliesInOrderWithOneCommitAndOneAuditAppend) {
  Event ignored = Make(EventAction::kIgnore, "k4", "", false, "ObjectRestore:Post");
  Event other_bucket = Remove("k4", "05", true);
  other_bucket.bucket = "other";
  const int commits_before = cache_.batch_commits();
  std::vector<Event> group = {Remove("k1", "05", true),
                              ignored,
                              Remove("k2", "05", true),
                              Create("k1", "06", true),
                              Remove("k1", "07", true),
                              Remove("k1", "04", true),
                              other_bucket,
                              Remove("new", "05", true)};
  std::vector<ApplyResult> rs = engine_->ApplyAll(group);
  EXPECT_EQ(Outcomes(rs),
            (std::vector<Outcome>{Outcome::kRemoved, Outcome::kIgnored, Outcome::kRemoved,
                                  Outcome::kQueued, Outcome::kAbsent, Outcome::kStale,
                                  Outcome::kOutOfScope, Outcome::kAbsent}));
  EXPECT_EQ(cache_.batch_commits(), commits_before + 1);
  EXPECT_EQ(audit_.groups, 1);
  std::vector<std::string> audited;
  for (const RemovalRecord& r : audit_.records)
    audited.push_back(r.key + ":" + std::string(RemovalOutcomeName(r.outcome)));
  EXPECT_EQ(audited,
            (std::vector<std::string>{"k1:removed", "k2:removed", "k1:absent", "new:absent"}));
  EXPECT_FALSE(cache_.Has("k1"));
  EXPECT_FALSE(cache_.Has("k2"));
  EXPECT_TRUE(cache_.Has("k3"));
  EXPECT_EQ(state_.Key("b", "k1").seq, "07");
  // The creation queued between the two removals of k1 finds the later removal applied.
  engine_->DrainJobs();
  EXPECT_FALSE(cache_.Has("k1"));
}

TEST_F(EngineGroupTest, OneFailedUnlinkFailsOnlyItsEvent) {
  cache_.fail_remove = Status::Io("unlink k2: Input/output error");
  cache_.fail_remove_path = "k2";
  std::vector<ApplyResult> rs = engine_->ApplyAll(std::vector<Event>{
      Remove("k1", "05", true), Remove("k2", "05", true), Remove("k3", "05", true)});
  EXPECT_EQ(Outcomes(rs),
            (std::vector<Outcome>{Outcome::kRemoved, Outcome::kFailed, Outcome::kRemoved}));
  EXPECT_NE(rs[1].message.find("Input/output"), std::string::npos);
  EXPECT_TRUE(state_.Key("b", "k2").present);
  EXPECT_EQ(state_.Key("b", "k2").removal_gen, 0);
  EXPECT_TRUE(cache_.Has("k2"));
  // Recorded before the unlinks; k2's record is voided by a "failed" one.
  std::vector<std::string> audited;
  for (const RemovalRecord& r : audit_.records)
    audited.push_back(r.key + ":" + std::string(RemovalOutcomeName(r.outcome)));
  EXPECT_EQ(audited,
            (std::vector<std::string>{"k1:removed", "k2:removed", "k3:removed", "k2:failed"}));
  EXPECT_EQ(engine_->counters().failed, 1);
}

TEST_F(EngineGroupTest, FolderSyncOrAuditFailureFailsTheWholeGroup) {
  const Event ignored = Make(EventAction::kIgnore, "k4", "", false, "ObjectRestore:Post");
  cache_.fail_commit = Status::Io("fsync folder: Input/output error");
  std::vector<ApplyResult> rs = engine_->ApplyAll(
      std::vector<Event>{Remove("k1", "05", true), ignored, Create("k9", "05", true)});
  EXPECT_EQ(Outcomes(rs),
            (std::vector<Outcome>{Outcome::kFailed, Outcome::kIgnored, Outcome::kFailed}));
  EXPECT_NE(rs[0].message.find("fsync folder"), std::string::npos);
  EXPECT_EQ(state_.Key("b", "k1").removal_gen, 0);  // rolled back: the senders retry
  // The unlink happened after its record: the record names it.
  ASSERT_EQ(audit_.records.size(), 1u);
  EXPECT_EQ(audit_.records[0].key, "k1");
  cache_.fail_commit = Status::Ok();

  audit_.fail = Status::Io("disk full");
  rs = engine_->ApplyAll(std::vector<Event>{Remove("k2", "05", true), Remove("k3", "05", true)});
  EXPECT_EQ(Outcomes(rs), (std::vector<Outcome>{Outcome::kFailed, Outcome::kFailed}));
  EXPECT_NE(rs[1].message.find("audit log: disk full"), std::string::npos);
  EXPECT_EQ(state_.Key("b", "k2").removal_gen, 0);
  EXPECT_TRUE(cache_.Has("k2"));  // no record, no unlink
  EXPECT_TRUE(cache_.Has("k3"));
  audit_.fail = Status::Ok();
  // Redelivered: k1 went with the failed group (recorded as absent now), k2 is removed now.
  rs = engine_->ApplyAll(std::vector<Event>{Remove("k1", "05", true), Remove("k2", "05", true)});
  EXPECT_EQ(Outcomes(rs), (std::vector<Outcome>{Outcome::kAbsent, Outcome::kRemoved}));
  EXPECT_EQ(audit_.records.size(), 3u);
}

// Property: for an ordered source, whatever the delivery order and duplication of a key's
// events, once all are applied and downloads drained the cache equals the store's final state.
TEST_F(EngineTest, OrderedEventsInAnyOrderConvergeWithoutResurrection) {
  std::mt19937 rng(12345);
  for (int round = 0; round < 300; ++round) {
    FakeObjectStore store;
    FakeCacheFs cache;
    FakeStateStore state;
    EngineOptions o;
    o.bucket = "b";
    Engine engine(&store, cache, state, clock_, o);
    // A history of 2..6 operations with increasing sequencers; the store ends in the last.
    int n = 2 + static_cast<int>(rng() % 5);
    std::vector<Event> events;
    bool exists = false;
    std::string body;
    for (int i = 0; i < n; ++i) {
      char seq[16];
      std::snprintf(seq, sizeof seq, "%04X", 16 * (i + 1));
      bool create = rng() % 2 == 0;
      events.push_back(create ? Create("k", seq, true) : Remove("k", seq, true));
      exists = create;
      if (create) body = "v" + std::to_string(i);
    }
    if (exists) store.Put("b", "k", body);
    // Deliver shuffled, with duplicates, interleaving downloads at random points.
    std::vector<Event> delivery = events;
    for (int d = 0; d < 3; ++d) delivery.push_back(events[rng() % events.size()]);
    std::shuffle(delivery.begin(), delivery.end(), rng);
    for (const Event& e : delivery) {
      engine.Apply(e);
      if (rng() % 3 == 0) engine.DrainJobs();
    }
    engine.DrainJobs();
    if (exists) {
      // The newest event is a creation: its download of the current object must land.
      EXPECT_EQ(cache.Read("k"), body) << "round " << round;
    } else {
      EXPECT_FALSE(cache.Has("k")) << "round " << round;
    }
  }
}

// Property: for an unordered source (RGW), the same holds because every event is checked
// against the store.
TEST_F(EngineTest, UnorderedEventsInAnyOrderConvergeWithoutResurrection) {
  std::mt19937 rng(777);
  for (int round = 0; round < 300; ++round) {
    FakeObjectStore store;
    FakeCacheFs cache;
    FakeStateStore state;
    EngineOptions o;
    o.bucket = "b";
    Engine engine(&store, cache, state, clock_, o);
    int n = 2 + static_cast<int>(rng() % 5);
    std::vector<Event> events;
    bool exists = false;
    for (int i = 0; i < n; ++i) {
      bool create = rng() % 2 == 0;
      events.push_back(create ? Create("k") : Remove("k"));
      exists = create;
    }
    if (exists) store.Put("b", "k", "final");
    std::vector<Event> delivery = events;
    delivery.push_back(events[rng() % events.size()]);
    std::shuffle(delivery.begin(), delivery.end(), rng);
    for (const Event& e : delivery) {
      engine.Apply(e);
      if (rng() % 3 == 0) engine.DrainJobs();
    }
    engine.DrainJobs();
    EXPECT_EQ(cache.Has("k"), exists) << "round " << round;
  }
}

}  // namespace
}  // namespace ds::engine_test
