// SqliteState (src/state/sqlite_state.cc): key state, transactions, migration, state
// collection, the engine on the real store, and the journal modes (rollback mode for several
// hosts).
#include "state/sqlite_state.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "core/engine.h"
#include "fakes/fakes.h"
#include "sqlite_state_fixture.h"

namespace ds::sqlite_state_test {
namespace {

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

// A database made before leases (claims by pid only, no lease columns) is migrated at open: its
// claims are released, the columns added.
TEST_F(SqliteStateTest, DatabaseOfAnEarlierVersionIsMigrated) {
  std::filesystem::create_directories(dir_ + "/sub");
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &raw), SQLITE_OK);
  const char* old_schema =
      "CREATE TABLE keys (bucket TEXT NOT NULL, key BLOB NOT NULL, seq TEXT NOT NULL DEFAULT '', "
      "removal_gen INTEGER NOT NULL DEFAULT 0, fetch_ticket INTEGER NOT NULL DEFAULT 0, "
      "published_ticket INTEGER NOT NULL DEFAULT 0, tombstone INTEGER NOT NULL DEFAULT 0, "
      "present INTEGER NOT NULL DEFAULT 0, etag TEXT NOT NULL DEFAULT '', version_id TEXT NOT "
      "NULL DEFAULT '', size INTEGER NOT NULL DEFAULT -1, updated_ms INTEGER NOT NULL DEFAULT 0, "
      "PRIMARY KEY (bucket, key)) WITHOUT ROWID;"
      "CREATE TABLE jobs (id INTEGER PRIMARY KEY AUTOINCREMENT, bucket TEXT NOT NULL, key BLOB "
      "NOT NULL, seq TEXT NOT NULL DEFAULT '', ordered INTEGER NOT NULL DEFAULT 0, event_id TEXT "
      "NOT NULL DEFAULT '', reason TEXT NOT NULL DEFAULT '', attempts INTEGER NOT NULL DEFAULT "
      "0, not_before_ms INTEGER NOT NULL DEFAULT 0, last_error TEXT NOT NULL DEFAULT '', "
      "claimed_pid INTEGER, failed INTEGER NOT NULL DEFAULT 0);"
      "INSERT INTO keys (bucket, key, removal_gen, present) VALUES ('b', X'6B', 3, 1);"
      "INSERT INTO jobs (bucket, key, claimed_pid) VALUES ('b', X'6A', 1);";
  ASSERT_EQ(sqlite3_exec(raw, old_schema, nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(raw);
  auto db = OpenDb();
  ASSERT_NE(db, nullptr);
  Result<KeyState> k = db->Lookup("b", "k");
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(k->removal_gen, 3);
  EXPECT_EQ(k->unordered_removal_gen, 0);
  EXPECT_EQ(db->ClaimJobs(0, 10)->size(), 1u);  // pid 1 is alive, but its claim had no lease
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

// State collection (docs/SEMANTICS.md 3.6): only rows of keys without a copy whose state last
// changed before the cutoff, and with no job of any kind, are deleted.
TEST_F(SqliteStateTest, CollectionRemovesOnlyRowsWithoutACopyOrAJobPastTheHorizon) {
  auto db = OpenDb();
  ASSERT_TRUE(db);
  const int64_t cutoff = 1'000'000;
  auto put = [&](const std::string& key, bool present, bool tombstone, int64_t updated,
                 int64_t fetch_ticket = 0, int64_t published_ticket = 0) {
    KeyState st;
    st.present = present;
    st.tombstone = tombstone;
    st.removal_gen = tombstone ? 1 : 0;
    st.updated_ms = updated;
    st.fetch_ticket = fetch_ticket;
    st.published_ticket = published_ticket;
    st.seq = "00AB";
    ASSERT_TRUE(db->Transact([&](StateTxn& t) { return t.Put("b", key, st); }).ok());
  };
  put("tomb-old", false, true, cutoff - 1);
  put("absent-old", false, false, 0, /*fetch_ticket=*/3, /*published_ticket=*/1);
  put("tomb-young", false, true, cutoff);
  put("present-old", true, false, 5);
  put("tomb-with-job", false, true, 5);
  put("tomb-in-flight", false, true, 5, /*fetch_ticket=*/2, /*published_ticket=*/1);
  put("tomb-failed-job", false, true, 5);
  ASSERT_TRUE(db->Transact([&](StateTxn& t) -> Status {
                  DS_RETURN_IF_ERROR(t.Enqueue(Job("tomb-with-job")));
                  DS_RETURN_IF_ERROR(t.Enqueue(Job("tomb-in-flight")));
                  return t.Enqueue(Job("tomb-failed-job"));
                }).ok());
  // tomb-with-job waits; tomb-in-flight is claimed (its download runs); tomb-failed-job failed.
  Result<std::vector<FetchJob>> claimed = db->ClaimJobs(10, 3);
  ASSERT_TRUE(claimed.ok());
  ASSERT_EQ(claimed->size(), 3u);
  int64_t waiting_id = 0;
  for (const FetchJob& j : *claimed) {
    if (j.key == "tomb-with-job") {
      waiting_id = j.id;
      ASSERT_TRUE(db->RetryJob(j.id, 10, "later", 0).ok());
    } else if (j.key == "tomb-failed-job") {
      ASSERT_TRUE(db->FailJob(j.id, "403").ok());
    }
  }
  ASSERT_TRUE(db->IndexSubject("alice", "b", "tomb-old").ok());

  Result<CollectStats> got = db->CollectExpired(cutoff, 1000);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->keys, 2);
  // Every row put above has a sequencer; a collected key reads as never seen (none).
  auto has_row = [&](const std::string& key) {
    Result<KeyState> st = db->Lookup("b", key);
    EXPECT_TRUE(st.ok());
    return st.ok() && !st->seq.empty();
  };
  EXPECT_FALSE(has_row("tomb-old"));
  EXPECT_FALSE(has_row("absent-old"));
  for (const char* kept :
       {"tomb-young", "present-old", "tomb-with-job", "tomb-in-flight", "tomb-failed-job"}) {
    EXPECT_TRUE(has_row(kept)) << kept;
  }
  // The subject index is kept (erase --subject must still find the key's old versions).
  Result<std::vector<std::string>> subject = db->SubjectKeys("alice", "b");
  ASSERT_TRUE(subject.ok());
  EXPECT_EQ(*subject, std::vector<std::string>{"tomb-old"});
  // Nothing more to collect; once the waiting job is finished its key goes too.
  EXPECT_EQ(db->CollectExpired(cutoff, 1000)->keys, 0);
  ASSERT_TRUE(db->FinishJob(waiting_id).ok());
  EXPECT_EQ(db->CollectExpired(cutoff, 1000)->keys, 1);
  EXPECT_FALSE(has_row("tomb-with-job"));
}

TEST_F(SqliteStateTest, CollectionRunsInBoundedBatchesAndUsesItsIndex) {
  auto db = OpenDb();
  ASSERT_TRUE(db);
  ASSERT_TRUE(db->Transact([&](StateTxn& t) -> Status {
                  for (int i = 0; i < 2500; ++i) {
                    KeyState st;
                    st.tombstone = true;
                    st.removal_gen = 1;
                    st.updated_ms = 10 + i;
                    DS_RETURN_IF_ERROR(t.Put("b", "k" + std::to_string(i), st));
                  }
                  return Status::Ok();
                }).ok());
  Result<CollectStats> got = db->CollectExpired(100'000, 1000);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->keys, 2500);
  EXPECT_EQ(got->transactions, 3);  // 1000 + 1000 + 500
  // The candidates come from the partial index, not from a scan of every key.
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &raw), SQLITE_OK);
  sqlite3_stmt* q = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(raw,
                               "EXPLAIN QUERY PLAN SELECT k.bucket, k.key FROM keys AS k WHERE "
                               "k.present = 0 AND k.updated_ms < 5 AND NOT EXISTS (SELECT 1 FROM "
                               "jobs AS j WHERE j.bucket = k.bucket AND j.key = k.key) LIMIT 10",
                               -1, &q, nullptr),
            SQLITE_OK);
  std::string plan;
  while (sqlite3_step(q) == SQLITE_ROW) {
    plan += reinterpret_cast<const char*>(sqlite3_column_text(q, 3));
    plan += "\n";
  }
  sqlite3_finalize(q);
  sqlite3_close(raw);
  EXPECT_NE(plan.find("keys_absent_since"), std::string::npos) << plan;
  EXPECT_NE(plan.find("jobs_key"), std::string::npos) << plan;
}

// On the real store: a removal's tombstone is collected after the horizon, the key is then a
// new key, and a late creation older than the horizon (ordered, a lower sequencer than the
// collected tombstone's) is not published from a store that still serves the deleted object:
// the check against the bucket refuses it.
TEST_F(SqliteStateTest, EngineOnSqliteCollectsTombstonesAndALateOldCreationDoesNotResurrect) {
  auto db = OpenDb();
  ASSERT_TRUE(db);
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
  create.event_time = FormatUtcMillis(clock.NowMillis());
  Event remove = create;
  remove.action = EventAction::kRemove;
  remove.sequencer = "0B";
  EXPECT_EQ(engine.Apply(create).outcome, Outcome::kQueued);
  EXPECT_EQ(engine.DrainJobs(), 1u);
  ASSERT_TRUE(cache.Has("k"));
  // A replica in front of the store keeps serving the deleted object to GETs.
  store.stale_get["k"] = {"v", "etag-v", ""};
  store.Delete("b", "k");
  EXPECT_EQ(engine.Apply(remove).outcome, Outcome::kRemoved);
  EXPECT_EQ(engine.Apply(create).outcome, Outcome::kStale);  // the tombstone orders it

  clock.Advance(EngineOptions::kDefaultStateHorizonMs - 1000);
  EXPECT_EQ(engine.CollectState()->keys, 0);  // not yet
  clock.Advance(2000);
  EXPECT_EQ(engine.CollectState()->keys, 1);
  EXPECT_EQ(db->Lookup("b", "k")->seq, "");  // a key never seen

  // The same creation, redelivered 45 days late: nothing orders it any more.
  EXPECT_EQ(engine.Apply(create).outcome, Outcome::kQueued);
  EXPECT_EQ(engine.DrainJobs(), 1u);
  EXPECT_FALSE(cache.Has("k"));
  EXPECT_EQ(store.heads, 1);
  EXPECT_EQ(engine.counters().horizon_refused.load(), 1);
  EXPECT_EQ(engine.counters().published.load(), 1);  // only the first download

  // A key collected and then created again behaves as a new key: the refused download left a
  // tombstone without a sequencer; once it is collected too, a creation with a sequencer lower
  // than every one seen before is accepted and published.
  clock.Advance(EngineOptions::kDefaultStateHorizonMs + 1000);
  EXPECT_EQ(engine.CollectState()->keys, 1);
  store.stale_get.clear();
  store.Put("b", "k", "v2");
  Event again = create;
  again.sequencer = "01";
  again.event_time = FormatUtcMillis(clock.NowMillis());
  EXPECT_EQ(engine.Apply(again).outcome, Outcome::kQueued);
  EXPECT_EQ(engine.DrainJobs(), 1u);
  EXPECT_EQ(cache.Read("k"), "v2");
  EXPECT_EQ(store.heads, 1);  // a young event: no check
}

// Rollback-journal mode (a cache shared by several hosts over NFS/EFS): two connections on one
// file see each other's commits, and concurrent writers in separate processes neither lose an
// update nor corrupt the file.
TEST_F(SqliteStateTest, RollbackModeConnectionsSeeEachOthersCommits) {
  auto a = SqliteState::Open(path_, StateJournal::kRollback);
  auto b = SqliteState::Open(path_, StateJournal::kRollback);
  ASSERT_TRUE(a.ok() && b.ok()) << a.status().ToString() << b.status().ToString();
  KeyState st;
  st.seq = "0A";
  st.present = true;
  ASSERT_TRUE((*a)->Transact([&](StateTxn& t) { return t.Put("b", "k", st); }).ok());
  EXPECT_EQ((*b)->Lookup("b", "k")->seq, "0A");
  ASSERT_TRUE((*b)->Transact([&](StateTxn& t) { return t.Enqueue(Job("j")); }).ok());
  EXPECT_EQ((*a)->JobCounts()->first, 1);
  // No write-ahead log or shared-memory file: nothing that needs one host.
  EXPECT_FALSE(std::filesystem::exists(path_ + "-wal"));
  EXPECT_FALSE(std::filesystem::exists(path_ + "-shm"));
}

TEST_F(SqliteStateTest, RollbackModeConcurrentWritersInProcessesLoseNothing) {
  ASSERT_TRUE(SqliteState::Open(path_, StateJournal::kRollback).ok());
  constexpr int kProcs = 4, kTxns = 50;
  std::vector<pid_t> children;
  for (int p = 0; p < kProcs; ++p) {
    pid_t child = fork();
    if (child == 0) {
      auto db = SqliteState::Open(path_, StateJournal::kRollback);
      if (!db.ok()) _exit(2);
      for (int i = 0; i < kTxns; ++i) {
        // Read-modify-write of one shared key: a lost update would show in the final count.
        Status s = (*db)->Transact([&](StateTxn& t) -> Status {
          Result<KeyState> got = t.Get("b", "counter");
          if (!got.ok()) return got.status();
          KeyState st = *got;
          ++st.fetch_ticket;
          DS_RETURN_IF_ERROR(t.Put("b", "counter", st));
          return t.Enqueue(Job("p" + std::to_string(p) + "-" + std::to_string(i)));
        });
        if (!s.ok()) _exit(3);
      }
      _exit(0);
    }
    children.push_back(child);
  }
  for (pid_t c : children) {
    int status = 0;
    waitpid(c, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
  }
  auto db = SqliteState::Open(path_, StateJournal::kRollback);
  ASSERT_TRUE(db.ok());
  EXPECT_EQ((*db)->Lookup("b", "counter")->fetch_ticket, kProcs * kTxns);
  EXPECT_EQ((*db)->JobCounts()->first, kProcs * kTxns);
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open_v2(path_.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* q = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(raw, "PRAGMA integrity_check", -1, &q, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(q), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(q, 0)), "ok");
  sqlite3_finalize(q);
  ASSERT_EQ(sqlite3_prepare_v2(raw, "PRAGMA journal_mode", -1, &q, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(q), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(q, 0)), "delete");
  sqlite3_finalize(q);
  sqlite3_close(raw);
}

TEST_F(SqliteStateTest, JournalModeCannotSwitchUnderAnotherConnection) {
  auto wal = SqliteState::Open(path_, StateJournal::kWal);
  ASSERT_TRUE(wal.ok());
  auto rollback = SqliteState::Open(path_, StateJournal::kRollback);
  ASSERT_FALSE(rollback.ok());
  EXPECT_NE(rollback.status().message().find("journal mode"), std::string::npos)
      << rollback.status().ToString();
  wal->reset();
  EXPECT_TRUE(SqliteState::Open(path_, StateJournal::kRollback).ok());
}

TEST_F(SqliteStateTest, RollbackModeIsStickyForLaterOpeners) {
  ASSERT_TRUE(SqliteState::Open(path_, StateJournal::kRollback).ok());
  // An opener that asks for WAL (e.g. `status` with the default) must not switch the shared
  // database to WAL under the other hosts.
  auto db = SqliteState::Open(path_, StateJournal::kWal);
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  ASSERT_TRUE((*db)->Transact([&](StateTxn& t) { return t.Enqueue(Job("k")); }).ok());
  EXPECT_FALSE(std::filesystem::exists(path_ + "-wal"));
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open_v2(path_.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* q = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(raw, "PRAGMA journal_mode", -1, &q, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(q), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(q, 0)), "delete");
  sqlite3_finalize(q);
  sqlite3_close(raw);
}

TEST(StateJournalSetting, ParsesTheTwoModesOnly) {
  EXPECT_EQ(*ParseStateJournal("wal"), StateJournal::kWal);
  EXPECT_EQ(*ParseStateJournal("rollback"), StateJournal::kRollback);
  Result<StateJournal> bad = ParseStateJournal("WAL2");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("state-journal"), std::string::npos);
}

}  // namespace
}  // namespace ds::sqlite_state_test
