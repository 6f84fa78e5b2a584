// Model-based schedule testing (issue 8): random histories over a small key space, driving the
// real Engine and Reconciler with the real SqliteState and PosixCache on a temp folder, and a
// fake object store and clock. A reference model of the bucket (every version ever written)
// says what the cache may hold after each step:
//   A. never a partial file: every file is byte-for-byte some body written to its key;
//   B. never a copy of a version that a removal took out of the bucket (deleted, hidden by a
//      delete marker, or permanently deleted) once the event of that removal has been applied
//      or a reconcile pass has run after it;
//   C. before any final reconcile: once every event still pending has been delivered and the
//      downloads have run, every key none of whose events was dropped is exactly as in the
//      bucket (a final reconcile would hide a lost creation: issue 16);
//   D. after the final reconcile (and its downloads), cache == bucket exactly, and no temp file.
// The schedule reorders, duplicates and drops events, interleaves bucket changes, deliveries
// and reconcile passes *inside* a download (between the GET and the publication), injects
// transient store failures, and crashes the service at any step (engine, state and cache
// dropped, reopened from the state file and the cache folder; a download in flight, a temp file
// left behind, a file renamed into place whose state commit never happened).
//
// Each history is a pure function of its seed. On failure the seed and the step trace are
// printed; replay with
//   DS_MODEL_SEED=<seed> DS_MODEL_HISTORIES=1 unit_tests --gtest_filter='ModelHistory*'
// A long campaign: DS_MODEL_HISTORIES=20000 (and any DS_MODEL_SEED as the first seed).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/engine.h"
#include "core/reconcile.h"
#include "fakes/fakes.h"
#include "fakes/test_files.h"
#include "fs/posix_cache.h"
#include "state/sqlite_state.h"

namespace ds {
namespace {

namespace fs = std::filesystem;
using fakes::FakeClock;
using fakes::FakeObjectStore;

constexpr char kBucket[] = "mb";

// Thrown from inside a GET to model the process dying mid-download (after the body was
// written to the temp file, before the publication transaction). No lock or transaction is
// held by the engine while it waits for the store, so unwinding is what a kill would leave,
// minus the temp file (which the crash step leaves separately).
struct CrashInjected {};

enum class SourceKind { kAws, kRgw, kMinio };
const char* KindName(SourceKind k) {
  switch (k) {
    case SourceKind::kAws:
      return "aws";
    case SourceKind::kRgw:
      return "rgw";
    case SourceKind::kMinio:
      return "minio";
  }
  return "?";
}

uint64_t EnvU64(const char* name, uint64_t def) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return def;
  return std::strtoull(v, nullptr, 10);
}

// A CacheFs wrapper that can make the next publication "crash" after its rename: the file is in
// place, then Publish fails, so the publication transaction rolls back, and the history crashes
// the service right after the step, as a kill between the rename and the state commit would.
class CrashyCache : public CacheFs {
 public:
  explicit CrashyCache(std::unique_ptr<PosixCache> inner) : inner_(std::move(inner)) {}
  bool crash_after_next_rename = false;
  bool crashed = false;

  Result<std::unique_ptr<TempFile>> CreateTemp() override {
    Result<std::unique_ptr<TempFile>> t = inner_->CreateTemp();
    if (!t.ok()) return t.status();
    return std::unique_ptr<TempFile>(std::make_unique<Temp>(this, std::move(t).value()));
  }
  Result<bool> Remove(const std::string& p) override { return inner_->Remove(p); }
  Result<CacheEntryInfo> Stat(const std::string& p) override { return inner_->Stat(p); }
  Result<size_t> CleanTemp() override { return inner_->CleanTemp(); }
  Status Walk(const std::string& prefix, const CacheWalkVisitor& visit) const override {
    return inner_->Walk(prefix, visit);
  }

 private:
  class Temp : public TempFile {
   public:
    Temp(CrashyCache* owner, std::unique_ptr<TempFile> t) : owner_(owner), t_(std::move(t)) {}
    Status Write(const char* d, size_t n) override { return t_->Write(d, n); }
    Status Sync() override { return t_->Sync(); }
    Status Publish(const std::string& rel) override {
      Status s = t_->Publish(rel);
      if (s.ok() && owner_->crash_after_next_rename) {
        owner_->crash_after_next_rename = false;
        owner_->crashed = true;
        return Status::Io("injected crash after rename, before the state commit");
      }
      return s;
    }
    uint64_t bytes_written() const override { return t_->bytes_written(); }

   private:
    CrashyCache* owner_;
    std::unique_ptr<TempFile> t_;
  };
  std::unique_ptr<PosixCache> inner_;
};

// One service process: its state connection, its view of the cache folder, its engine.
struct Worker {
  std::unique_ptr<SqliteState> state;
  std::unique_ptr<CrashyCache> cache;
  std::unique_ptr<Engine> engine;
  std::unique_ptr<Reconciler> reconciler;
};

// The model of one version of one key.
struct Version {
  std::string vid;   // "" in an unversioned bucket
  std::string body;  // "" for a delete marker
  bool marker = false;
  bool gone = false;          // permanently deleted (DeleteObject with versionId)
  int64_t killed_by = -1;     // the newest removal event that took it out of the bucket
  bool kill_applied = false;  // that event was applied, or a reconcile ran after it
};

struct KeyModel {
  std::vector<Version> versions;  // oldest first
  // The current object: the newest version that is not gone, if it is not a marker.
  const Version* Current() const {
    for (auto it = versions.rbegin(); it != versions.rend(); ++it) {
      if (it->gone) continue;
      return it->marker ? nullptr : &*it;
    }
    return nullptr;
  }
};

struct PendingEvent {
  int64_t id;
  Event ev;
  std::vector<std::pair<std::string, std::string>> kills;  // (key, body) taken out by it
};

class History {
 public:
  History(uint64_t seed, int workers, fs::path dir)
      : seed_(seed), rng_(seed), workers_n_(workers), dir_(std::move(dir)) {
    kind_ = static_cast<SourceKind>(seed % 3);
    versioned_ = (seed / 3) % 2 == 1;
  }

  // Runs the history; returns "" or the first violation.
  std::string Run() {
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "cache");
    for (int i = 0; i < workers_n_; ++i) {
      workers_.emplace_back();
      if (std::string e = Open(workers_.back()); !e.empty()) return e;
    }
    store_.Put(kBucket, "init", "x");  // the bucket exists, empty
    store_.Delete(kBucket, "init");
    store_.after_get = [this](const std::string& key) { DuringGet(key); };
    const int steps = 30 + static_cast<int>(rng_() % 50);
    for (int i = 0; i < steps && failure_.empty(); ++i) {
      clock_.Advance(1 + static_cast<int64_t>(rng_() % 200));
      Step();
      if (failure_.empty()) Check("after step " + std::to_string(i));
    }
    if (failure_.empty()) Final();
    store_.after_get = nullptr;
    workers_.clear();
    return failure_;
  }

  std::string Describe() const {
    std::ostringstream o;
    o << "seed " << seed_ << " (" << KindName(kind_) << (versioned_ ? ", versioned" : "") << ", "
      << workers_n_ << " worker(s)); replay: DS_MODEL_SEED=" << seed_ << " DS_MODEL_HISTORIES=1\n";
    size_t from = trace_.size() > 150 ? trace_.size() - 150 : 0;
    for (size_t i = from; i < trace_.size(); ++i) o << "  " << trace_[i] << "\n";
    return o.str();
  }

 private:
  const std::vector<std::string> kKeys = {"k0", "k1", "d/k2", "d/e/k3"};

  std::string Open(Worker& w) {
    Result<std::unique_ptr<SqliteState>> st = SqliteState::Open((dir_ / "state.db").string());
    if (!st.ok()) return "open state: " + st.status().ToString();
    PosixCacheOptions co;
    co.stale_temp_age = std::chrono::seconds(0);
    Result<std::unique_ptr<PosixCache>> c = PosixCache::Open((dir_ / "cache").string(), co);
    if (!c.ok()) return "open cache: " + c.status().ToString();
    w.state = std::move(st).value();
    w.cache = std::make_unique<CrashyCache>(std::move(c).value());
    EngineOptions o;
    o.bucket = kBucket;
    o.retry_base_ms = 10;
    o.retry_max_ms = 200;
    o.max_fetch_attempts = 1000;
    w.engine = std::make_unique<Engine>(&store_, *w.cache, *w.state, clock_, o);
    w.reconciler = std::make_unique<Reconciler>(store_, *w.cache, *w.state, *w.engine, clock_);
    return "";
  }

  // The service dies and restarts: everything in memory is dropped; maybe a temp file of a
  // download in flight is left behind; the new process cleans temps at start.
  void Crash(int w, const std::string& why) {
    trace_.push_back("crash worker " + std::to_string(w) + " (" + why + ")");
    Worker& wk = workers_[w];
    wk.reconciler.reset();
    wk.engine.reset();
    wk.cache.reset();
    wk.state.reset();
    if (rng_() % 2 == 0) {
      std::ofstream leftover(
          dir_ / "cache" / ".delete-sync" / "tmp" / ("dl-crash-" + std::to_string(seed_)),
          std::ios::binary);
      leftover << "partial";
      leftover.close();
      // Older than the cache's stale-temp age (0 s here): what a dead process leaves.
      fs::last_write_time(
          dir_ / "cache" / ".delete-sync" / "tmp" / ("dl-crash-" + std::to_string(seed_)),
          fs::file_time_type::clock::now() - std::chrono::seconds(10));
    }
    if (std::string e = Open(wk); !e.empty()) {
      Fail(e);
      return;
    }
    Result<size_t> cleaned = wk.cache->CleanTemp();
    if (!cleaned.ok()) Fail("CleanTemp after restart: " + cleaned.status().ToString());
  }

  void Fail(const std::string& what) {
    if (failure_.empty()) failure_ = what;
  }

  std::string NextSeq(const std::string& key) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%016llX", static_cast<unsigned long long>(++seq_[key]));
    return buf;
  }

  Event MakeEvent(EventAction action, const std::string& name, const std::string& key) {
    Event e;
    e.action = action;
    e.name = name;
    e.bucket = kBucket;
    e.key = key;
    e.event_id = "e" + std::to_string(next_event_);
    switch (kind_) {
      case SourceKind::kAws:
        e.source = "aws:s3";
        e.sequencer = NextSeq(key);
        e.ordered = true;
        break;
      case SourceKind::kRgw:
        e.source = "ceph:s3";
        e.ordered = false;
        break;
      case SourceKind::kMinio: {
        e.source = "minio:s3";
        // MinIO sends a node's clock: not an order. Make it deliberately non-monotonic.
        char buf[32];
        std::snprintf(buf, sizeof buf, "%016llX",
                      static_cast<unsigned long long>(clock_.now_ + (rng_() % 1000)));
        e.sequencer = buf;
        e.ordered = false;
        break;
      }
    }
    return e;
  }

  void Emit(Event ev, std::vector<std::pair<std::string, std::string>> kills) {
    int64_t id = next_event_++;
    for (const auto& [k, body] : kills) {
      for (Version& v : model_[k].versions) {
        if (!v.marker && v.body == body) {
          v.killed_by = id;
          v.kill_applied = false;
        }
      }
    }
    pending_.push_back({id, std::move(ev), std::move(kills)});
  }

  void SyncStore(const std::string& key) {
    const Version* cur = model_[key].Current();
    if (cur) {
      store_.Put(kBucket, key, cur->body, cur->vid);
    } else {
      store_.Delete(kBucket, key);
    }
  }

  // Marks a version current again (an undelete): it may be cached again.
  void Revive(const std::string& key) {
    Version* cur = const_cast<Version*>(model_[key].Current());
    if (cur) {
      cur->killed_by = -1;
      cur->kill_applied = false;
    }
  }

  // One change to the bucket, and the event it produces (queued for delivery).
  void BucketOp() {
    const std::string key = kKeys[rng_() % kKeys.size()];
    KeyModel& km = model_[key];
    const Version* cur = km.Current();
    int op = static_cast<int>(rng_() % 10);
    if (op < 5 || (!cur && op < 8)) {  // put new content
      Version v;
      v.body = key + "#" + std::to_string(next_body_++) + std::string(rng_() % 3000, 'x');
      v.vid = versioned_ ? "v" + std::to_string(next_body_) : "";
      if (!versioned_) {
        for (Version& old : km.versions) old.gone = true;
      }
      km.versions.push_back(v);
      SyncStore(key);
      Event e = MakeEvent(EventAction::kCreate, "ObjectCreated:Put", key);
      e.version_id = versioned_ ? std::optional<std::string>(v.vid) : std::nullopt;
      e.size = v.body.size();
      trace_.push_back("bucket: put " + key + " " + v.body.substr(0, v.body.find('x')) + " " +
                       e.event_id);
      Emit(std::move(e), {});
      return;
    }
    std::vector<std::pair<std::string, std::string>> kills;
    if (!versioned_) {  // plain delete
      if (!cur) return;
      for (const Version& v : km.versions) kills.push_back({key, v.body});
      for (Version& v : km.versions) v.gone = true;
      SyncStore(key);
      Event e = MakeEvent(EventAction::kRemove, "ObjectRemoved:Delete", key);
      trace_.push_back("bucket: delete " + key + " " + e.event_id);
      Emit(std::move(e), kills);
      return;
    }
    if (op < 8 && cur) {  // delete marker: hides every version
      for (const Version& v : km.versions) {
        if (!v.marker && !v.gone) kills.push_back({key, v.body});
      }
      Version m;
      m.marker = true;
      m.vid = "m" + std::to_string(next_body_++);
      km.versions.push_back(m);
      SyncStore(key);
      Event e = MakeEvent(EventAction::kRemove, "ObjectRemoved:DeleteMarkerCreated", key);
      e.delete_marker = true;
      e.version_id = m.vid;
      trace_.push_back("bucket: delete marker " + key + " " + m.vid + " " + e.event_id);
      Emit(std::move(e), kills);
      return;
    }
    // Permanent deletion of one version (maybe a marker: an undelete).
    std::vector<size_t> live;
    for (size_t i = 0; i < km.versions.size(); ++i) {
      if (!km.versions[i].gone) live.push_back(i);
    }
    if (live.empty()) return;
    Version& v = km.versions[live[rng_() % live.size()]];
    v.gone = true;
    if (!v.marker) kills.push_back({key, v.body});
    SyncStore(key);
    Revive(key);
    Event e = MakeEvent(EventAction::kRemove, "ObjectRemoved:Delete", key);
    e.version_id = v.vid;
    trace_.push_back("bucket: delete version " + key + " " + v.vid + " " + e.event_id);
    Emit(std::move(e), kills);
  }

  int PickWorker() { return static_cast<int>(rng_() % workers_.size()); }

  // Delivers (or duplicates, or drops) one pending event.
  void Deliver() {
    if (pending_.empty()) return;
    // Mostly near the front (roughly in order), sometimes anywhere (reordered).
    size_t i =
        rng_() % 4 == 0 ? rng_() % pending_.size() : rng_() % std::min<size_t>(pending_.size(), 2);
    PendingEvent pe = pending_[i];
    int r = static_cast<int>(rng_() % 20);
    if (r == 0) {
      trace_.push_back("drop " + pe.ev.event_id);
      lossy_keys_.insert(pe.ev.key);
      pending_.erase(pending_.begin() + static_cast<long>(i));
      return;
    }
    bool keep = r <= 3;  // delivered again later (at-least-once)
    int w = PickWorker();
    ApplyResult res = workers_[w].engine->Apply(pe.ev);
    trace_.push_back("worker " + std::to_string(w) + " apply " + pe.ev.event_id + " " + pe.ev.name +
                     " " + pe.ev.key + " -> " + OutcomeName(res.outcome) +
                     (res.message.empty() ? "" : " (" + res.message + ")"));
    if (res.outcome == Outcome::kFailed) return;  // not acknowledged: stays pending
    if (!keep) {
      for (auto it = pending_.begin(); it != pending_.end(); ++it) {
        if (it->id == pe.id) {
          pending_.erase(it);
          break;
        }
      }
    }
    for (const auto& [k, body] : pe.kills) {
      for (Version& v : model_[k].versions) {
        if (!v.marker && v.body == body && v.killed_by == pe.id) v.kill_applied = true;
      }
    }
  }

  // Runs one due job on one worker (a download, possibly with something happening in the
  // middle of its GET, possibly crashing).
  void RunOneJob() {
    int w = PickWorker();
    Worker& wk = workers_[w];
    if (rng_() % 8 == 0) {
      store_.fail_with = Status::Unavailable("injected: store unavailable");
      store_.fail_times = 1;
    }
    if (rng_() % 12 == 0) wk.cache->crash_after_next_rename = true;
    crash_in_get_ = rng_() % 12 == 0;
    running_worker_ = w;
    size_t ran = 0;
    try {
      ran = wk.engine->DrainJobs(1);
    } catch (const CrashInjected&) {
      crash_in_get_ = false;
      store_.fail_times = 0;
      wk.cache->crash_after_next_rename = false;
      trace_.push_back("worker " + std::to_string(w) + " job: crashed after the GET");
      Crash(w, "mid-download");
      return;
    }
    crash_in_get_ = false;
    store_.fail_times = 0;
    wk.cache->crash_after_next_rename = false;
    trace_.push_back("worker " + std::to_string(w) + " ran " + std::to_string(ran) + " job(s)");
    if (wk.cache->crashed) {
      wk.cache->crashed = false;
      Crash(w, "after rename, before state commit");
    }
  }

  void DuringGet(const std::string& key) {
    if (crash_in_get_) {
      crash_in_get_ = false;
      throw CrashInjected{};
    }
    if (in_get_ || rng_() % 3 != 0) return;
    in_get_ = true;
    trace_.push_back("  [during GET of " + key + "]");
    int n = 1 + static_cast<int>(rng_() % 3);
    for (int i = 0; i < n; ++i) {
      int r = static_cast<int>(rng_() % 10);
      if (r < 4) {
        BucketOp();
      } else if (r < 9) {
        Deliver();
      } else {
        Reconcile(false);
      }
    }
    trace_.push_back("  [GET of " + key + " returns]");
    in_get_ = false;
  }

  // One reconcile pass. When it succeeds, removals that happened before it count as applied
  // for keys now absent from the bucket.
  void Reconcile(bool drain) {
    int w = PickWorker();
    clock_.Advance(1);
    ReconcileOptions ro;
    ro.bucket = kBucket;
    ro.concurrency = 1;
    ro.request_id = "reconcile";
    const int64_t before = next_event_;  // removals emitted before the pass started
    ReconcileReport rep;
    Status s = workers_[w].reconciler->Run(ro, &rep);
    trace_.push_back("worker " + std::to_string(w) +
                     " reconcile: " + (s.ok() ? "ok" : s.ToString()) + " removed " +
                     std::to_string(rep.removed) + " queued " + std::to_string(rep.queued));
    // A pass does not cancel a download already in flight (it sees neither the object nor a
    // file): a pass nested in a GET proves nothing about that key until the download ends.
    if (!s.ok() || in_get_) return;
    // The listing showed every bucket change so far: events dropped before it no longer matter.
    lossy_keys_.clear();
    for (auto& [key, km] : model_) {
      if (km.Current() != nullptr) continue;
      for (Version& v : km.versions) {
        if (v.killed_by >= 0 && v.killed_by < before) v.kill_applied = true;
      }
    }
    if (drain && DrainAll()) {
      for (auto& [key, km] : model_) {
        for (Version& v : km.versions) {
          if (v.killed_by >= 0 && v.killed_by < before) v.kill_applied = true;
        }
      }
    }
  }

  // Runs jobs until none is left waiting (retries included). True when the journal is empty.
  bool DrainAll() {
    for (int round = 0; round < 200; ++round) {
      for (Worker& wk : workers_) wk.engine->DrainJobs();
      Result<std::pair<int64_t, int64_t>> counts = workers_[0].state->JobCounts();
      if (!counts.ok()) {
        Fail("JobCounts: " + counts.status().ToString());
        return false;
      }
      if (counts->first == 0) return true;
      clock_.Advance(250);
    }
    Fail("jobs still waiting after 200 drain rounds");
    return false;
  }

  void Step() {
    int r = static_cast<int>(rng_() % 100);
    if (r < 30) {
      BucketOp();
    } else if (r < 65) {
      Deliver();
    } else if (r < 88) {
      RunOneJob();
    } else if (r < 94) {
      Crash(PickWorker(), "between steps");
    } else {
      Reconcile(rng_() % 2 == 0);
    }
  }

  std::map<std::string, std::string> CacheFiles() {
    return testfiles::CacheTree((dir_ / "cache").string());
  }

  void Check(const std::string& when) {
    for (const auto& [path, body] : CacheFiles()) {
      auto km = model_.find(path);
      const Version* match = nullptr;
      if (km != model_.end()) {
        for (const Version& v : km->second.versions) {
          if (!v.marker && v.body == body) match = &v;
        }
      }
      if (match == nullptr) {
        Fail(when + ": cache file '" + path + "' is not a complete body of its key (" +
             std::to_string(body.size()) + " bytes: " + body.substr(0, 24) + ")");
        return;
      }
      if (match->killed_by >= 0 && match->kill_applied && km->second.Current() != match) {
        Fail(when + ": cache file '" + path + "' holds " + body.substr(0, body.find('x')) +
             ", taken out of the bucket by event e" + std::to_string(match->killed_by) +
             ", which was applied (or a reconcile ran since)");
        return;
      }
    }
  }

  void Final() {
    trace_.push_back("final: restart every worker, reconcile, drain");
    store_.after_get = nullptr;  // the bucket no longer changes
    for (int w = 0; w < workers_n_ && failure_.empty(); ++w) Crash(w, "final restart");
    if (!failure_.empty()) return;
    // C: every pending event delivered (in order, once), the downloads run, no reconcile.
    trace_.push_back("final: deliver every pending event, drain");
    while (!pending_.empty() && failure_.empty()) {
      PendingEvent pe = pending_.front();
      ApplyResult res = workers_[0].engine->Apply(pe.ev);
      trace_.push_back("worker 0 apply " + pe.ev.event_id + " " + pe.ev.name + " " + pe.ev.key +
                       " -> " + OutcomeName(res.outcome));
      if (res.outcome == Outcome::kFailed) {
        Fail("the final delivery of " + pe.ev.event_id + " failed: " + res.message);
        return;
      }
      pending_.erase(pending_.begin());
    }
    if (!DrainAll()) return;
    {
      std::map<std::string, std::string> got = CacheFiles();
      std::ostringstream o;
      for (const auto& [key, km] : model_) {
        if (lossy_keys_.count(key)) continue;
        const Version* v = km.Current();
        auto g = got.find(key);
        if (v != nullptr && (g == got.end() || g->second != v->body)) {
          o << " " << key << " should hold " << v->body.substr(0, v->body.find('x')) << " but "
            << (g == got.end() ? std::string("is missing")
                               : "holds " + g->second.substr(0, g->second.find('x')))
            << ";";
        } else if (v == nullptr && g != got.end()) {
          o << " " << key << " is deleted in the bucket but cached;";
        }
      }
      if (!o.str().empty()) {
        Fail("every event delivered, before any final reconcile, the cache differs:" + o.str());
        return;
      }
    }
    Reconcile(true);
    if (!failure_.empty()) return;
    Check("after the final reconcile");
    if (!failure_.empty()) return;
    std::map<std::string, std::string> want;
    for (const auto& [key, km] : model_) {
      if (const Version* v = km.Current()) want[key] = v->body;
    }
    std::map<std::string, std::string> got = CacheFiles();
    if (got != want) {
      std::ostringstream o;
      o << "after the final reconcile the cache differs from the bucket:";
      for (const auto& [k, b] : want) {
        auto g = got.find(k);
        if (g == got.end()) {
          o << " missing " << k << ";";
        } else if (g->second != b) {
          o << " wrong " << k << " (" << g->second.substr(0, g->second.find('x')) << " instead of "
            << b.substr(0, b.find('x')) << ");";
        }
      }
      for (const auto& [k, b] : got) {
        if (!want.count(k)) o << " extra " << k << " (" << b.substr(0, b.find('x')) << ");";
      }
      Fail(o.str());
      return;
    }
    size_t temps = 0;
    for (const auto& e : fs::directory_iterator(dir_ / "cache" / kReservedDir / "tmp")) {
      (void)e;
      ++temps;
    }
    if (temps != 0) Fail("temp files left after the final pass: " + std::to_string(temps));
  }

  uint64_t seed_;
  std::mt19937_64 rng_;
  int workers_n_;
  fs::path dir_;
  SourceKind kind_;
  bool versioned_;
  FakeObjectStore store_;
  FakeClock clock_;
  std::vector<Worker> workers_;
  std::map<std::string, KeyModel> model_;
  std::map<std::string, uint64_t> seq_;
  std::vector<PendingEvent> pending_;
  std::set<std::string> lossy_keys_;  // keys with a dropped event: only reconcile heals them
  std::vector<std::string> trace_;
  std::string failure_;
  int64_t next_event_ = 1;
  int64_t next_body_ = 1;
  bool in_get_ = false;
  bool crash_in_get_ = false;
  int running_worker_ = 0;
};

fs::path ScratchDir(const std::string& name) {
  // tmpfs when there is one: the state store fsyncs on every acknowledged event.
  fs::path base = fs::exists("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
  return base / ("ds-model-" + std::to_string(::getpid()) + "-" + name);
}

void RunHistories(int workers, uint64_t default_count, const std::string& name) {
  const uint64_t first = EnvU64("DS_MODEL_SEED", workers == 1 ? 1000 : 5000);
  const uint64_t count = EnvU64("DS_MODEL_HISTORIES", default_count);
  fs::path dir = ScratchDir(name);
  for (uint64_t seed = first; seed < first + count; ++seed) {
    History h(seed, workers, dir);
    std::string failure = h.Run();
    if (!failure.empty()) {
      ADD_FAILURE() << failure << "\n" << h.Describe();
      break;
    }
  }
  fs::remove_all(dir);
}

TEST(ModelHistory, OneWorkerEverySourceKindNeverResurrectsAndConverges) {
  RunHistories(1, 60, "one");
}

TEST(ModelHistory, TwoWorkersSharingCacheAndStateNeverResurrectAndConverge) {
  RunHistories(2, 30, "two");
}

}  // namespace
}  // namespace ds
