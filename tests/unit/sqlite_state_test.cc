#include "state/sqlite_state.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "core/engine.h"
#include "fakes/fakes.h"

namespace ds {
namespace {

class SqliteStateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ds-state-XXXXXX";
    dir_ = mkdtemp(tmpl);
    path_ = dir_ + "/sub/state.db";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::unique_ptr<SqliteState> OpenDb() {
    auto s = SqliteState::Open(path_);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(s).value() : nullptr;
  }
  std::string dir_, path_;
};

FetchJob Job(const std::string& key, const std::string& seq = "", bool ordered = false) {
  FetchJob j;
  j.bucket = "b";
  j.key = key;
  j.seq = seq;
  j.ordered = ordered;
  j.reason = "test";
  return j;
}

TEST_F(SqliteStateTest, KeyStateRoundTripsAndSurvivesReopen) {
  {
    auto db = OpenDb();
    ASSERT_TRUE(db);
    KeyState st;
    st.seq = "00AB";
    st.removal_gen = 3;
    st.present = true;
    st.etag = "e";
    st.version_id = "v";
    st.size = 42;
    std::string key("bin\xff\0key", 8);
    ASSERT_TRUE(db->Transact([&](StateTxn& t) { return t.Put("b", key, st); }).ok());
  }
  auto db = OpenDb();
  std::string key("bin\xff\0key", 8);
  KeyState got;
  ASSERT_TRUE(db->Transact([&](StateTxn& t) {
                  auto r = t.Get("b", key);
                  if (r.ok()) got = *r;
                  return r.status();
                }).ok());
  EXPECT_EQ(got.seq, "00AB");
  EXPECT_EQ(got.removal_gen, 3);
  EXPECT_TRUE(got.present);
  EXPECT_EQ(got.size, 42);
  EXPECT_EQ(got.version_id, "v");
}

TEST_F(SqliteStateTest, FailedTransactionRollsBack) {
  auto db = OpenDb();
  Status s = db->Transact([&](StateTxn& t) {
    KeyState st;
    st.present = true;
    DS_RETURN_IF_ERROR(t.Put("b", "k", st));
    DS_RETURN_IF_ERROR(t.Enqueue(Job("k")));
    return Status::Io("disk on fire");
  });
  EXPECT_EQ(s.code(), Code::kIoError);
  KeyState got;
  ASSERT_TRUE(db->Transact([&](StateTxn& t) {
                  got = *t.Get("b", "k");
                  return Status::Ok();
                }).ok());
  EXPECT_FALSE(got.present);
  EXPECT_EQ(db->JobCounts()->first, 0);
}

TEST_F(SqliteStateTest, EnqueueMergesUnclaimedJobsOfOneKey) {
  auto db = OpenDb();
  ASSERT_TRUE(db->Transact([&](StateTxn& t) {
                  DS_RETURN_IF_ERROR(t.Enqueue(Job("k", "0A", true)));
                  DS_RETURN_IF_ERROR(t.Enqueue(Job("k", "0C", true)));
                  DS_RETURN_IF_ERROR(t.Enqueue(Job("k", "0B", true)));
                  return t.Enqueue(Job("other"));
                }).ok());
  auto jobs = db->ClaimJobs(0, 10);
  ASSERT_TRUE(jobs.ok());
  ASSERT_EQ(jobs->size(), 2u);
  EXPECT_EQ((*jobs)[0].key, "k");
  EXPECT_EQ((*jobs)[0].seq, "0C");
  // Claimed jobs are not handed out twice; a new event for a claimed key gets its own job.
  EXPECT_TRUE(db->ClaimJobs(0, 10)->empty());
  ASSERT_TRUE(db->Transact([&](StateTxn& t) { return t.Enqueue(Job("k", "0D", true)); }).ok());
  EXPECT_EQ(db->ClaimJobs(0, 10)->size(), 1u);
}

TEST_F(SqliteStateTest, RetryFailAndFinish) {
  auto db = OpenDb();
  ASSERT_TRUE(db->Transact([&](StateTxn& t) {
                  DS_RETURN_IF_ERROR(t.Enqueue(Job("a")));
                  return t.Enqueue(Job("b"));
                }).ok());
  auto jobs = *db->ClaimJobs(0, 10);
  ASSERT_EQ(jobs.size(), 2u);
  ASSERT_TRUE(db->RetryJob(jobs[0].id, 1000, "Unavailable: boom").ok());
  ASSERT_TRUE(db->FailJob(jobs[1].id, "PermissionDenied: AccessDenied").ok());
  EXPECT_TRUE(db->ClaimJobs(999, 10)->empty());
  auto again = *db->ClaimJobs(1000, 10);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].attempts, 1);
  EXPECT_EQ(again[0].last_error, "Unavailable: boom");
  ASSERT_TRUE(db->FinishJob(again[0].id).ok());
  auto counts = *db->JobCounts();
  EXPECT_EQ(counts.first, 0);
  EXPECT_EQ(counts.second, 1);
  auto failed = *db->FailedJobs(10);
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0].key, "b");
}

TEST_F(SqliteStateTest, JobsClaimedByADeadProcessAreReleasedAtOpen) {
  {
    auto db = OpenDb();
    ASSERT_TRUE(db->Transact([&](StateTxn& t) { return t.Enqueue(Job("k")); }).ok());
  }
  pid_t child = fork();
  if (child == 0) {
    auto db = SqliteState::Open(path_);
    auto jobs = (*db)->ClaimJobs(0, 10);
    _exit(jobs.ok() && jobs->size() == 1 ? 0 : 1);  // dies holding the claim
  }
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  auto db = OpenDb();
  EXPECT_EQ(db->ClaimJobs(0, 10)->size(), 1u);
}

// The engine's ordering decisions hold on the real store as on the fake.
TEST_F(SqliteStateTest, EngineOnSqliteKeepsNoResurrection) {
  auto db = OpenDb();
  fakes::FakeObjectStore store;
  fakes::FakeCacheFs cache;
  fakes::FakeClock clock;
  EngineOptions o;
  o.bucket = "b";
  Engine engine(&store, cache, *db, clock, o);
  store.Put("b", "k", "v");
  Event create;
  create.action = EventAction::kCreate;
  create.bucket = "b";
  create.key = "k";
  create.sequencer = "0A";
  create.ordered = true;
  Event remove = create;
  remove.action = EventAction::kRemove;
  remove.sequencer = "0B";
  EXPECT_EQ(engine.Apply(create).outcome, Outcome::kQueued);
  EXPECT_EQ(engine.DrainJobs(), 1u);
  EXPECT_TRUE(cache.Has("k"));
  store.Delete("b", "k");
  EXPECT_EQ(engine.Apply(remove).outcome, Outcome::kRemoved);
  EXPECT_EQ(engine.Apply(create).outcome, Outcome::kStale);
  EXPECT_FALSE(cache.Has("k"));
}

}  // namespace
}  // namespace ds
