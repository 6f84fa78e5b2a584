#include "core/engine.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <random>

#include "common/crash_point.h"
#include "core/ops_metrics.h"  // ParseEventTimeMillis
#include "core/parse_events.h"

namespace ds {

const char* OutcomeName(Outcome o) {
  switch (o) {
    case Outcome::kRemoved:
      return "removed";
    case Outcome::kAbsent:
      return "absent";
    case Outcome::kQueued:
      return "queued";
    case Outcome::kPublished:
      return "published";
    case Outcome::kIgnored:
      return "ignored";
    case Outcome::kOutOfScope:
      return "out-of-scope";
    case Outcome::kStale:
      return "stale";
    case Outcome::kOtherVersion:
      return "other-version";
    case Outcome::kRefused:
      return "refused";
    case Outcome::kFailed:
      return "failed";
  }
  return "unknown";
}

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

namespace {

std::string Where(const std::string& bucket, const std::string& key) {
  return "s3://" + bucket + "/" + PrintableKey(key);
}

// True when an ordered event with sequencer `seq` is older than what was applied for the key.
// A creation with the same sequencer as an applied removal counts as older: removal wins.
bool IsStale(const std::string& seq, bool ordered, const KeyState& st, bool is_create) {
  if (!ordered || seq.empty() || st.seq.empty()) return false;
  std::optional<int> cmp = CompareSequencers(seq, st.seq);
  if (!cmp) return false;
  if (*cmp < 0) return true;
  return *cmp == 0 && is_create && st.tombstone;
}

// Records in `st` that the key's copy was removed at `now_ms`. `ordered`: the removal is an
// event of an ordered source carrying a sequencer (RaiseSeq records it); any other removal also
// bumps unordered_removal_gen.
void MarkRemoved(KeyState& st, int64_t now_ms, bool ordered = false) {
  st.present = false;
  st.tombstone = true;
  st.removal_gen++;
  if (!ordered) st.unordered_removal_gen++;
  st.etag.clear();
  st.version_id.clear();
  st.size = -1;
  st.updated_ms = now_ms;
}

void RaiseSeq(KeyState& st, const std::string& seq, bool ordered) {
  if (!ordered || seq.empty()) return;
  if (st.seq.empty()) {
    st.seq = seq;
    return;
  }
  std::optional<int> cmp = CompareSequencers(seq, st.seq);
  if (cmp && *cmp > 0) st.seq = seq;
}

}  // namespace

Engine::Engine(ObjectStore* store, CacheFs& cache, StateStore& state, Clock& clock,
               EngineOptions opts)
    : store_(store), cache_(cache), state_(state), clock_(clock), opts_(std::move(opts)) {}

std::map<std::string, int64_t> Engine::RefusalCounts() const {
  std::lock_guard<std::mutex> lock(refusals_mu_);
  return refusals_;
}

ApplyResult Engine::Refuse(const Event& ev, KeyRefusal r) {
  counters_.refused++;
  {
    std::lock_guard<std::mutex> lock(refusals_mu_);
    refusals_[RefusalName(r)]++;
  }
  std::string msg = std::string("refused key '") + PrintableKey(ev.key) + "' (" + RefusalName(r) +
                    "): " + RefusalReason(r);
  spdlog::warn("{} [{} {}]", msg, ev.name, ev.event_id);
  return {Outcome::kRefused, msg, Status::Ok(), r};
}

ApplyResult Engine::Apply(const Event& ev) { return ApplyAll(std::span<const Event>(&ev, 1))[0]; }

std::vector<ApplyResult> Engine::ApplyAll(std::span<const Event> evs) {
  std::vector<ApplyResult> results(evs.size());
  std::vector<size_t> staged;  // events that change state, applied in one transaction
  for (size_t i = 0; i < evs.size(); ++i) {
    if (std::optional<ApplyResult> r = Screen(evs[i])) {
      results[i] = std::move(*r);
    } else {
      staged.push_back(i);
    }
  }
  if (!staged.empty()) ApplyStaged(evs, staged, results);
  if (observer_ != nullptr) {
    for (size_t i = 0; i < evs.size(); ++i) observer_->OnEvent(evs[i], results[i]);
  }
  return results;
}

std::optional<ApplyResult> Engine::Screen(const Event& ev) {
  if (ev.action == EventAction::kIgnore) {
    counters_.ignored++;
    spdlog::debug("ignored {} for {}", ev.name, Where(ev.bucket, ev.key));
    return ApplyResult{Outcome::kIgnored, "event type " + ev.name + " changes nothing",
                       Status::Ok()};
  }
  if (!opts_.bucket.empty() && ev.bucket != opts_.bucket) {
    counters_.out_of_scope++;
    return ApplyResult{
        Outcome::kOutOfScope,
        "bucket '" + ev.bucket + "' is not the mirrored bucket '" + opts_.bucket + "'",
        Status::Ok()};
  }
  if (!KeyUnderPrefix(ev.key, opts_.prefix)) {
    counters_.out_of_scope++;
    return ApplyResult{Outcome::kOutOfScope, "key is outside the prefix '" + opts_.prefix + "'",
                       Status::Ok()};
  }
  if (auto r = CheckKey(ev.key, opts_.limits)) return Refuse(ev, *r);
  return std::nullopt;
}

RemovalRecord Engine::MakeRecord(const std::string& bucket, const std::string& key,
                                 const KeyState& before, bool removed, RemovalCause cause,
                                 const std::string& event_id, const std::string& event_name) {
  RemovalRecord rec;
  rec.bucket = bucket;
  rec.key = key;
  rec.version_id = before.version_id;
  rec.etag = before.etag;
  rec.size = before.size;
  rec.cause = cause;
  rec.event_id = event_id;
  rec.event_name = event_name;
  rec.outcome = removed ? RemovalOutcome::kRemoved : RemovalOutcome::kAbsent;
  return rec;
}

Status Engine::Audit(const std::string& bucket, const std::string& key, const KeyState& before,
                     bool removed, RemovalCause cause, const std::string& event_id,
                     const std::string& event_name) {
  if (audit_ == nullptr) return Status::Ok();
  Status s =
      audit_->RecordRemoval(MakeRecord(bucket, key, before, removed, cause, event_id, event_name));
  if (!s.ok()) return Status(s.code(), "audit log: " + s.message());
  return s;
}

Status Engine::TransactRemoval(const std::function<Status(StateTxn&)>& fn) {
  Status s = state_.Transact(fn);
  if (s.ok() || s.code() != Code::kIoError) return s;
  Result<bool> released = cache_.ReleaseReserve();
  if (!released.ok() || !*released) return s;
  spdlog::warn(
      "a removal failed ({}); released the cache's disk-space reserve and trying again: the "
      "cache's file system is probably full",
      s.ToString());
  return state_.Transact(fn);
}

void Engine::ApplyStaged(std::span<const Event> evs, const std::vector<size_t>& staged,
                         std::vector<ApplyResult>& results) {
  // One transaction for the whole group. Every removal is decided first (the state updated,
  // the copy looked at), then the audit records of all of them are appended with one
  // fdatasync, and only then are the copies unlinked, their folders fsynced once, and the
  // state committed. So no copy is ever unlinked without a durable record naming it, whatever
  // fails: an error before the records changes nothing; an unlink that fails after them is
  // recorded as such (outcome "failed") and its key's events fail; a crash between the
  // records and the unlinks leaves the copies and an uncommitted state, so the unacknowledged
  // events are applied again when redelivered (and the start pass of `serve` removes copies
  // whose objects are gone).
  bool has_removal = false;
  for (size_t i : staged) has_removal = has_removal || evs[i].action == EventAction::kRemove;
  // Only removals may use the disk-space reserve: creations fail (and are retried) instead.
  auto transact = [&](const std::function<Status(StateTxn&)>& fn) {
    return has_removal ? TransactRemoval(fn) : state_.Transact(fn);
  };
  Status s = transact([&](StateTxn& txn) -> Status {
    GroupRemovals group;
    std::unique_ptr<RemovalBatch> removals = cache_.BeginRemovals();
    // The copies the group's removals may unlink, looked at together (in parallel on a shared
    // file system) before any is staged. Within the transaction only this group changes them.
    // A key whose state already holds a later sequencer than every removal of it in the group
    // is not looked at: those removals are stale (sequencers only rise).
    std::vector<std::string> look;
    for (size_t i : staged) {
      const Event& ev = evs[i];
      if (ev.action != EventAction::kRemove || group.looked.count(ev.key)) continue;
      Result<KeyState> st = txn.Get(ev.bucket, ev.key);
      if (!st.ok()) return st.status();
      if (IsStale(ev.sequencer, ev.ordered, *st, /*is_create=*/false)) continue;
      group.looked.emplace(ev.key, Status::Internal("not looked at"));
      look.push_back(ev.key);
    }
    std::vector<Result<CacheEntryInfo>> infos = removals->StatMany(look);
    for (size_t j = 0; j < look.size(); ++j) group.looked.at(look[j]) = std::move(infos[j]);
    for (size_t i : staged) {
      const Event& ev = evs[i];
      results[i] = ApplyResult{};
      Status es = ev.action == EventAction::kRemove ? StageRemove(txn, ev, results[i], group)
                                                    : StageCreate(txn, ev, results[i]);
      if (!es.ok()) return es;
      group.events_of[ev.bucket + '\0' + ev.key].push_back(i);
    }
    if (audit_ != nullptr && !group.records.empty()) {
      Status as = audit_->RecordRemovals(group.records);
      if (!as.ok()) return Status(as.code(), "audit log: " + as.message());
    }
    if (!group.unlinks.empty()) CrashPoint("removal-recorded");
    std::vector<std::string> unlink;
    for (const PlannedUnlink& u : group.unlinks) unlink.push_back(u.key);
    std::vector<Result<bool>> unlinked = removals->RemoveMany(unlink);
    std::vector<RemovalRecord> voided;
    for (size_t u_i = 0; u_i < group.unlinks.size(); ++u_i) {
      const PlannedUnlink& u = group.unlinks[u_i];
      const Result<bool>& removed = unlinked[u_i];
      if (removed.ok()) continue;
      // The copy is still there: its record is voided, and the key's events fail (the sender
      // retries them) with its state as it was before the group.
      const std::string id = u.bucket + '\0' + u.key;
      spdlog::error("removal of {} failed after its audit record: {}", Where(u.bucket, u.key),
                    removed.status().ToString());
      DS_RETURN_IF_ERROR(txn.Put(u.bucket, u.key, group.before.at(id)));
      for (size_t j : group.events_of.at(id)) {
        results[j] = {Outcome::kFailed, removed.status().ToString(), removed.status()};
      }
      if (audit_ != nullptr) {
        RemovalRecord v = group.records[u.record];
        v.outcome = RemovalOutcome::kFailed;
        voided.push_back(std::move(v));
      }
    }
    DS_RETURN_IF_ERROR(removals->Commit());
    if (!voided.empty()) {
      Status as = audit_->RecordRemovals(voided);
      if (!as.ok()) return Status(as.code(), "audit log: " + as.message());
    }
    if (!group.records.empty()) CrashPoint("removal-before-commit");
    return Status::Ok();
  });
  for (size_t i : staged) {
    const Event& ev = evs[i];
    ApplyResult& result = results[i];
    if (!s.ok()) result = {Outcome::kFailed, s.ToString(), s};
    if (result.outcome == Outcome::kFailed) {
      counters_.failed++;
      if (ev.action == EventAction::kRemove) {
        spdlog::error("removal of {} failed: {} [{}]", Where(ev.bucket, ev.key),
                      result.status.ToString(), ev.event_id);
      } else {
        spdlog::error("journaling creation of {} failed: {}", Where(ev.bucket, ev.key),
                      result.status.ToString());
      }
      continue;
    }
    switch (result.outcome) {
      case Outcome::kRemoved:
        counters_.removed++;
        Removed(ev.bucket, ev.key, RemovalCause::kEvent);
        spdlog::info("removed {} ({}) [{}]", Where(ev.bucket, ev.key), ev.name, ev.event_id);
        break;
      case Outcome::kAbsent:
        counters_.absent++;
        spdlog::info("removal of {} ({}): no cached copy [{}]", Where(ev.bucket, ev.key), ev.name,
                     ev.event_id);
        break;
      case Outcome::kStale:
        counters_.stale++;
        spdlog::info("stale {} of {}: {}",
                     ev.action == EventAction::kRemove ? "removal" : "creation",
                     Where(ev.bucket, ev.key), result.message);
        break;
      case Outcome::kOtherVersion:
        counters_.other_version++;
        spdlog::info("removal of {}: {}; cache left alone", Where(ev.bucket, ev.key),
                     result.message);
        break;
      case Outcome::kQueued:
        counters_.queued++;
        IndexSubjects(ev.bucket, ev.key, ev.metadata);
        IndexSubjects(ev.bucket, ev.key, ev.tags);
        spdlog::debug("queued download of {} ({}) [{}]", Where(ev.bucket, ev.key), ev.name,
                      ev.event_id);
        break;
      default:
        break;
    }
  }
}

Result<bool> Engine::CopyPresent(const std::string& bucket, const std::string& key,
                                 const Result<CacheEntryInfo>& info) {
  if (!info.ok() && info.status().code() == Code::kConflict) {
    // A path crossing a symbolic link or a file where a folder should be: no copy of this key,
    // and nothing else may be touched.
    spdlog::warn("removal of {}: {}; nothing removed", Where(bucket, key), info.status().message());
    return false;
  }
  if (!info.ok()) return info.status();
  if (info->exists && info->is_dir) {
    // Other keys live under this path: there is no copy of this key to remove.
    spdlog::warn("removal of {}: the path is a folder (other keys live under it); nothing removed",
                 Where(bucket, key));
    return false;
  }
  return info->exists;
}

Result<bool> Engine::RecordThenRemove(const std::string& bucket, const std::string& key,
                                      const KeyState& before, RemovalCause cause,
                                      const std::string& event_id, const std::string& event_name,
                                      bool record_absent) {
  Result<bool> present = CopyPresent(bucket, key, cache_.Stat(key));
  if (!present.ok()) return present.status();
  if (*present || record_absent) {
    DS_RETURN_IF_ERROR(Audit(bucket, key, before, *present, cause, event_id, event_name));
  }
  if (!*present) return false;
  CrashPoint("removal-recorded");
  Result<bool> r = cache_.Remove(key);
  if (!r.ok()) {
    // The record names a copy that is still there: void it.
    if (audit_ != nullptr) {
      RemovalRecord v = MakeRecord(bucket, key, before, true, cause, event_id, event_name);
      v.outcome = RemovalOutcome::kFailed;
      Status vs = audit_->RecordRemoval(v);
      if (!vs.ok()) {
        spdlog::error("audit log: cannot record the failed removal of {}: {}", Where(bucket, key),
                      vs.ToString());
      }
    }
    return r.status();
  }
  return true;  // (false: it vanished meanwhile, which is as good)
}

Status Engine::StageRemove(StateTxn& txn, const Event& ev, ApplyResult& result,
                           GroupRemovals& group) {
  Result<KeyState> got = txn.Get(ev.bucket, ev.key);
  if (!got.ok()) return got.status();
  KeyState st = *got;
  const std::string id = ev.bucket + '\0' + ev.key;
  group.before.emplace(id, st);  // the first event of the key in the group sees the old state
  if (IsStale(ev.sequencer, ev.ordered, st, /*is_create=*/false)) {
    result = {Outcome::kStale, "sequencer " + ev.sequencer + " is older than applied " + st.seq,
              Status::Ok()};
    return Status::Ok();
  }
  const bool specific_version = ev.version_id.has_value() && !ev.delete_marker;
  // A download that started after the copy was published and has not published since may be
  // fetching exactly this version, or may have renamed it into place just before a crash:
  // the service does not know which version the file holds, so the removal applies.
  const bool download_unsettled = st.fetch_ticket > st.published_ticket;
  if (specific_version && st.present && !st.version_id.empty() && st.version_id != *ev.version_id &&
      !download_unsettled) {
    result = {Outcome::kOtherVersion,
              "version " + *ev.version_id + " is not the cached version " + st.version_id,
              Status::Ok()};
    return Status::Ok();
  }
  // Whether there is a copy to unlink: an earlier removal of the group already unlinks it.
  bool removed = false;
  if (!group.unlinking.count(id)) {
    auto looked = group.looked.find(ev.key);
    Result<bool> present = CopyPresent(
        ev.bucket, ev.key, looked != group.looked.end() ? looked->second : cache_.Stat(ev.key));
    if (!present.ok()) {
      // This event fails (the sender retries it); the others of the group go on.
      result = {Outcome::kFailed, present.status().ToString(), present.status()};
      return Status::Ok();
    }
    removed = *present;
  }
  if (removed) {
    group.unlinking.insert(id);
    group.unlinks.push_back({ev.bucket, ev.key, group.records.size()});
  }
  group.records.push_back(
      MakeRecord(ev.bucket, ev.key, st, removed, RemovalCause::kEvent, ev.event_id, ev.name));
  MarkRemoved(st, clock_.NowMillis(), ev.ordered && !ev.sequencer.empty());
  RaiseSeq(st, ev.sequencer, ev.ordered);
  DS_RETURN_IF_ERROR(txn.Put(ev.bucket, ev.key, st));
  DS_RETURN_IF_ERROR(txn.ClearFailed(ev.bucket, ev.key));
  // The path is free: a key that lost it to this copy (a/b to a, or a to a/b) gets its turn.
  if (removed) DS_RETURN_IF_ERROR(txn.RequeueShadowed(ev.bucket, ev.key, clock_.NowMillis()));
  if (opts_.resync_after_removal && (!ev.ordered || specific_version)) {
    FetchJob job;
    job.bucket = ev.bucket;
    job.key = ev.key;
    job.ordered = false;
    job.event_id = ev.event_id;
    job.reason = JobReason::kResyncAfterRemoval;
    job.not_before_ms = clock_.NowMillis();
    job.event_ms = job.not_before_ms;  // it asks for the bucket's state from now on
    DS_RETURN_IF_ERROR(txn.Enqueue(job));
  }
  result = {removed ? Outcome::kRemoved : Outcome::kAbsent, "", Status::Ok()};
  return Status::Ok();
}

Status Engine::StageCreate(StateTxn& txn, const Event& ev, ApplyResult& result) {
  Result<KeyState> got = txn.Get(ev.bucket, ev.key);
  if (!got.ok()) return got.status();
  if (IsStale(ev.sequencer, ev.ordered, *got, /*is_create=*/true)) {
    result = {Outcome::kStale,
              "sequencer " + ev.sequencer + " is not newer than applied " + got->seq, Status::Ok()};
    return Status::Ok();
  }
  FetchJob job;
  job.bucket = ev.bucket;
  job.key = ev.key;
  job.seq = ev.ordered ? ev.sequencer : "";
  job.ordered = ev.ordered;
  job.event_id = ev.event_id;
  job.reason = JobReason::kEvent;
  job.event_name = ev.name;
  job.not_before_ms = clock_.NowMillis();
  // The event's own time when it says one (a late redelivery carries its original eventTime),
  // else when it was journaled; never later than that.
  job.event_ms = job.not_before_ms;
  if (std::optional<int64_t> t = ParseEventTimeMillis(ev.event_time)) {
    job.event_ms = std::min(*t, job.event_ms);
  }
  DS_RETURN_IF_ERROR(txn.Enqueue(job));
  result = {Outcome::kQueued, "", Status::Ok()};
  return Status::Ok();
}

static bool SubjectFieldMatches(const std::string& name, const std::string& field) {
  auto lower = [](std::string v) {
    for (char& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return v;
  };
  auto strip = [](const std::string& v) {
    static const std::string kPrefix = "x-amz-meta-";
    return v.compare(0, kPrefix.size(), kPrefix) == 0 ? v.substr(kPrefix.size()) : v;
  };
  return !field.empty() && strip(lower(name)) == strip(lower(field));
}

void Engine::IndexSubjects(const std::string& bucket, const std::string& key,
                           const std::vector<std::pair<std::string, std::string>>& fields) {
  for (const auto& [name, value] : fields) {
    if (value.empty() || !SubjectFieldMatches(name, opts_.subject_field)) continue;
    Status s = state_.IndexSubject(value, bucket, key);
    if (!s.ok()) {
      spdlog::error("cannot index the data subject of {}: {}", Where(bucket, key), s.ToString());
    }
  }
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
  if (IsStale(job.seq, job.ordered, st, /*is_create=*/true)) {
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
  const std::string where = Where(job.bucket, job.key);
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
  const std::string where = Where(job.bucket, job.key);
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
      MarkRemoved(next, clock_.NowMillis());
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
        RaiseSeq(st, job.seq, job.ordered);
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

Result<CollectStats> Engine::CollectState() {
  if (opts_.state_horizon_ms <= 0) return CollectStats{};
  const int64_t started = clock_.NowMillis();
  Result<CollectStats> got =
      state_.CollectExpired(started - opts_.state_horizon_ms, opts_.collect_batch);
  if (!got.ok()) {
    spdlog::error("state collection failed: {}", got.status().ToString());
    return got.status();
  }
  counters_.state_rows_collected += got->keys;
  if (observer_ != nullptr) observer_->OnStateCollected(*got);
  if (got->keys > 0) {
    spdlog::info(
        "state collection: {} row(s) of keys without a copy unchanged for {} s or more deleted "
        "in {} transaction(s), {} ms",
        got->keys, opts_.state_horizon_ms / 1000, got->transactions, clock_.NowMillis() - started);
  }
  return got;
}

Result<OrphanOutcome> Engine::RemoveOrphan(const std::string& bucket, const std::string& key,
                                           int64_t pass_started_ms, const std::string& request_id) {
  OrphanOutcome outcome = OrphanOutcome::kAbsent;
  Status s = TransactRemoval([&](StateTxn& txn) -> Status {
    Result<KeyState> got = txn.Get(bucket, key);
    if (!got.ok()) return got.status();
    KeyState st = *got;
    if (st.updated_ms >= pass_started_ms) {
      outcome = OrphanOutcome::kChanged;
      return Status::Ok();
    }
    // The state first: an error of the state database unlinks nothing.
    KeyState next = st;
    MarkRemoved(next, clock_.NowMillis());
    DS_RETURN_IF_ERROR(txn.Put(bucket, key, next));
    DS_RETURN_IF_ERROR(txn.ClearFailed(bucket, key));
    Result<bool> removed =
        RecordThenRemove(bucket, key, st, RemovalCause::kReconcile, request_id, "",
                         /*record_absent=*/false);
    if (!removed.ok()) return removed.status();
    if (*removed) DS_RETURN_IF_ERROR(txn.RequeueShadowed(bucket, key, clock_.NowMillis()));
    outcome = *removed ? OrphanOutcome::kRemoved : OrphanOutcome::kAbsent;
    return Status::Ok();
  });
  if (!s.ok()) {
    counters_.failed++;
    spdlog::error("reconcile: removal of orphan {} failed: {}", Where(bucket, key), s.ToString());
    return s;
  }
  if (outcome == OrphanOutcome::kRemoved) {
    counters_.removed++;
    Removed(bucket, key, RemovalCause::kReconcile);
    spdlog::info("removed {} (reconcile: not in the bucket) [{}]", Where(bucket, key), request_id);
  } else if (outcome == OrphanOutcome::kChanged) {
    spdlog::info("reconcile: {} changed during the pass; left alone", Where(bucket, key));
  }
  return outcome;
}

Result<bool> Engine::RemoveForErasure(const std::string& bucket, const std::string& key,
                                      const std::string& request_id) {
  bool removed = false;
  Status s = TransactRemoval([&](StateTxn& txn) -> Status {
    Result<KeyState> got = txn.Get(bucket, key);
    if (!got.ok()) return got.status();
    KeyState st = *got;
    // A folder (other keys live under it) or a path crossing a symbolic link holds no copy of
    // this key, and nothing else may be touched: recorded as absent.
    KeyState next = st;
    MarkRemoved(next, clock_.NowMillis());
    DS_RETURN_IF_ERROR(txn.Put(bucket, key, next));
    DS_RETURN_IF_ERROR(txn.ClearFailed(bucket, key));
    Result<bool> r = RecordThenRemove(bucket, key, st, RemovalCause::kErase, request_id, "",
                                      /*record_absent=*/true);
    if (!r.ok()) return r.status();
    removed = *r;
    if (removed) DS_RETURN_IF_ERROR(txn.RequeueShadowed(bucket, key, clock_.NowMillis()));
    return Status::Ok();
  });
  if (!s.ok()) {
    counters_.failed++;
    spdlog::error("erase: removal of {} failed: {} [{}]", Where(bucket, key), s.ToString(),
                  request_id);
    return s;
  }
  if (removed) {
    counters_.removed++;
    Removed(bucket, key, RemovalCause::kErase);
    spdlog::info("removed {} (erase) [{}]", Where(bucket, key), request_id);
  } else {
    counters_.absent++;
  }
  return removed;
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
