// SqliteState's job queue (sqlite_state.h, the jobs table): journaling, claims and their
// leases, retries and failures, for SqliteTxn inside a transaction and for SqliteState outside.
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/parse_events.h"  // CompareSequencers
#include "state/sqlite_internal.h"
#include "state/sqlite_state.h"

namespace ds {
namespace sqlite_internal {
namespace {

FetchJob ReadJob(Stmt& q) {
  FetchJob j;
  j.id = q.ColInt(0);
  j.bucket = q.ColText(1);
  j.key = q.ColText(2);
  j.seq = q.ColText(3);
  j.ordered = q.ColInt(4) != 0;
  j.event_id = q.ColText(5);
  j.reason = ParseJobReason(q.ColText(6), &j.event_name);
  j.attempts = static_cast<int>(q.ColInt(7));
  j.not_before_ms = q.ColInt(8);
  j.last_error = q.ColText(9);
  j.first_error_ms = q.ColInt(10);
  j.event_ms = q.ColInt(11);
  return j;
}

}  // namespace

// The columns ReadJob reads, in its order: one list for every query of jobs (a macro, so that
// each query is one string literal).
#define DS_JOB_COLUMNS                                                                     \
  "id, bucket, key, seq, ordered, event_id, reason, attempts, not_before_ms, last_error, " \
  "first_error_ms, event_ms"

Status SqliteTxn::Enqueue(const FetchJob& job) {
  Stmt find(cache_, db_,
            // INDEXED BY: without statistics SQLite prefers jobs_due (failed, claimed_pid),
            // which scans every waiting job: a start pass that journals 100,000 downloads
            // took quadratic time (bench/restart.sh).
            "SELECT id, seq, ordered, not_before_ms, event_ms FROM jobs INDEXED BY jobs_key "
            "WHERE bucket = ?1 AND key = ?2 AND claimed_pid IS NULL AND failed = 0 LIMIT 1");
  if (!find.ok()) return err_("prepare job lookup");
  find.Text(1, job.bucket).Blob(2, job.key);
  int rc = find.Step();
  if (rc == SQLITE_ROW) {
    int64_t id = find.ColInt(0);
    std::string seq = find.ColText(1);
    bool ordered = find.ColInt(2) != 0 && job.ordered;
    int64_t not_before = std::min(find.ColInt(3), job.not_before_ms);
    // The oldest event of the merged ones decides whether the download is checked against
    // the bucket before it is published (0, unknown, is the oldest).
    int64_t event_ms = std::min(find.ColInt(4), job.event_ms);
    if (!ordered) {
      seq.clear();
    } else {
      std::optional<int> cmp = CompareSequencers(job.seq, seq);
      if (cmp && *cmp > 0) seq = job.seq;
    }
    Stmt upd(cache_, db_,
             "UPDATE jobs SET seq = ?2, ordered = ?3, not_before_ms = ?4, event_id = ?5, "
             "reason = ?6, event_ms = ?7 WHERE id = ?1");
    if (!upd.ok()) return err_("prepare job merge");
    upd.Int(1, id).Text(2, seq).Int(3, ordered ? 1 : 0).Int(4, not_before);
    upd.Text(5, job.event_id).Text(6, JobReasonText(job.reason, job.event_name)).Int(7, event_ms);
    if (upd.Step() != SQLITE_DONE) return err_("merge job");
    return Status::Ok();
  }
  if (rc != SQLITE_DONE) return err_("look up job");
  Stmt ins(cache_, db_,
           "INSERT INTO jobs (bucket, key, seq, ordered, event_id, reason, not_before_ms, "
           "event_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
  if (!ins.ok()) return err_("prepare job insert");
  ins.Text(1, job.bucket).Blob(2, job.key).Text(3, job.seq).Int(4, job.ordered ? 1 : 0);
  ins.Text(5, job.event_id)
      .Text(6, JobReasonText(job.reason, job.event_name))
      .Int(7, job.not_before_ms)
      .Int(8, job.event_ms);
  if (ins.Step() != SQLITE_DONE) return err_("insert job");
  return Status::Ok();
}

Result<std::optional<FetchJob>> SqliteTxn::ClaimNextJob(int64_t now_ms) {
  std::optional<FetchJob> job;
  // A due job nobody holds, else one whose claimant's lease expired (two index ranges:
  // jobs_due, then jobs_lease, whose unclaimed rows have no lease).
  for (const char* sql :
       {"SELECT " DS_JOB_COLUMNS " FROM jobs WHERE failed = 0 AND claimed_pid IS NULL AND "
        "not_before_ms <= ?1 ORDER BY not_before_ms, id LIMIT 1",
        "SELECT " DS_JOB_COLUMNS " FROM jobs WHERE failed = 0 AND lease_until_ms <= ?1 "
        "ORDER BY lease_until_ms, id LIMIT 1"}) {
    Stmt q(cache_, db_, sql);
    if (!q.ok()) return err_("prepare job claim");
    q.Int(1, now_ms);
    int rc = q.Step();
    if (rc == SQLITE_DONE) continue;
    if (rc != SQLITE_ROW) return err_("read jobs");
    job = ReadJob(q);
    break;
  }
  if (!job) return job;
  Stmt u(cache_, db_,
         "UPDATE jobs SET claimed_pid = ?2, claim_owner = ?3, lease_until_ms = ?4 WHERE id = ?1");
  if (!u.ok()) return err_("prepare job claim");
  u.Int(1, job->id).Int(2, getpid()).Text(3, owner_).Int(4, now_ms + lease_ms_);
  if (u.Step() != SQLITE_DONE) return err_("claim job");
  return job;
}

Status SqliteTxn::ClearFailed(const std::string& bucket, const std::string& key) {
  Stmt q(cache_, db_, "DELETE FROM jobs WHERE bucket = ?1 AND key = ?2 AND failed = 1");
  if (!q.ok()) return err_("prepare clearing failed jobs");
  q.Text(1, bucket).Blob(2, key);
  if (q.Step() != SQLITE_DONE) return err_("clear failed jobs");
  return Status::Ok();
}

Status SqliteTxn::RequeueShadowed(const std::string& bucket, const std::string& key,
                                  int64_t now_ms) {
  // Keys under key + "/": the byte range [key + "/", key + "0") ('0' follows '/').
  Stmt under(cache_, db_,
             "UPDATE jobs SET failed = 0, attempts = 0, first_error_ms = 0, not_before_ms = ?4 "
             "WHERE failed = 1 AND bucket = ?1 AND key >= ?2 AND key < ?3");
  if (!under.ok()) return err_("prepare re-queueing shadowed jobs");
  under.Text(1, bucket).Blob(2, key + "/").Blob(3, key + "0").Int(4, now_ms);
  if (under.Step() != SQLITE_DONE) return err_("re-queue shadowed jobs");
  for (size_t slash = key.find('/'); slash != std::string::npos; slash = key.find('/', slash + 1)) {
    Stmt parent(cache_, db_,
                "UPDATE jobs SET failed = 0, attempts = 0, first_error_ms = 0, "
                "not_before_ms = ?3 WHERE failed = 1 AND bucket = ?1 AND key = ?2");
    if (!parent.ok()) return err_("prepare re-queueing shadowed jobs");
    parent.Text(1, bucket).Blob(2, key.substr(0, slash)).Int(3, now_ms);
    if (parent.Step() != SQLITE_DONE) return err_("re-queue shadowed jobs");
  }
  return Status::Ok();
}

Status SqliteTxn::FinishJob(int64_t id) {
  Stmt q(cache_, db_, "DELETE FROM jobs WHERE id = ?1");
  if (!q.ok()) return err_("prepare job finish");
  q.Int(1, id);
  if (q.Step() != SQLITE_DONE) return err_("finish job");
  return Status::Ok();
}

}  // namespace sqlite_internal

Result<std::vector<FetchJob>> SqliteState::ClaimJobs(int64_t now_ms, size_t limit) {
  std::vector<FetchJob> jobs;
  Status s = Transact(
      [&](StateTxn& txn) -> Status {
        jobs.clear();
        while (jobs.size() < limit) {
          Result<std::optional<FetchJob>> next = txn.ClaimNextJob(now_ms);
          if (!next.ok()) return next.status();
          if (!next->has_value()) break;
          jobs.push_back(std::move(**next));
        }
        return Status::Ok();
      },
      Durability::kRelaxed);
  if (!s.ok()) return s;
  return jobs;
}

Status SqliteState::FinishJob(int64_t id) {
  return Transact([&](StateTxn& txn) { return txn.FinishJob(id); }, Durability::kRelaxed);
}

Status SqliteState::RenewClaim(int64_t id, int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  DS_RETURN_IF_ERROR(SetDurability(Durability::kRelaxed));
  sqlite_internal::Stmt q(db_,
                          "UPDATE jobs SET lease_until_ms = ?2 WHERE id = ?1 AND claim_owner = ?3");
  q.Int(1, id).Int(2, now_ms + claim_lease_ms_).Text(3, owner_);
  if (q.Step() != SQLITE_DONE) return Error("renew the claim of a job");
  return Status::Ok();
}

Status SqliteState::RetryJob(int64_t id, int64_t not_before_ms, const std::string& error,
                             int64_t first_error_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  DS_RETURN_IF_ERROR(SetDurability(Durability::kRelaxed));
  sqlite_internal::Stmt q(
      db_,
      "UPDATE jobs SET claimed_pid = NULL, claim_owner = '', lease_until_ms = NULL, "
      "attempts = attempts + 1, not_before_ms = ?2, last_error = ?3, first_error_ms = ?4 "
      "WHERE id = ?1");
  q.Int(1, id).Int(2, not_before_ms).Text(3, error).Int(4, first_error_ms);
  if (q.Step() != SQLITE_DONE) return Error("reschedule job");
  return Status::Ok();
}

Status SqliteState::FailJob(int64_t id, const std::string& error) {
  std::lock_guard<std::mutex> lock(mu_);
  DS_RETURN_IF_ERROR(SetDurability(Durability::kRelaxed));
  sqlite_internal::Stmt q(
      db_,
      "UPDATE jobs SET claimed_pid = NULL, claim_owner = '', lease_until_ms = NULL, "
      "attempts = attempts + 1, failed = 1, last_error = ?2 WHERE id = ?1");
  q.Int(1, id).Text(2, error);
  if (q.Step() != SQLITE_DONE) return Error("record failed job");
  return Status::Ok();
}

Result<int64_t> SqliteState::RetryFailed(int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  DS_RETURN_IF_ERROR(SetDurability(Durability::kDurable));
  sqlite_internal::Stmt q(
      db_,
      "UPDATE jobs SET failed = 0, attempts = 0, first_error_ms = 0, not_before_ms = ?1, "
      "claimed_pid = NULL, claim_owner = '', lease_until_ms = NULL WHERE failed = 1");
  q.Int(1, now_ms);
  if (q.Step() != SQLITE_DONE) return Error("re-queue failed jobs");
  return static_cast<int64_t>(sqlite3_changes(db_));
}

Result<std::pair<int64_t, int64_t>> SqliteState::JobCounts() {
  std::lock_guard<std::mutex> lock(mu_);
  sqlite_internal::Stmt q(
      db_, "SELECT COALESCE(SUM(failed = 0), 0), COALESCE(SUM(failed = 1), 0) FROM jobs");
  if (q.Step() != SQLITE_ROW) return Error("count jobs");
  return std::make_pair(q.ColInt(0), q.ColInt(1));
}

Result<StateStore::JobPresence> SqliteState::JobOf(const std::string& bucket,
                                                   const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  sqlite_internal::Stmt q(db_, "SELECT MIN(failed) FROM jobs WHERE bucket = ?1 AND key = ?2");
  q.Text(1, bucket).Blob(2, key);
  if (q.Step() != SQLITE_ROW) return Error("look up the jobs of a key");
  if (q.ColNull(0)) return JobPresence::kNone;
  return q.ColInt(0) == 0 ? JobPresence::kWaiting : JobPresence::kFailed;
}

Result<std::vector<FetchJob>> SqliteState::FailedJobs(size_t limit) {
  std::lock_guard<std::mutex> lock(mu_);
  sqlite_internal::Stmt q(
      db_, "SELECT " DS_JOB_COLUMNS " FROM jobs WHERE failed = 1 ORDER BY id DESC LIMIT ?1");
  q.Int(1, static_cast<int64_t>(limit));
  std::vector<FetchJob> out;
  int rc;
  while ((rc = q.Step()) == SQLITE_ROW) out.push_back(sqlite_internal::ReadJob(q));
  if (rc != SQLITE_DONE) return Error("read failed jobs");
  return out;
}

}  // namespace ds
