// SqliteState's job queue (src/state/sqlite_jobs.cc): merging, reasons, claims inside and
// outside transactions, leases, claims of dead processes, retries, failures and event times.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sqlite_state_fixture.h"
#include "state/sqlite_state.h"

namespace ds::sqlite_state_test {
namespace {

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

// A job's reason is stored as the text the logs show ("event ObjectCreated:Put", ...) and read
// back typed; a text this version does not know reads as an event of that name.
TEST_F(SqliteStateTest, JobReasonsRoundTripAsTextAndUnknownTextIsKept) {
  auto db = OpenDb();
  const std::vector<std::pair<JobReason, std::string>> reasons = {
      {JobReason::kEvent, "ObjectCreated:Put"}, {JobReason::kEvent, ""},
      {JobReason::kResyncAfterRemoval, ""},     {JobReason::kReconcileMissing, ""},
      {JobReason::kReconcileStale, ""},         {JobReason::kReconcileUnverified, ""}};
  ASSERT_TRUE(db->Transact([&](StateTxn& t) {
                  for (size_t i = 0; i < reasons.size(); ++i) {
                    FetchJob j = Job("k" + std::to_string(i));
                    j.reason = reasons[i].first;
                    j.event_name = reasons[i].second;
                    DS_RETURN_IF_ERROR(t.Enqueue(j));
                  }
                  return Status::Ok();
                }).ok());
  auto jobs = db->ClaimJobs(0, 10);
  ASSERT_TRUE(jobs.ok());
  ASSERT_EQ(jobs->size(), reasons.size());
  for (const FetchJob& j : *jobs) {
    const size_t i = std::stoul(j.key.substr(1));
    EXPECT_EQ(j.reason, reasons[i].first) << j.key;
    EXPECT_EQ(j.event_name, reasons[i].second) << j.key;
  }
  db.reset();
  // A database written by another version: a reason text this one does not know.
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &raw), SQLITE_OK);
  EXPECT_EQ(sqlite3_exec(raw,
                         "UPDATE jobs SET reason = 'reconcile', claimed_pid = NULL, "
                         "lease_until_ms = NULL, claim_owner = ''",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(raw);
  db = OpenDb();
  jobs = db->ClaimJobs(0, 10);
  ASSERT_TRUE(jobs.ok());
  ASSERT_EQ(jobs->size(), reasons.size());
  for (const FetchJob& j : *jobs) {
    EXPECT_EQ(j.reason, JobReason::kEvent) << j.key;
    EXPECT_EQ(j.event_name, "reconcile") << j.key;
  }
  std::string name;
  EXPECT_EQ(ParseJobReason("event ObjectCreated:Put", &name), JobReason::kEvent);
  EXPECT_EQ(name, "ObjectCreated:Put");
  EXPECT_EQ(JobReasonText(JobReason::kEvent, "reconcile"), "event reconcile");
}

TEST_F(SqliteStateTest, RetryFailAndFinish) {
  auto db = OpenDb();
  ASSERT_TRUE(db->Transact([&](StateTxn& t) {
                  DS_RETURN_IF_ERROR(t.Enqueue(Job("a")));
                  return t.Enqueue(Job("b"));
                }).ok());
  auto jobs = *db->ClaimJobs(0, 10);
  ASSERT_EQ(jobs.size(), 2u);
  ASSERT_TRUE(db->RetryJob(jobs[0].id, 1000, "Unavailable: boom", 1).ok());
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

// The claim inside a transaction (Engine::DrainJobs): oldest due job first, claimed only when
// the transaction commits, and a finish in the same transaction.
TEST_F(SqliteStateTest, ClaimNextJobAndFinishJobInsideATransaction) {
  auto db = OpenDb();
  FetchJob later = Job("later");
  later.not_before_ms = 500;
  ASSERT_TRUE(db->Transact([&](StateTxn& t) {
                  DS_RETURN_IF_ERROR(t.Enqueue(later));
                  DS_RETURN_IF_ERROR(t.Enqueue(Job("a")));
                  return t.Enqueue(Job("b"));
                }).ok());
  // Rolled back: the claim does not stick.
  Status undone = db->Transact([&](StateTxn& t) -> Status {
    auto j = t.ClaimNextJob(0);
    EXPECT_TRUE(j.ok() && j->has_value() && (*j)->key == "a");
    return Status::Internal("abandoned");
  });
  EXPECT_EQ(undone.code(), Code::kInternal);
  auto claim = [](StateTxn& t, std::optional<FetchJob>& into) -> Status {
    auto j = t.ClaimNextJob(0);
    if (!j.ok()) return j.status();
    into = *j;
    return Status::Ok();
  };
  std::optional<FetchJob> first, second, none;
  ASSERT_TRUE(db->Transact([&](StateTxn& t) { return claim(t, first); }).ok());
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->key, "a");
  ASSERT_TRUE(db->Transact([&](StateTxn& t) -> Status {
                  DS_RETURN_IF_ERROR(t.FinishJob(first->id));
                  DS_RETURN_IF_ERROR(claim(t, second));
                  return claim(t, none);  // "later" is not due at 0
                }).ok());
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->key, "b");
  EXPECT_FALSE(none.has_value());
  EXPECT_EQ(db->JobCounts()->first, 2);  // b (claimed) and later
  EXPECT_TRUE(db->ClaimJobs(499, 10)->empty());
  EXPECT_EQ(db->ClaimJobs(500, 10)->size(), 1u);
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

// Issue 16, item 5: a job claimed by a process that is still alive when the next one starts
// (a hung worker, a reused pid, another host's process) stayed claimed until another restart.
// Claims are leases now: taken over once expired, at any time, and kept while renewed.
TEST_F(SqliteStateTest, ClaimOfALiveProcessIsTakenOverWhenItsLeaseExpires) {
  {
    auto db = OpenDb();
    ASSERT_TRUE(db->Transact([&](StateTxn& t) { return t.Enqueue(Job("k")); }).ok());
  }
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t child = fork();
  if (child == 0) {
    auto db = SqliteState::Open(path_);
    auto jobs = (*db)->ClaimJobs(1000, 10);
    char c = jobs.ok() && jobs->size() == 1 ? 'y' : 'n';
    (void)!write(ready[1], &c, 1);
    pause();  // alive, holding the claim, never finishing it
    _exit(0);
  }
  char c = 0;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  close(ready[0]);
  close(ready[1]);
  ASSERT_EQ(c, 'y');
  auto db = OpenDb();  // the claimant is alive: its claim is not released at open
  EXPECT_TRUE(db->ClaimJobs(1000 + kClaimLeaseMs - 1, 10)->empty());
  auto taken = db->ClaimJobs(1000 + kClaimLeaseMs, 10);
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  ASSERT_TRUE(taken.ok());
  ASSERT_EQ(taken->size(), 1u);
  EXPECT_EQ((*taken)[0].key, "k");
  // Taken over: held by this process's lease now.
  EXPECT_TRUE(db->ClaimJobs(1000 + kClaimLeaseMs + 1, 10)->empty());
}

TEST_F(SqliteStateTest, RenewedClaimIsKeptAndFinishedOrRetriedClaimReleasesItsLease) {
  auto db = OpenDb();
  ASSERT_TRUE(db->Transact([&](StateTxn& t) {
                  DS_RETURN_IF_ERROR(t.Enqueue(Job("a")));
                  return t.Enqueue(Job("b"));
                }).ok());
  auto jobs = *db->ClaimJobs(0, 10);
  ASSERT_EQ(jobs.size(), 2u);
  ASSERT_TRUE(db->RenewClaim(jobs[0].id, 60'000).ok());
  // At the first lease's end only the job that was not renewed is handed out again.
  auto again = *db->ClaimJobs(kClaimLeaseMs, 10);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].key, "b");
  auto later = *db->ClaimJobs(60'000 + kClaimLeaseMs, 10);
  ASSERT_EQ(later.size(), 1u);  // "a": "b" was claimed again at kClaimLeaseMs
  EXPECT_EQ(later[0].key, "a");
  // A finished job is gone; a retried job has no lease: it is due at its time, not at a
  // lease's end.
  ASSERT_TRUE(db->FinishJob(again[0].id).ok());
  ASSERT_TRUE(db->RetryJob(later[0].id, 500'000, "Unavailable: boom", 1).ok());
  EXPECT_EQ(db->ClaimJobs(499'999, 10)->size(), 0u);
  EXPECT_EQ(db->ClaimJobs(500'000, 10)->size(), 1u);
}

TEST_F(SqliteStateTest, FailedJobsAreRequeuedClearedAndKeepTheirFirstError) {
  auto db = OpenDb();
  ASSERT_TRUE(db->Transact([&](StateTxn& t) {
                  for (const char* k : {"a", "a/b", "a/b/c", "a0", "x"}) {
                    DS_RETURN_IF_ERROR(t.Enqueue(Job(k)));
                  }
                  return Status::Ok();
                }).ok());
  auto jobs = *db->ClaimJobs(0, 10);
  ASSERT_EQ(jobs.size(), 5u);
  ASSERT_TRUE(db->RetryJob(jobs[4].id, 10, "Unavailable: boom", 7).ok());
  for (size_t i = 0; i < 4; ++i) ASSERT_TRUE(db->FailJob(jobs[i].id, "Conflict: a").ok());
  auto x = *db->ClaimJobs(10, 10);
  ASSERT_EQ(x.size(), 1u);
  EXPECT_EQ(x[0].first_error_ms, 7);
  // Removing "a/b" frees its path for its parent "a" and for "a/b/c", not for "a0".
  ASSERT_TRUE(db->Transact([&](StateTxn& t) { return t.RequeueShadowed("b", "a/b", 20); }).ok());
  auto requeued = *db->ClaimJobs(20, 10);
  std::vector<std::string> keys;
  for (const FetchJob& j : requeued) keys.push_back(j.key);
  std::sort(keys.begin(), keys.end());
  EXPECT_EQ(keys, (std::vector<std::string>{"a", "a/b/c"}));
  EXPECT_EQ(db->JobCounts()->second, 2);  // "a/b" and "a0" still failed
  ASSERT_TRUE(db->Transact([&](StateTxn& t) { return t.ClearFailed("b", "a0"); }).ok());
  EXPECT_EQ(db->JobCounts()->second, 1);
  EXPECT_EQ(*db->RetryFailed(30), 1);
  EXPECT_EQ(db->JobCounts()->second, 0);
  auto again = *db->ClaimJobs(30, 10);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].key, "a/b");
  EXPECT_EQ(again[0].attempts, 0);
}

// A job's event time survives the journal, and merged jobs keep the oldest.
TEST_F(SqliteStateTest, JobsKeepTheOldestEventTime) {
  auto db = OpenDb();
  ASSERT_TRUE(db);
  FetchJob a = Job("k"), b = Job("k");
  a.event_ms = 5000;
  b.event_ms = 3000;
  ASSERT_TRUE(db->Transact([&](StateTxn& t) -> Status {
                  DS_RETURN_IF_ERROR(t.Enqueue(a));
                  return t.Enqueue(b);
                }).ok());
  Result<std::vector<FetchJob>> jobs = db->ClaimJobs(10, 5);
  ASSERT_TRUE(jobs.ok());
  ASSERT_EQ(jobs->size(), 1u);
  EXPECT_EQ(jobs->front().event_ms, 3000);
}

}  // namespace
}  // namespace ds::sqlite_state_test
