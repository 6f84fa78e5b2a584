// Two service processes' worth of threads on one cache folder and one state file (issue 8):
// each "worker" has its own SqliteState connection, PosixCache and Engine; one thread per
// worker applies events and one drains downloads, all at once, while the bucket changes. After
// the removal events are applied the deleted keys have no file; after a final reconcile the
// cache equals the bucket. Mostly a ThreadSanitizer target (build/tsan), also a property test.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <thread>
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

Event Ev(EventAction a, const std::string& key, int n) {
  Event e;
  e.action = a;
  e.name = a == EventAction::kCreate ? "ObjectCreated:Put" : "ObjectRemoved:Delete";
  e.source = "ceph:s3";
  e.bucket = "b";
  e.key = key;
  e.event_id = "e" + std::to_string(n);
  return e;
}

TEST(ModelConcurrency, TwoWorkersWithThreadsOnOneCacheConverge) {
  fs::path base = fs::exists("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
  fs::path dir = base / ("ds-model-conc-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "cache");
  fakes::FakeObjectStore store;
  fakes::FakeClock clock;  // not advanced concurrently: read-only while threads run
  store.Put("b", "init", "x");
  store.Delete("b", "init");

  struct Worker {
    std::unique_ptr<SqliteState> state;
    std::unique_ptr<PosixCache> cache;
    std::unique_ptr<Engine> engine;
  };
  std::vector<Worker> workers(2);
  for (Worker& w : workers) {
    auto st = SqliteState::Open((dir / "state.db").string());
    ASSERT_TRUE(st.ok()) << st.status().ToString();
    auto c = PosixCache::Open((dir / "cache").string());
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    w.state = std::move(st).value();
    w.cache = std::move(c).value();
    EngineOptions o;
    o.bucket = "b";
    w.engine = std::make_unique<Engine>(&store, *w.cache, *w.state, clock, o);
  }

  // The bucket's history, made up front: per key, puts and deletes; each worker gets the
  // events of every key, in its own shuffled order (both workers receive every event, as two
  // consumers of one at-least-once stream would).
  const std::vector<std::string> keys = {"k0", "k1", "d/k2", "d/e/k3"};
  std::mt19937 rng(4242);
  std::vector<std::vector<std::pair<Event, std::function<void()>>>> plan(2);
  int n = 0;
  std::map<std::string, std::string> final_state;
  for (int round = 0; round < 40; ++round) {
    const std::string& key = keys[rng() % keys.size()];
    bool put = rng() % 3 != 0;
    std::string body = key + "#" + std::to_string(n);
    std::function<void()> change;
    if (put) {
      change = [&store, key, body] { store.Put("b", key, body); };
      final_state[key] = body;
    } else {
      change = [&store, key] { store.Delete("b", key); };
      final_state.erase(key);
    }
    Event ev = Ev(put ? EventAction::kCreate : EventAction::kRemove, key, n++);
    for (auto& p : plan) p.push_back({ev, change});
  }
  // The bucket changes in history order, driven by worker 0's applier before it applies each
  // event; worker 1 applies the same events shuffled.
  std::shuffle(plan[1].begin(), plan[1].end(), rng);

  std::atomic<bool> appliers_done{false};
  std::atomic<int> failed{0};
  std::vector<std::thread> threads;
  threads.emplace_back([&] {
    for (auto& [ev, change] : plan[0]) {
      change();
      if (workers[0].engine->Apply(ev).outcome == Outcome::kFailed) ++failed;
    }
  });
  threads.emplace_back([&] {
    for (auto& [ev, change] : plan[1]) {
      if (workers[1].engine->Apply(ev).outcome == Outcome::kFailed) ++failed;
    }
  });
  for (int w = 0; w < 2; ++w) {
    threads.emplace_back([&, w] {
      while (!appliers_done) workers[static_cast<size_t>(w)].engine->DrainJobs(4);
    });
  }
  threads[0].join();
  threads[1].join();
  appliers_done = true;
  threads[2].join();
  threads[3].join();
  EXPECT_EQ(failed.load(), 0);
  for (Worker& w : workers) w.engine->DrainJobs();

  // Every removal event was applied after its deletion: a key absent from the bucket has no
  // file, even before any reconcile.
  std::map<std::string, std::string> tree = testfiles::CacheTree(dir / "cache");
  for (const auto& [path, body] : tree) {
    EXPECT_TRUE(final_state.count(path)) << path << " holds " << body << " but was deleted";
  }
  clock.Advance(1000);
  Reconciler rec(store, *workers[0].cache, *workers[0].state, *workers[0].engine, clock);
  ReconcileOptions ro;
  ro.bucket = "b";
  ReconcileReport rep;
  ASSERT_TRUE(rec.Run(ro, &rep).ok());
  for (Worker& w : workers) w.engine->DrainJobs();
  EXPECT_EQ(testfiles::CacheTree(dir / "cache"), final_state);
  workers.clear();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace ds
