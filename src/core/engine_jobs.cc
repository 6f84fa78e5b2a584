// The Engine's downloads (engine.h): journaling them for reconcile (QueueFetches), claiming and
// running jobs (DrainJobs, RunJob: ticket, GET, the check against the bucket past the state
// horizon, publication only if MayPublish), the store's "not found", retries with backoff.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>
#include <random>

#include "common/crash_point.h"
#include "core/engine.h"
#include "core/engine_internal.h"
#include "core/parse_events.h"  // CompareSequencers

namespace ds {

const char* JobOutcomeName(JobOutcome o) {
  switch (o) {
    case JobOutcome::kPublished:
      return "published";
    case JobOutcome::kDiscarded:
      return "discarded";
    case JobOutcome::kGone:
      return "gone";
    case JobOutcome::kRetry:
      return "retry";
    case JobOutcome::kFailed:
      return "failed";
  }
  return "unknown";
}

const char* HorizonCheckName(HorizonCheck c) {
  switch (c) {
    case HorizonCheck::kCurrent:
      return "current";
    case HorizonCheck::kGone:
      return "gone";
    case HorizonCheck::kChanged:
      return "changed";
    case HorizonCheck::kFailed:
      return "failed";
  }
  return "unknown";
}

int64_t Engine::Backoff(int attempts) {
  // Full jitter: uniform in [0, min(max, base * 2^attempts)].
  int64_t cap = opts_.retry_base_ms << std::min(attempts, 20);
  cap = std::min(cap, opts_.retry_max_ms);
  thread_local std::minstd_rand rng(static_cast<unsigned>(clock_.NowMillis()));
  std::uniform_int_distribution<int64_t> dist(cap / 2, std::max<int64_t>(cap, 1));
  return dist(rng);
}

JobOutcome Engine::RunJob(const FetchJob& job) {
  JobOutcome o = RunJobUnobserved(job);
  if (observer_ != nullptr) observer_->OnJob(job, o);
  return o;
}

Status Engine::StartJob(StateTxn& txn, const FetchJob& job, JobStart& start) {
  Result<KeyState> got = txn.Get(job.bucket, job.key);
  if (!got.ok()) return got.status();
  KeyState st = *got;
  if (engine_internal::IsStale(job.seq, job.ordered, st, /*is_create=*/true)) {
    start.stale = true;
    return Status::Ok();
  }
  start.ticket = ++st.fetch_ticket;
  start.removal_gen = st.removal_gen;
  start.unordered_removal_gen = st.unordered_removal_gen;
  return txn.Put(job.bucket, job.key, st);
}

bool Engine::MayPublish(const FetchJob& job, const JobStart& start, const KeyState& st) {
  // Tickets only grow: a lower one means that the key's row was collected (or the database
  // rebuilt) since the download started, so what it started under is unknown. Not published;
  // only a download running past its lease can see this (the row of a key with a job is never
  // collected).
  if (st.fetch_ticket < start.ticket) return false;
  // A download that started later has been published: this one's data may be older.
  if (st.published_ticket > start.ticket) return false;
  if (st.removal_gen == start.removal_gen) return true;  // no removal since the start
  // Removals happened since the start. Only an ordered creation can outlive them, and only when
  // each of them was ordered and older than it: st.seq is the newest applied sequencer, and
  // the GET started after this creation's event, so the data is newer than every such removal
  // (docs/SEMANTICS.md 3.3). A removal of unknown order (or erase, reconcile) always wins.
  if (!job.ordered || job.seq.empty()) return false;
  if (st.unordered_removal_gen != start.unordered_removal_gen) return false;
  std::optional<int> cmp = CompareSequencers(job.seq, st.seq);
  return cmp.has_value() && *cmp > 0;
}

JobOutcome Engine::RunJobUnobserved(const FetchJob& job) {
  // 1. Take a ticket and note the removal generation the download starts under.
  JobStart start;
  Status s = state_.Transact([&](StateTxn& txn) { return StartJob(txn, job, start); },
                             Durability::kRelaxed);
  if (!s.ok()) return RetryOrFail(job, s);
  return RunStarted(job, start, nullptr);
}

JobOutcome Engine::RetryOrFail(const FetchJob& job, const Status& err) {
  const std::string where = engine_internal::Where(job.bucket, job.key);
  bool transient = err.code() == Code::kUnavailable || err.code() == Code::kIoError;
  const int64_t now = clock_.NowMillis();
  const int64_t first_error = job.first_error_ms > 0 ? job.first_error_ms : now;
  const bool attempts_left =
      opts_.max_fetch_attempts <= 0 || job.attempts + 1 < opts_.max_fetch_attempts;
  const bool time_left = now - first_error < opts_.fetch_retry_for_ms;
  if (transient && attempts_left && time_left) {
    counters_.retried++;
    int64_t when = now + Backoff(job.attempts);
    spdlog::warn("download of {} failed (attempt {}), will retry in {} ms: {}", where,
                 job.attempts + 1, when - now, err.ToString());
    Status rs = state_.RetryJob(job.id, when, err.ToString(), first_error);
    // The claim is a lease: if it cannot be released here, it expires (kClaimLeaseMs).
    if (!rs.ok()) spdlog::error("could not reschedule job {}: {}", job.id, rs.ToString());
    return JobOutcome::kRetry;
  }
  counters_.fetch_failed++;
  spdlog::error("download of {} failed for good after {} attempt(s) over {} s: {}", where,
                job.attempts + 1, (now - first_error) / 1000, err.ToString());
  Status fs = state_.FailJob(job.id, err.ToString());
  if (!fs.ok()) spdlog::error("could not record failed job {}: {}", job.id, fs.ToString());
  return JobOutcome::kFailed;
}

JobOutcome Engine::RunStarted(const FetchJob& job, const JobStart& start, int64_t* finish_later) {
  const std::string where = engine_internal::Where(job.bucket, job.key);
  auto retry_or_fail = [&](const Status& err) { return RetryOrFail(job, err); };
  // A finished job leaves the journal now, or with the caller's next claim.
  auto finish = [&](JobOutcome o) {
    if (finish_later != nullptr) {
      *finish_later = job.id;
      return o;
    }
    Status fs = state_.FinishJob(job.id);
    if (!fs.ok()) spdlog::error("could not finish job {}: {}", job.id, fs.ToString());
    return o;
  };

  if (store_ == nullptr) {
    counters_.fetch_failed++;
    const char* msg = "no object store configured: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY";
    spdlog::error("cannot download {}: {}", where, msg);
    Status fs = state_.FailJob(job.id, msg);
    if (!fs.ok()) spdlog::error("could not record failed job {}: {}", job.id, fs.ToString());
    return JobOutcome::kFailed;
  }
  if (start.stale) {
    counters_.discarded++;
    spdlog::info("download of {} skipped: a newer event was applied", where);
    return finish(JobOutcome::kDiscarded);
  }
  const int64_t ticket = start.ticket, removal_gen = start.removal_gen;

  // 2. Stream the current object into a temp file in the reserved folder, created with the
  // first bytes (so that a GET answered 404 leaves no file at all).
  std::unique_ptr<TempFile> temp;
  auto ensure_temp = [&]() -> Status {
    if (temp) return Status::Ok();
    Result<std::unique_ptr<TempFile>> t = cache_.CreateTemp();
    if (!t.ok()) return t.status();
    temp = std::move(t).value();
    return Status::Ok();
  };
  // The claim is a lease (kClaimLeaseMs): renewed while the data flows, so that a long
  // download keeps its job and a dead claimant's job is taken over.
  int64_t renewed_ms = clock_.NowMillis();
  Result<ObjectInfo> info =
      store_->GetObject(job.bucket, job.key, "", [&](const char* d, size_t n) -> Status {
        DS_RETURN_IF_ERROR(ensure_temp());
        if (int64_t now = clock_.NowMillis(); now - renewed_ms >= state_.claim_lease_ms() / 4) {
          renewed_ms = now;
          Status rs = state_.RenewClaim(job.id, now);
          if (!rs.ok()) spdlog::warn("cannot renew the claim of job {}: {}", job.id, rs.ToString());
        }
        return temp->Write(d, n);
      });

  // The source of truth says the object is gone: no copy may stay.
  auto gone = [&]() -> JobOutcome {
    bool removed = false;
    Status rs = state_.Transact([&](StateTxn& txn) -> Status {
      Result<KeyState> got = txn.Get(job.bucket, job.key);
      if (!got.ok()) return got.status();
      KeyState st = *got;
      if (st.removal_gen != removal_gen || st.published_ticket > ticket) return Status::Ok();
      KeyState next = st;
      engine_internal::MarkRemoved(next, clock_.NowMillis());
      DS_RETURN_IF_ERROR(txn.Put(job.bucket, job.key, next));
      DS_RETURN_IF_ERROR(txn.ClearFailed(job.bucket, job.key));
      Result<bool> r =
          RecordThenRemove(job.bucket, job.key, st, RemovalCause::kStoreNotFound, job.event_id,
                           JobReasonText(job.reason, job.event_name), /*record_absent=*/false);
      if (!r.ok()) return r.status();
      removed = *r;
      if (removed) {
        DS_RETURN_IF_ERROR(txn.RequeueShadowed(job.bucket, job.key, clock_.NowMillis()));
      }
      return Status::Ok();
    });
    if (!rs.ok()) return retry_or_fail(rs);
    counters_.gone++;
    if (removed) {
      counters_.removed++;
      Removed(job.bucket, job.key, RemovalCause::kStoreNotFound);
      spdlog::info("removed {}: the store no longer has it", where);
    } else {
      spdlog::info("download of {}: the store no longer has it", where);
    }
    return finish(JobOutcome::kGone);
  };
  if (!info.ok() && info.status().code() == Code::kNotFound) return gone();
  if (!info.ok()) return retry_or_fail(info.status());
  if (Status ts = ensure_temp(); !ts.ok()) return retry_or_fail(ts);  // an empty object
  TempFile& tf = *temp;

  // The data's fsync happens here, outside the transaction that serialises the key's state.
  if (Status ss = tf.Sync(); !ss.ok()) return retry_or_fail(ss);
  CrashPoint("download-written");

  // An event older than the state horizon may be older than removals whose state was collected
  // since: it is published only if the bucket's current object, asked now, after the GET, is the
  // one downloaded (docs/SEMANTICS.md 3.6). Outside any transaction: a HEAD is a network call.
  if (OlderThanHorizon(job)) {
    Status head_error;
    HorizonCheck check = CheckAgainstBucket(job, *info, &head_error);
    counters_.horizon_checked++;
    if (observer_ != nullptr) observer_->OnHorizonCheck(job, check);
    switch (check) {
      case HorizonCheck::kCurrent:
        break;
      case HorizonCheck::kGone:
        counters_.horizon_refused++;
        spdlog::warn(
            "download of {} not published: its event is older than the state horizon and the "
            "bucket no longer has the object",
            where);
        return gone();
      case HorizonCheck::kChanged:
        counters_.horizon_refused++;
        spdlog::warn(
            "download of {} not published: its event is older than the state horizon and the "
            "bucket's current object is not the one downloaded (etag {}); downloading again",
            where, info->etag);
        return retry_or_fail(Status::Unavailable(
            "the object changed during the download (checked against the bucket: its event is "
            "older than the state horizon)"));
      case HorizonCheck::kFailed:
        return retry_or_fail(head_error);
    }
  }

  // 3. Publish only if no removal and no later download got there first.
  bool published = false;
  Status ps = state_.Transact(
      [&](StateTxn& txn) -> Status {
        Result<KeyState> got = txn.Get(job.bucket, job.key);
        if (!got.ok()) return got.status();
        KeyState st = *got;
        if (!MayPublish(job, start, st)) return Status::Ok();
        CrashPoint("publish-before-rename");
        // The folder's fsync waits until the transaction has released the lock (below).
        DS_RETURN_IF_ERROR(tf.PublishUnsynced(job.key));
        CrashPoint("publish-after-rename");
        published = true;
        DS_RETURN_IF_ERROR(txn.ClearFailed(job.bucket, job.key));
        st.present = true;
        st.tombstone = false;
        st.published_ticket = ticket;
        st.etag = info->etag;
        st.version_id = info->version_id;
        st.size = static_cast<int64_t>(tf.bytes_written());
        st.updated_ms = clock_.NowMillis();
        engine_internal::RaiseSeq(st, job.seq, job.ordered);
        return txn.Put(job.bucket, job.key, st);
      },
      Durability::kRelaxed);
  if (!ps.ok()) {
    if (ps.code() == Code::kConflict) {
      counters_.fetch_failed++;
      spdlog::error("cannot publish {}: {}", where, ps.message());
      Status fs = state_.FailJob(job.id, ps.ToString());
      if (!fs.ok()) spdlog::error("could not record failed job {}: {}", job.id, fs.ToString());
      return JobOutcome::kFailed;
    }
    return retry_or_fail(ps);
  }
  if (!published) {
    counters_.discarded++;
    spdlog::info("download of {} discarded: removed or replaced while downloading", where);
    return finish(JobOutcome::kDiscarded);
  }
  // Durable before the job is finished: if this fails or the process dies first, the job
  // runs again.
  if (Status fs = tf.SyncFolder(); !fs.ok()) return retry_or_fail(fs);
  counters_.published++;
  IndexSubjects(job.bucket, job.key, {info->metadata.begin(), info->metadata.end()});
  counters_.bytes_fetched += static_cast<int64_t>(tf.bytes_written());
  spdlog::info("materialised {} ({} bytes, etag {})", where, tf.bytes_written(), info->etag);
  return finish(JobOutcome::kPublished);
}

bool Engine::OlderThanHorizon(const FetchJob& job) {
  if (opts_.state_horizon_ms <= 0) return false;
  return job.event_ms < clock_.NowMillis() - opts_.state_horizon_ms + kHorizonClockSkewMs;
}

HorizonCheck Engine::CheckAgainstBucket(const FetchJob& job, const ObjectInfo& got, Status* error) {
  Result<ObjectInfo> head = store_->HeadObject(job.bucket, job.key, "");
  if (!head.ok()) {
    if (head.status().code() == Code::kNotFound) return HorizonCheck::kGone;
    *error = head.status();
    return HorizonCheck::kFailed;
  }
  // The same object: the same ETag and, when both name one, the same version.
  if (head->etag != got.etag) return HorizonCheck::kChanged;
  if (!head->version_id.empty() && !got.version_id.empty() && head->version_id != got.version_id) {
    return HorizonCheck::kChanged;
  }
  return HorizonCheck::kCurrent;
}

Status Engine::QueueFetches(const std::string& bucket, std::span<const FetchRequest> requests,
                            const std::string& request_id) {
  if (requests.empty()) return Status::Ok();
  const int64_t now = clock_.NowMillis();
  // One transaction for the group. Relaxed: a reconcile download lost to a power cut is found
  // again by the next pass.
  Status s = state_.Transact(
      [&](StateTxn& txn) -> Status {
        for (const FetchRequest& r : requests) {
          FetchJob job;
          job.bucket = bucket;
          job.key = r.key;
          job.ordered = false;
          job.event_id = request_id;
          job.reason = r.reason;
          job.not_before_ms = now;
          job.event_ms = now;  // from a listing taken now
          DS_RETURN_IF_ERROR(txn.Enqueue(job));
        }
        return Status::Ok();
      },
      Durability::kRelaxed);
  if (s.ok()) counters_.queued += static_cast<int64_t>(requests.size());
  return s;
}

void Engine::NoteClaimError(const Status& s) {
  std::lock_guard<std::mutex> l(claim_error_mu_);
  const int64_t now = clock_.NowMillis();
  claim_failing_.store(true, std::memory_order_relaxed);
  if (claim_error_reported_ms_ != 0 && now - claim_error_reported_ms_ < kClaimErrorReportMs) {
    ++claim_errors_unreported_;
    return;
  }
  if (claim_errors_unreported_ > 0) {
    spdlog::error(
        "cannot claim a job from the journal ({} more failed claim(s) in the last {} s): {}",
        claim_errors_unreported_, (now - claim_error_reported_ms_) / 1000, s.ToString());
  } else {
    spdlog::error("cannot claim a job from the journal: {}", s.ToString());
  }
  claim_error_reported_ms_ = now;
  claim_errors_unreported_ = 0;
}

void Engine::NoteClaimOk() {
  if (!claim_failing_.load(std::memory_order_relaxed)) return;
  std::lock_guard<std::mutex> l(claim_error_mu_);
  if (!claim_failing_.exchange(false, std::memory_order_relaxed)) return;
  spdlog::info("claims from the journal work again");
  claim_error_reported_ms_ = 0;
  claim_errors_unreported_ = 0;
}

size_t Engine::DrainJobs(size_t max_jobs, const std::function<bool()>& stop) {
  size_t ran = 0;
  // A job that is done (its file published and its folder synced, or discarded) and leaves
  // the journal in the transaction of the next claim: two state transactions per download
  // (claim, publish) instead of four.
  int64_t finish_id = 0;
  while (ran < max_jobs && !(stop && stop())) {
    // One at a time, so that several threads draining share the work evenly.
    std::optional<FetchJob> job;
    JobStart start;
    Status s = state_.Transact(
        [&](StateTxn& txn) -> Status {
          job.reset();
          start = JobStart{};
          if (finish_id != 0) DS_RETURN_IF_ERROR(txn.FinishJob(finish_id));
          Result<std::optional<FetchJob>> next = txn.ClaimNextJob(clock_.NowMillis());
          if (!next.ok()) return next.status();
          job = std::move(next).value();
          if (!job) return Status::Ok();
          // 1. The ticket, in the claim's transaction.
          return StartJob(txn, *job, start);
        },
        Durability::kRelaxed);
    if (!s.ok()) {
      NoteClaimError(s);
      break;
    }
    NoteClaimOk();
    finish_id = 0;
    if (!job) break;
    JobOutcome o = RunStarted(*job, start, &finish_id);
    if (observer_ != nullptr) observer_->OnJob(*job, o);
    ++ran;
  }
  if (finish_id != 0) {
    Status fs = state_.FinishJob(finish_id);
    if (!fs.ok()) spdlog::error("could not finish job {}: {}", finish_id, fs.ToString());
  }
  return ran;
}

}  // namespace ds
