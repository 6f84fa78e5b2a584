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

#include "core/parse_events.h"
#include "fs/posix_cache.h"

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

// A prepared statement that finalises itself, or, when taken from a StmtCache, is reset and
// kept for the next use (preparing is most of the cost of a point query).
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) { rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr); }
  Stmt(StmtCache* cache, sqlite3* db, const char* sql) : cached_(cache != nullptr) {
    if (!cached_) {
      rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr);
      return;
    }
    sqlite3_stmt*& slot = cache->stmts[sql];
    rc_ = slot ? SQLITE_OK
               : sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &slot, nullptr);
    stmt_ = slot;
  }
  ~Stmt() {
    if (cached_) {
      if (stmt_ != nullptr) {
        sqlite3_reset(stmt_);
        sqlite3_clear_bindings(stmt_);
      }
    } else {
      sqlite3_finalize(stmt_);
    }
  }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  bool ok() const { return rc_ == SQLITE_OK; }
  Stmt& Text(int i, const std::string& v) {
    sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& Blob(int i, const std::string& v) {
    sqlite3_bind_blob(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& Int(int i, int64_t v) {
    sqlite3_bind_int64(stmt_, i, v);
    return *this;
  }
  // SQLITE_ROW, SQLITE_DONE or an error code.
  int Step() { return sqlite3_step(stmt_); }
  int64_t ColInt(int i) { return sqlite3_column_int64(stmt_, i); }
  std::string ColText(int i) {
    const void* p = sqlite3_column_blob(stmt_, i);
    int n = sqlite3_column_bytes(stmt_, i);
    return p ? std::string(static_cast<const char*>(p), static_cast<size_t>(n)) : std::string();
  }
  bool ColNull(int i) { return sqlite3_column_type(stmt_, i) == SQLITE_NULL; }

 private:
  sqlite3_stmt* stmt_ = nullptr;
  bool cached_ = false;
  int rc_;
};

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

// The columns ReadJob reads, in its order: one list for every query of jobs (a macro, so that
// each query is one string literal).
#define DS_JOB_COLUMNS                                                                     \
  "id, bucket, key, seq, ordered, event_id, reason, attempts, not_before_ms, last_error, " \
  "first_error_ms, event_ms"

class SqliteTxn : public StateTxn {
 public:
  SqliteTxn(sqlite3* db, StmtCache* cache, std::string owner, int64_t lease_ms,
            std::function<Status(const std::string&)> err)
      : db_(db),
        cache_(cache),
        owner_(std::move(owner)),
        lease_ms_(lease_ms),
        err_(std::move(err)) {}

  Result<KeyState> Get(const std::string& bucket, const std::string& key) override {
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

  Status Put(const std::string& bucket, const std::string& key, const KeyState& st) override {
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

  Status Enqueue(const FetchJob& job) override {
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

  Result<std::optional<FetchJob>> ClaimNextJob(int64_t now_ms) override {
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

  Status ClearFailed(const std::string& bucket, const std::string& key) override {
    Stmt q(cache_, db_, "DELETE FROM jobs WHERE bucket = ?1 AND key = ?2 AND failed = 1");
    if (!q.ok()) return err_("prepare clearing failed jobs");
    q.Text(1, bucket).Blob(2, key);
    if (q.Step() != SQLITE_DONE) return err_("clear failed jobs");
    return Status::Ok();
  }

  Status RequeueShadowed(const std::string& bucket, const std::string& key,
                         int64_t now_ms) override {
    // Keys under key + "/": the byte range [key + "/", key + "0") ('0' follows '/').
    Stmt under(cache_, db_,
               "UPDATE jobs SET failed = 0, attempts = 0, first_error_ms = 0, not_before_ms = ?4 "
               "WHERE failed = 1 AND bucket = ?1 AND key >= ?2 AND key < ?3");
    if (!under.ok()) return err_("prepare re-queueing shadowed jobs");
    under.Text(1, bucket).Blob(2, key + "/").Blob(3, key + "0").Int(4, now_ms);
    if (under.Step() != SQLITE_DONE) return err_("re-queue shadowed jobs");
    for (size_t slash = key.find('/'); slash != std::string::npos;
         slash = key.find('/', slash + 1)) {
      Stmt parent(cache_, db_,
                  "UPDATE jobs SET failed = 0, attempts = 0, first_error_ms = 0, "
                  "not_before_ms = ?3 WHERE failed = 1 AND bucket = ?1 AND key = ?2");
      if (!parent.ok()) return err_("prepare re-queueing shadowed jobs");
      parent.Text(1, bucket).Blob(2, key.substr(0, slash)).Int(3, now_ms);
      if (parent.Step() != SQLITE_DONE) return err_("re-queue shadowed jobs");
    }
    return Status::Ok();
  }

  Status FinishJob(int64_t id) override {
    Stmt q(cache_, db_, "DELETE FROM jobs WHERE id = ?1");
    if (!q.ok()) return err_("prepare job finish");
    q.Int(1, id);
    if (q.Step() != SQLITE_DONE) return err_("finish job");
    return Status::Ok();
  }

 private:
  sqlite3* db_;
  StmtCache* cache_;
  std::string owner_;  // this process's claim owner: "<host token>-<pid>"
  int64_t lease_ms_;   // how long a claim holds
  std::function<Status(const std::string&)> err_;
};

}  // namespace

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
  Stmt q(db_, "PRAGMA quick_check");
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
    Stmt q(db, "SELECT value FROM meta WHERE name = 'state_journal'");
    if (q.ok() && q.Step() == SQLITE_ROW && q.ColText(0) == "rollback") {
      journal = StateJournal::kRollback;
    }
  }
  {
    // DELETE: the journal file exists only during a write; SQLite's POSIX byte-range locks on
    // the database file serialise hosts (NFSv4 carries them to the server). The pragma answers
    // the mode in force: leaving WAL fails quietly while another connection has the file open.
    const char* want = journal == StateJournal::kWal ? "wal" : "delete";
    Stmt q(db, journal == StateJournal::kWal ? "PRAGMA journal_mode=WAL"
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
    Stmt q(db, "SELECT DISTINCT claim_owner, claimed_pid FROM jobs WHERE claimed_pid IS NOT NULL");
    std::set<std::string> dead;
    while (q.Step() == SQLITE_ROW) {
      std::string owner = q.ColText(0);
      int64_t pid = q.ColInt(1);
      if (owner.compare(0, host_prefix.size(), host_prefix) != 0) continue;
      if (pid == getpid() || !ProcessOnThisHostAlive(static_cast<pid_t>(pid))) dead.insert(owner);
    }
    for (const std::string& owner : dead) {
      Stmt u(db,
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
      Stmt q(db_,
             (std::string("SELECT 1 FROM pragma_table_info('") + c.table + "') WHERE name = ?1")
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
  SqliteTxn reader(db_, &cache_, owner_, claim_lease_ms_,
                   [this](const std::string& what) { return Error(what); });
  return reader.Get(bucket, key);
}

Status SqliteState::Transact(const std::function<Status(StateTxn&)>& fn, Durability durability) {
  std::lock_guard<std::mutex> lock(mu_);
  DS_RETURN_IF_ERROR(SetDurability(durability));
  if (sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK) {
    return Error("begin transaction");
  }
  SqliteTxn txn(db_, &cache_, owner_, claim_lease_ms_,
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
  Stmt q(db_, "UPDATE jobs SET lease_until_ms = ?2 WHERE id = ?1 AND claim_owner = ?3");
  q.Int(1, id).Int(2, now_ms + claim_lease_ms_).Text(3, owner_);
  if (q.Step() != SQLITE_DONE) return Error("renew the claim of a job");
  return Status::Ok();
}

Status SqliteState::RetryJob(int64_t id, int64_t not_before_ms, const std::string& error,
                             int64_t first_error_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  DS_RETURN_IF_ERROR(SetDurability(Durability::kRelaxed));
  Stmt q(db_,
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
  Stmt q(db_,
         "UPDATE jobs SET claimed_pid = NULL, claim_owner = '', lease_until_ms = NULL, "
         "attempts = attempts + 1, failed = 1, last_error = ?2 WHERE id = ?1");
  q.Int(1, id).Text(2, error);
  if (q.Step() != SQLITE_DONE) return Error("record failed job");
  return Status::Ok();
}

Result<int64_t> SqliteState::RetryFailed(int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  DS_RETURN_IF_ERROR(SetDurability(Durability::kDurable));
  Stmt q(db_,
         "UPDATE jobs SET failed = 0, attempts = 0, first_error_ms = 0, not_before_ms = ?1, "
         "claimed_pid = NULL, claim_owner = '', lease_until_ms = NULL WHERE failed = 1");
  q.Int(1, now_ms);
  if (q.Step() != SQLITE_DONE) return Error("re-queue failed jobs");
  return static_cast<int64_t>(sqlite3_changes(db_));
}

Result<std::pair<int64_t, int64_t>> SqliteState::JobCounts() {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt q(db_, "SELECT COALESCE(SUM(failed = 0), 0), COALESCE(SUM(failed = 1), 0) FROM jobs");
  if (q.Step() != SQLITE_ROW) return Error("count jobs");
  return std::make_pair(q.ColInt(0), q.ColInt(1));
}

Result<StateStore::JobPresence> SqliteState::JobOf(const std::string& bucket,
                                                   const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt q(db_, "SELECT MIN(failed) FROM jobs WHERE bucket = ?1 AND key = ?2");
  q.Text(1, bucket).Blob(2, key);
  if (q.Step() != SQLITE_ROW) return Error("look up the jobs of a key");
  if (q.ColNull(0)) return JobPresence::kNone;
  return q.ColInt(0) == 0 ? JobPresence::kWaiting : JobPresence::kFailed;
}

Status SqliteState::IndexSubject(const std::string& subject, const std::string& bucket,
                                 const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  DS_RETURN_IF_ERROR(SetDurability(Durability::kDurable));
  Stmt q(db_, "INSERT OR IGNORE INTO subjects (subject, bucket, key) VALUES (?1, ?2, ?3)");
  q.Text(1, subject).Text(2, bucket).Blob(3, key);
  if (q.Step() != SQLITE_DONE) return Error("index subject");
  return Status::Ok();
}

Result<std::vector<std::string>> SqliteState::SubjectKeys(const std::string& subject,
                                                          const std::string& bucket) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt q(db_, "SELECT key FROM subjects WHERE subject = ?1 AND bucket = ?2 ORDER BY key");
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
  Stmt q(db_, "DELETE FROM subjects WHERE bucket = ?1 AND key = ?2");
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
      Stmt q(&cache_, db_, kCollect);
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
  Stmt q(db_, "SELECT value FROM meta WHERE name = ?1");
  q.Text(1, name);
  int rc = q.Step();
  if (rc == SQLITE_ROW) return q.ColText(0);
  if (rc != SQLITE_DONE) return Error("read " + name);
  return std::string();
}

Status SqliteState::SetMeta(const std::string& name, const std::string& value) {
  std::lock_guard<std::mutex> lock(mu_);
  DS_RETURN_IF_ERROR(SetDurability(Durability::kDurable));
  Stmt q(db_, value.empty() ? "DELETE FROM meta WHERE name = ?1"
                            : "INSERT OR REPLACE INTO meta (name, value) VALUES (?1, ?2)");
  q.Text(1, name);
  if (!value.empty()) q.Text(2, value);
  if (q.Step() != SQLITE_DONE) return Error("write " + name);
  return Status::Ok();
}

Result<std::vector<FetchJob>> SqliteState::FailedJobs(size_t limit) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt q(db_, "SELECT " DS_JOB_COLUMNS " FROM jobs WHERE failed = 1 ORDER BY id DESC LIMIT ?1");
  q.Int(1, static_cast<int64_t>(limit));
  std::vector<FetchJob> out;
  int rc;
  while ((rc = q.Step()) == SQLITE_ROW) out.push_back(ReadJob(q));
  if (rc != SQLITE_DONE) return Error("read failed jobs");
  return out;
}

}  // namespace ds
