// The Engine (engine.h): construction, applying events (screening, the group commit of
// removals and creations), the subject index and state collection. The removal paths and their
// audit are in engine_removals.cc, downloads in engine_jobs.cc.
#include "core/engine.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <memory>

#include "common/crash_point.h"
#include "core/engine_internal.h"
#include "core/ops_metrics.h"  // ParseEventTimeMillis

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
    spdlog::debug("ignored {} for {}", ev.name, engine_internal::Where(ev.bucket, ev.key));
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
      if (engine_internal::IsStale(ev.sequencer, ev.ordered, *st, /*is_create=*/false)) continue;
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
      spdlog::error("removal of {} failed after its audit record: {}",
                    engine_internal::Where(u.bucket, u.key), removed.status().ToString());
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
        spdlog::error("removal of {} failed: {} [{}]", engine_internal::Where(ev.bucket, ev.key),
                      result.status.ToString(), ev.event_id);
      } else {
        spdlog::error("journaling creation of {} failed: {}",
                      engine_internal::Where(ev.bucket, ev.key), result.status.ToString());
      }
      continue;
    }
    switch (result.outcome) {
      case Outcome::kRemoved:
        counters_.removed++;
        Removed(ev.bucket, ev.key, RemovalCause::kEvent);
        spdlog::info("removed {} ({}) [{}]", engine_internal::Where(ev.bucket, ev.key), ev.name,
                     ev.event_id);
        break;
      case Outcome::kAbsent:
        counters_.absent++;
        spdlog::info("removal of {} ({}): no cached copy [{}]",
                     engine_internal::Where(ev.bucket, ev.key), ev.name, ev.event_id);
        break;
      case Outcome::kStale:
        counters_.stale++;
        spdlog::info("stale {} of {}: {}",
                     ev.action == EventAction::kRemove ? "removal" : "creation",
                     engine_internal::Where(ev.bucket, ev.key), result.message);
        break;
      case Outcome::kOtherVersion:
        counters_.other_version++;
        spdlog::info("removal of {}: {}; cache left alone",
                     engine_internal::Where(ev.bucket, ev.key), result.message);
        break;
      case Outcome::kQueued:
        counters_.queued++;
        IndexSubjects(ev.bucket, ev.key, ev.metadata);
        IndexSubjects(ev.bucket, ev.key, ev.tags);
        spdlog::debug("queued download of {} ({}) [{}]", engine_internal::Where(ev.bucket, ev.key),
                      ev.name, ev.event_id);
        break;
      default:
        break;
    }
  }
}

Status Engine::StageRemove(StateTxn& txn, const Event& ev, ApplyResult& result,
                           GroupRemovals& group) {
  Result<KeyState> got = txn.Get(ev.bucket, ev.key);
  if (!got.ok()) return got.status();
  KeyState st = *got;
  const std::string id = ev.bucket + '\0' + ev.key;
  group.before.emplace(id, st);  // the first event of the key in the group sees the old state
  if (engine_internal::IsStale(ev.sequencer, ev.ordered, st, /*is_create=*/false)) {
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
  engine_internal::MarkRemoved(st, clock_.NowMillis(), ev.ordered && !ev.sequencer.empty());
  engine_internal::RaiseSeq(st, ev.sequencer, ev.ordered);
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
  if (engine_internal::IsStale(ev.sequencer, ev.ordered, *got, /*is_create=*/true)) {
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
      spdlog::error("cannot index the data subject of {}: {}", engine_internal::Where(bucket, key),
                    s.ToString());
    }
  }
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

}  // namespace ds
