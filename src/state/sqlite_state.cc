// SqliteState (sqlite_state.h): opening the database (schema, migration, journal mode, release
// of dead claims), the lock wait, errors and integrity, transactions and the keys table, the
// subject index, state collection and the meta table. The job queue is in sqlite_jobs.cc.
#include "state/sqlite_state.h"

#include <spdlog/spdlog.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>
#include <thread>

#include "fs/posix_cache.h"
#include "state/sqlite_internal.h"

namespace ds {
namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS keys (
  bucket TEXT NOT NULL,
  key BLOB NOT NULL,
  seq TEXT NOT NULL DEFAULT '',
  removal_gen INTEGER NOT NULL DEFAULT 0,
  fetch_ticket INTEGER NOT NULL DEFAULT 0,
  published_ticket INTEGER NOT NULL DEFAULT 0,
  tombstone INTEGER NOT NULL DEFAULT 0,
  present INTEGER NOT NULL DEFAULT 0,
  etag TEXT NOT NULL DEFAULT '',
  version_id TEXT NOT NULL DEFAULT '',
  size INTEGER NOT NULL DEFAULT -1,
  updated_ms INTEGER NOT NULL DEFAULT 0,
  unordered_removal_gen INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (bucket, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS jobs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  bucket TEXT NOT NULL,
  key BLOB NOT NULL,
  seq TEXT NOT NULL DEFAULT '',
  ordered INTEGER NOT NULL DEFAULT 0,
  event_id TEXT NOT NULL DEFAULT '',
  reason TEXT NOT NULL DEFAULT '',
  attempts INTEGER NOT NULL DEFAULT 0,
  not_before_ms INTEGER NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL DEFAULT '',
  claimed_pid INTEGER,
  failed INTEGER NOT NULL DEFAULT 0,
  claim_owner TEXT NOT NULL DEFAULT '',
  lease_until_ms INTEGER,
  first_error_ms INTEGER NOT NULL DEFAULT 0,
  event_ms INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_due ON jobs (failed, claimed_pid, not_before_ms);
CREATE INDEX IF NOT EXISTS jobs_key ON jobs (bucket, key);
CREATE TABLE IF NOT EXISTS subjects (
  subject TEXT NOT NULL,
  bucket TEXT NOT NULL,
  key BLOB NOT NULL,
  PRIMARY KEY (subject, bucket, key)
);
CREATE INDEX IF NOT EXISTS subjects_by_key ON subjects (bucket, key);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT OR IGNORE INTO meta (name, value) VALUES ('schema_version', '1');
)sql";

}  // namespace

namespace sqlite_internal {

// The keys statements of SqliteTxn (its jobs statements are in sqlite_jobs.cc).

Result<KeyState> SqliteTxn::Get(const std::string& bucket, const std::string& key) {
  Stmt q(cache_, db_,
         "SELECT seq, removal_gen, fetch_ticket, published_ticket, tombstone, present, etag, "
         "version_id, size, updated_ms, unordered_removal_gen FROM keys "
         "WHERE bucket = ?1 AND key = ?2");
  if (!q.ok()) return err_("prepare key lookup");
  q.Text(1, bucket).Blob(2, key);
  KeyState st;
  int rc = q.Step();
  if (rc == SQLITE_ROW) {
    st.seq = q.ColText(0);
    st.removal_gen = q.ColInt(1);
    st.fetch_ticket = q.ColInt(2);
    st.published_ticket = q.ColInt(3);
    st.tombstone = q.ColInt(4) != 0;
    st.present = q.ColInt(5) != 0;
    st.etag = q.ColText(6);
    st.version_id = q.ColText(7);
    st.size = q.ColInt(8);
    st.updated_ms = q.ColInt(9);
    st.unordered_removal_gen = q.ColInt(10);
  } else if (rc != SQLITE_DONE) {
    return err_("read key state");
  }
  return st;
}

Status SqliteTxn::Put(const std::string& bucket, const std::string& key, const KeyState& st) {
  Stmt q(cache_, db_,
         "INSERT INTO keys (bucket, key, seq, removal_gen, fetch_ticket, published_ticket, "
         "tombstone, present, etag, version_id, size, updated_ms, unordered_removal_gen) "
         "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) "
         "ON CONFLICT (bucket, key) DO UPDATE SET seq = excluded.seq, "
         "removal_gen = excluded.removal_gen, fetch_ticket = excluded.fetch_ticket, "
         "published_ticket = excluded.published_ticket, tombstone = excluded.tombstone, "
         "present = excluded.present, etag = excluded.etag, version_id = excluded.version_id, "
         "size = excluded.size, updated_ms = excluded.updated_ms, "
         "unordered_removal_gen = excluded.unordered_removal_gen");
  if (!q.ok()) return err_("prepare key update");
  q.Text(1, bucket).Blob(2, key).Text(3, st.seq).Int(4, st.removal_gen);
  q.Int(5, st.fetch_ticket).Int(6, st.published_ticket).Int(7, st.tombstone ? 1 : 0);
  q.Int(8, st.present ? 1 : 0).Text(9, st.etag).Text(10, st.version_id).Int(11, st.size);
  q.Int(12, st.updated_ms).Int(13, st.unordered_removal_gen);
  if (q.Step() != SQLITE_DONE) return err_("write key state");
  return Status::Ok();
}

}  // namespace sqlite_internal

SqliteState::SqliteState(sqlite3* db, std::string path)
    : db_(db), path_(std::move(path)), owner_(HostToken() + "-" + std::to_string(getpid())) {}

int SqliteState::OnBusy(void* self, int count) {
  return static_cast<SqliteState*>(self)->WaitForLock(count);
}

int SqliteState::WaitForLock(int count) {
  using std::chrono::duration_cast;
  using std::chrono::milliseconds;
  const auto now = std::chrono::steady_clock::now();
  if (count == 0) {
    busy_since_ = now;
    busy_warned_ = now;
    busy_warned_once_ = false;
  }
  const int64_t waited = duration_cast<milliseconds>(now - busy_since_).count();
  if (waited >= kBusyTimeoutMs) {
    spdlog::error("state database {} is locked by another process: gave up after {} s", path_,
                  waited / 1000);
    return 0;
  }
  if (waited >= 5000 && (!busy_warned_once_ || now - busy_warned_ >= std::chrono::seconds(10))) {
    busy_warned_ = now;
    busy_warned_once_ = true;
    spdlog::warn(
        "state database {} is locked by another process for {} s; waiting up to {} s (a host "
        "that died holding the lock keeps it until the shared file system evicts that host: "
        "about 30 s on CephFS, 90 s or more on NFS/EFS)",
        path_, waited / 1000, kBusyTimeoutMs / 1000);
  }
  // Short sleeps: a waiter that polls often gets the lock soon after it is released (SQLite's
  // own handler sleeps up to 100 ms, and waits of 13-17 s were seen between two hosts).
  const int sleep_ms = count < 10 ? 1 : (count < 50 ? 5 : 20);
  std::this_thread::sleep_for(milliseconds(sleep_ms));
  lock_wait_ms_.fetch_add(sleep_ms, std::memory_order_relaxed);
  return 1;
}

Status SqliteState::Error(const std::string& what) {
  int rc = sqlite3_extended_errcode(db_) & 0xFF;
  if (rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB) {
    return Status::Internal("state database " + path_ + ": " + what + ": " + sqlite3_errmsg(db_) +
                            ". " + DamagedAdvice(path_));
  }
  return Status::Io("state database " + path_ + ": " + what + ": " + sqlite3_errmsg(db_));
}

std::string SqliteState::DamagedAdvice(const std::string& path) {
  return "The state database is damaged: stop every delete-sync process using it, then run "
         "`delete-sync state rebuild --state " +
         path +
         "`, which keeps the damaged file as evidence and starts a new one; the next `serve` "
         "start then verifies the whole cache against the bucket";
}

Status SqliteState::CheckIntegrity() {
  std::lock_guard<std::mutex> lock(mu_);
  sqlite_internal::Stmt q(db_, "PRAGMA quick_check");
  if (!q.ok()) return Error("check integrity");
  std::string problems;
  int rc;
  int lines = 0;
  while ((rc = q.Step()) == SQLITE_ROW) {
    std::string line = q.ColText(0);
    if (line == "ok") continue;
    if (++lines <= 3) problems += (problems.empty() ? "" : "; ") + line;
  }
  if (rc != SQLITE_DONE) return Error("check integrity");
  if (problems.empty()) return Status::Ok();
  return Status::Internal("state database " + path_ + " fails its integrity check (" + problems +
                          "). " + DamagedAdvice(path_));
}

Status SqliteState::Exec(const char* sql) {
  char* msg = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &msg) != SQLITE_OK) {
    std::string m = msg ? msg : "unknown error";
    sqlite3_free(msg);
    int rc = sqlite3_extended_errcode(db_) & 0xFF;
    if (rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB) {
      return Status::Internal("state database " + path_ + ": " + m + ". " + DamagedAdvice(path_));
    }
    return Status::Io("state database " + path_ + ": " + m);
  }
  return Status::Ok();
}

Result<StateJournal> ParseStateJournal(const std::string& value) {
  if (value == "wal") return StateJournal::kWal;
  if (value == "rollback") return StateJournal::kRollback;
  return Status::Invalid(
      "--state-journal must be 'wal' (one host) or 'rollback' (a cache "
      "shared by several hosts over NFS/EFS); not '" +
      value + "'");
}

Result<std::unique_ptr<SqliteState>> SqliteState::Open(const std::string& path,
                                                       StateJournal journal) {
  std::error_code ec;
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) {
    std::filesystem::create_directories(parent, ec);
    if (ec) {
      return Status::Io("cannot create the folder of state database " + path + ": " + ec.message());
    }
  }
  sqlite3* db = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string m = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return Status::Io("cannot open state database " + path + ": " + m);
  }
  std::unique_ptr<SqliteState> s(new SqliteState(db, path));
  sqlite3_busy_handler(db, &SqliteState::OnBusy, s.get());
  {
    // Rollback mode is sticky: a database once shared by several hosts stays in it whatever a
    // later opener asks (e.g. `status` on another host), because one WAL opener would make
    // every host's connection switch to WAL, whose shared memory does not work across hosts.
    sqlite_internal::Stmt q(db, "SELECT value FROM meta WHERE name = 'state_journal'");
    if (q.ok() && q.Step() == SQLITE_ROW && q.ColText(0) == "rollback") {
      journal = StateJournal::kRollback;
    }
  }
  {
    // DELETE: the journal file exists only during a write; SQLite's POSIX byte-range locks on
    // the database file serialise hosts (NFSv4 carries them to the server). The pragma answers
    // the mode in force: leaving WAL fails quietly while another connection has the file open.
    const char* want = journal == StateJournal::kWal ? "wal" : "delete";
    sqlite_internal::Stmt q(db, journal == StateJournal::kWal ? "PRAGMA journal_mode=WAL"
                                                              : "PRAGMA journal_mode=DELETE");
    if (!q.ok() || q.Step() != SQLITE_ROW) return s->Error("set the journal mode");
    std::string got = q.ColText(0);
    if (got != want) {
      return Status::Unavailable("state database " + path + " is in journal mode '" + got +
                                 "', and cannot switch to '" + want +
                                 "' while another process has it open (stop it first)");
    }
  }
  DS_RETURN_IF_ERROR(s->Exec("PRAGMA synchronous=FULL"));
  // A WAL (or a persisted journal) grown by a burst, e.g. a big state collection, is truncated
  // back to this size when it is next reset, so that the files stay bounded with the rows.
  DS_RETURN_IF_ERROR(s->Exec("PRAGMA journal_size_limit=4194304"));
  DS_RETURN_IF_ERROR(s->Exec(kSchema));
  DS_RETURN_IF_ERROR(s->Migrate());
  if (journal == StateJournal::kRollback) {
    DS_RETURN_IF_ERROR(
        s->Exec("INSERT OR REPLACE INTO meta (name, value) VALUES ('state_journal', 'rollback')"));
  }

  // Release at once the jobs claimed by processes of this host that no longer exist (a crash
  // mid-download), and by an earlier process that had our pid (pid reuse after a restart).
  // Claims of other hosts, and of live processes here, are left to their leases.
  {
    std::lock_guard<std::mutex> lock(s->mu_);
    const std::string host_prefix = HostToken() + "-";
    sqlite_internal::Stmt q(
        db, "SELECT DISTINCT claim_owner, claimed_pid FROM jobs WHERE claimed_pid IS NOT NULL");
    std::set<std::string> dead;
    while (q.Step() == SQLITE_ROW) {
      std::string owner = q.ColText(0);
      int64_t pid = q.ColInt(1);
      if (owner.compare(0, host_prefix.size(), host_prefix) != 0) continue;
      if (pid == getpid() || !ProcessOnThisHostAlive(static_cast<pid_t>(pid))) dead.insert(owner);
    }
    for (const std::string& owner : dead) {
      sqlite_internal::Stmt u(
          db,
          "UPDATE jobs SET claimed_pid = NULL, claim_owner = '', lease_until_ms = NULL "
          "WHERE claim_owner = ?1");
      u.Text(1, owner);
      if (u.Step() != SQLITE_DONE) return s->Error("release claimed jobs");
    }
  }
  return s;
}

Status SqliteState::Migrate() {
  // Columns added after schema version 1 was first released: a database made by an earlier
  // version gets them (with their defaults) when it is opened. ALTER TABLE takes the write
  // lock, so two processes opening one old database add a column once; the loser sees it.
  struct Column {
    const char* table;
    const char* name;
    const char* ddl;
  };
  static const Column kAdded[] = {
      {"keys", "unordered_removal_gen",
       "ALTER TABLE keys ADD COLUMN unordered_removal_gen INTEGER NOT NULL DEFAULT 0"},
      {"jobs", "claim_owner", "ALTER TABLE jobs ADD COLUMN claim_owner TEXT NOT NULL DEFAULT ''"},
      // A claim made before leases has none: it is released below.
      {"jobs", "lease_until_ms", "ALTER TABLE jobs ADD COLUMN lease_until_ms INTEGER"},
      {"jobs", "first_error_ms",
       "ALTER TABLE jobs ADD COLUMN first_error_ms INTEGER NOT NULL DEFAULT 0"},
      // 0 (unknown) for jobs journaled before: they are checked against the bucket before
      // they publish, as events older than the state horizon are.
      {"jobs", "event_ms", "ALTER TABLE jobs ADD COLUMN event_ms INTEGER NOT NULL DEFAULT 0"},
  };
  // One write transaction for the whole migration (every open runs it, a Lambda cold start
  // included): it changes nothing on a database that is up to date.
  DS_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  auto migrate = [&]() -> Status {
    for (const Column& c : kAdded) {
      sqlite_internal::Stmt q(
          db_, (std::string("SELECT 1 FROM pragma_table_info('") + c.table + "') WHERE name = ?1")
                   .c_str());
      if (!q.ok()) return Error("read the columns of " + std::string(c.table));
      q.Text(1, c.name);
      if (q.Step() != SQLITE_ROW) DS_RETURN_IF_ERROR(Exec(c.ddl));
    }
    // Claims without a lease (made by a version before leases) are released; expired leases
    // are found through this index.
    DS_RETURN_IF_ERROR(
        Exec("UPDATE jobs SET claimed_pid = NULL, claim_owner = '' WHERE claimed_pid IS NOT NULL "
             "AND lease_until_ms IS NULL"));
    DS_RETURN_IF_ERROR(
        Exec("CREATE INDEX IF NOT EXISTS jobs_lease ON jobs (failed, lease_until_ms)"));
    // State collection's range scan (CollectExpired): only rows of keys without a copy, which
    // are the rows it may delete; a present key's row is not in the index at all.
    return Exec(
        "CREATE INDEX IF NOT EXISTS keys_absent_since ON keys (updated_ms) WHERE present = 0");
  };
  Status s = migrate();
  if (!s.ok()) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    return s;
  }
  return Exec("COMMIT");
}

SqliteState::~SqliteState() {
  for (auto& [sql, stmt] : cache_.stmts) sqlite3_finalize(stmt);
  sqlite3_close(db_);
}

Status SqliteState::SetDurability(Durability d) {
  if (d == durability_) return Status::Ok();
  DS_RETURN_IF_ERROR(
      Exec(d == Durability::kDurable ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL"));
  durability_ = d;
  return Status::Ok();
}

Result<KeyState> SqliteState::Lookup(const std::string& bucket, const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  sqlite_internal::SqliteTxn reader(db_, &cache_, owner_, claim_lease_ms_,
                                    [this](const std::string& what) { return Error(what); });
  return reader.Get(bucket, key);
}

Status SqliteState::Transact(const std::function<Status(StateTxn&)>& fn, Durability durability) {
  std::lock_guard<std::mutex> lock(mu_);
  DS_RETURN_IF_ERROR(SetDurability(durability));
  if (sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK) {
    return Error("begin transaction");
  }
  sqlite_internal::SqliteTxn txn(db_, &cache_, owner_, claim_lease_ms_,
                                 [this](const std::string& what) { return Error(what); });
  Status s = fn(txn);
  if (!s.ok()) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    return s;
  }
  if (sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
    Status e = Error("commit");
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    return e;
  }
  return Status::Ok();
}

Status SqliteState::IndexSubject(const std::string& subject, const std::string& bucket,
                                 const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  DS_RETURN_IF_ERROR(SetDurability(Durability::kDurable));
  sqlite_internal::Stmt q(
      db_, "INSERT OR IGNORE INTO subjects (subject, bucket, key) VALUES (?1, ?2, ?3)");
  q.Text(1, subject).Text(2, bucket).Blob(3, key);
  if (q.Step() != SQLITE_DONE) return Error("index subject");
  return Status::Ok();
}

Result<std::vector<std::string>> SqliteState::SubjectKeys(const std::string& subject,
                                                          const std::string& bucket) {
  std::lock_guard<std::mutex> lock(mu_);
  sqlite_internal::Stmt q(
      db_, "SELECT key FROM subjects WHERE subject = ?1 AND bucket = ?2 ORDER BY key");
  q.Text(1, subject).Text(2, bucket);
  std::vector<std::string> out;
  int rc;
  while ((rc = q.Step()) == SQLITE_ROW) out.push_back(q.ColText(0));
  if (rc != SQLITE_DONE) return Error("read subject index");
  return out;
}

Status SqliteState::UnindexKey(const std::string& bucket, const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  DS_RETURN_IF_ERROR(SetDurability(Durability::kDurable));
  sqlite_internal::Stmt q(db_, "DELETE FROM subjects WHERE bucket = ?1 AND key = ?2");
  q.Text(1, bucket).Blob(2, key);
  if (q.Step() != SQLITE_DONE) return Error("unindex key");
  return Status::Ok();
}

Result<CollectStats> SqliteState::CollectExpired(int64_t cutoff_ms, size_t batch) {
  CollectStats stats;
  if (batch == 0) batch = 1;
  // One short write transaction per batch; the lock (of the connection and of the database) is
  // released between batches so that events and downloads go on during a long collection. The
  // partial index keys_absent_since gives the candidates in updated_ms order; the job test is a
  // lookup in jobs_key.
  constexpr const char* kCollect =
      "DELETE FROM keys WHERE (bucket, key) IN (SELECT k.bucket, k.key FROM keys AS k "
      "WHERE k.present = 0 AND k.updated_ms < ?1 AND NOT EXISTS (SELECT 1 FROM jobs AS j "
      "WHERE j.bucket = k.bucket AND j.key = k.key) LIMIT ?2)";
  while (true) {
    std::lock_guard<std::mutex> lock(mu_);
    // Bookkeeping: a collection lost to a power cut is simply done again.
    DS_RETURN_IF_ERROR(SetDurability(Durability::kRelaxed));
    if (sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK) {
      return Error("begin state collection");
    }
    int rc = SQLITE_ERROR;
    {
      sqlite_internal::Stmt q(&cache_, db_, kCollect);
      if (q.ok()) rc = q.Int(1, cutoff_ms).Int(2, static_cast<int64_t>(batch)).Step();
    }
    if (rc != SQLITE_DONE) {
      Status e = Error("collect expired key rows");
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      return e;
    }
    const int64_t n = sqlite3_changes(db_);
    if (sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
      Status e = Error("commit state collection");
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      return e;
    }
    stats.keys += n;
    stats.transactions++;
    if (n < static_cast<int64_t>(batch)) break;
  }
  if (stats.keys > 0) {
    // Copy the collection's pages back into the database now (PASSIVE: it waits for nobody), so
    // that the WAL is reset by the next writer and truncated to journal_size_limit.
    std::lock_guard<std::mutex> lock(mu_);
    sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
  }
  return stats;
}

Result<std::string> SqliteState::GetMeta(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  sqlite_internal::Stmt q(db_, "SELECT value FROM meta WHERE name = ?1");
  q.Text(1, name);
  int rc = q.Step();
  if (rc == SQLITE_ROW) return q.ColText(0);
  if (rc != SQLITE_DONE) return Error("read " + name);
  return std::string();
}

Status SqliteState::SetMeta(const std::string& name, const std::string& value) {
  std::lock_guard<std::mutex> lock(mu_);
  DS_RETURN_IF_ERROR(SetDurability(Durability::kDurable));
  sqlite_internal::Stmt q(db_, value.empty()
                                   ? "DELETE FROM meta WHERE name = ?1"
                                   : "INSERT OR REPLACE INTO meta (name, value) VALUES (?1, ?2)");
  q.Text(1, name);
  if (!value.empty()) q.Text(2, value);
  if (q.Step() != SQLITE_DONE) return Error("write " + name);
  return Status::Ok();
}

}  // namespace ds
