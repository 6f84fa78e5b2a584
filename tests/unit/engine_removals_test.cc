// The Engine's removal paths and their audit (src/core/engine_removals.cc): a failed unlink,
// a path that is a folder, the audit record before every unlink, a state error that unlinks
// nothing, and a record voided when its unlink fails.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/engine.h"
#include "engine_fixture.h"

namespace ds::engine_test {
namespace {

TEST_F(EngineTest, FailedUnlinkIsReportedAndStateRolledBack) {
  store_.Put("b", "k", "v");
  engine_->Apply(Create("k"));
  engine_->DrainJobs();
  cache_.fail_remove = Status::Io("unlink k: Input/output error");
  ApplyResult r = engine_->Apply(Remove("k", "05", true));
  EXPECT_EQ(r.outcome, Outcome::kFailed);
  EXPECT_FALSE(r.status.ok());
  EXPECT_TRUE(state_.Key("b", "k").present);
  EXPECT_EQ(state_.Key("b", "k").removal_gen, 0);
  cache_.fail_remove = Status::Ok();
  EXPECT_EQ(engine_->Apply(Remove("k", "05", true)).outcome, Outcome::kRemoved);
}

TEST_F(EngineTest, RemovingAKeyWhosePathIsAFolderRemovesNothingAndSucceeds) {
  store_.Put("b", "a/b", "nested");
  engine_->Apply(Create("a/b"));
  engine_->DrainJobs();
  ASSERT_TRUE(cache_.Has("a/b"));
  cache_.fail_remove = Status::Conflict("'a' is a folder");
  EXPECT_EQ(engine_->Apply(Remove("a")).outcome, Outcome::kAbsent);
  cache_.fail_remove = Status::Ok();
  EXPECT_TRUE(cache_.Has("a/b"));
}

TEST_F(EngineTest, EveryRemovalIsAuditedBeforeItIsAcknowledged) {
  RecordingAudit audit;
  engine_->set_audit(&audit);
  store_.Put("b", "k", "data", "v7");
  engine_->Apply(Create("k"));
  engine_->DrainJobs();
  Event e = Remove("k", "", false);
  e.event_id = "evt-1";
  EXPECT_EQ(engine_->Apply(e).outcome, Outcome::kRemoved);
  ASSERT_EQ(audit.records.size(), 1u);
  EXPECT_EQ(audit.records[0].key, "k");
  EXPECT_EQ(audit.records[0].version_id, "v7");
  EXPECT_EQ(audit.records[0].size, 4);
  EXPECT_EQ(audit.records[0].cause, RemovalCause::kEvent);
  EXPECT_EQ(audit.records[0].event_id, "evt-1");
  EXPECT_EQ(audit.records[0].event_name, "ObjectRemoved:Delete");
  EXPECT_EQ(audit.records[0].outcome, RemovalOutcome::kRemoved);
  // A repeated removal is recorded as absent.
  EXPECT_EQ(engine_->Apply(e).outcome, Outcome::kAbsent);
  EXPECT_EQ(audit.records.back().outcome, RemovalOutcome::kAbsent);
}

TEST_F(EngineTest, AuditFailureFailsTheRemovalAndKeepsStateForARetry) {
  RecordingAudit audit;
  engine_->set_audit(&audit);
  store_.Put("b", "k", "data");
  engine_->Apply(Create("k"));
  engine_->DrainJobs();
  audit.fail = Status::Io("audit log: disk full");
  ApplyResult r = engine_->Apply(Remove("k", "0A", true));
  EXPECT_EQ(r.outcome, Outcome::kFailed);
  EXPECT_NE(r.message.find("disk full"), std::string::npos);
  EXPECT_EQ(state_.Key("b", "k").removal_gen, 0);  // rolled back: the sender retries
  // Issue 16, item 2: no record, so no unlink (before the fix the copy was already gone).
  EXPECT_TRUE(cache_.Has("k"));
  audit.fail = Status::Ok();
  EXPECT_EQ(engine_->Apply(Remove("k", "0A", true)).outcome, Outcome::kRemoved);
  ASSERT_EQ(audit.records.size(), 1u);
  EXPECT_EQ(audit.records[0].outcome, RemovalOutcome::kRemoved);
}

// Issue 16, item 2: with a damaged state database, a removal event failed (500), but its copy
// was already unlinked and no audit record named it; a non-persistent topic never sends it
// again. Now a state error before the records unlinks nothing, in a group and alone, and in
// the removal paths of reconcile, erase and the store's 404.
TEST_F(EngineTest, StateErrorUnlinksNothing) {
  RecordingAudit audit;
  engine_->set_audit(&audit);
  for (const char* k : {"k1", "k2", "k3", "k4"}) {
    store_.Put("b", k, "data");
    engine_->Apply(Create(k));
  }
  engine_->DrainJobs();
  state_.fail_put = Status::Io("state database: database disk image is malformed");
  std::vector<ApplyResult> rs =
      engine_->ApplyAll(std::vector<Event>{Remove("k1", "05", true), Remove("k2", "05", true)});
  EXPECT_EQ(rs[0].outcome, Outcome::kFailed);
  EXPECT_EQ(rs[1].outcome, Outcome::kFailed);
  EXPECT_NE(rs[0].message.find("malformed"), std::string::npos);
  EXPECT_FALSE(engine_->RemoveOrphan("b", "k3", clock_.NowMillis() + 1, "rc-1").ok());
  EXPECT_FALSE(engine_->RemoveForErasure("b", "k4", "er-1").ok());
  for (const char* k : {"k1", "k2", "k3", "k4"}) EXPECT_TRUE(cache_.Has(k)) << k;
  EXPECT_TRUE(audit.records.empty());
  state_.fail_put = Status::Ok();
  rs = engine_->ApplyAll(std::vector<Event>{Remove("k1", "05", true), Remove("k2", "05", true)});
  EXPECT_EQ(rs[0].outcome, Outcome::kRemoved);
  EXPECT_EQ(rs[1].outcome, Outcome::kRemoved);
  EXPECT_FALSE(cache_.Has("k1"));
}

// An unlink that fails after its record is durable: the record is voided by one with outcome
// "failed", the event fails with its key's state as before, and the retry records and removes.
TEST_F(EngineTest, UnlinkFailingAfterItsRecordIsVoidedInTheLog) {
  RecordingAudit audit;
  engine_->set_audit(&audit);
  store_.Put("b", "k", "data");
  engine_->Apply(Create("k"));
  engine_->DrainJobs();
  cache_.fail_remove = Status::Io("unlink k: Read-only file system");
  ApplyResult r = engine_->Apply(Remove("k", "0A", true));
  EXPECT_EQ(r.outcome, Outcome::kFailed);
  EXPECT_TRUE(cache_.Has("k"));
  EXPECT_TRUE(state_.Key("b", "k").present);
  std::vector<std::string> outcomes;
  for (const RemovalRecord& rec : audit.records)
    outcomes.push_back(rec.key + ":" + std::string(RemovalOutcomeName(rec.outcome)));
  EXPECT_EQ(outcomes, (std::vector<std::string>{"k:removed", "k:failed"}));
  cache_.fail_remove = Status::Ok();
  EXPECT_EQ(engine_->Apply(Remove("k", "0A", true)).outcome, Outcome::kRemoved);
  EXPECT_FALSE(cache_.Has("k"));
  EXPECT_EQ(audit.records.back().outcome, RemovalOutcome::kRemoved);
}

}  // namespace
}  // namespace ds::engine_test
