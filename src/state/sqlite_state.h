// StateStore on SQLite with synchronous=FULL: a committed transaction survives a crash or power
// loss. Two journal modes (docs/SEMANTICS.md, "Deployments and shared state"):
//  - kWal (default): several processes on ONE host may share the file (SQLite's file locks
//    serialise transactions); WAL needs shared memory, so not on NFS/EFS shared by hosts;
//  - kRollback: a rollback journal and POSIX (fcntl) locks only, for a file shared by several
//    hosts over NFS/EFS (Lambda): slower commits, readers and writers exclude each other.
// Writers that find the database locked wait (busy timeout) rather than fail.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "core/state_store.h"

struct sqlite3;
struct sqlite3_stmt;

namespace ds {

// Prepared statements kept for reuse, keyed by their SQL text. Used under SqliteState's mutex.
struct StmtCache {
  std::map<std::string, sqlite3_stmt*> stmts;
};

enum class StateJournal {
  kWal,       // one host
  kRollback,  // several hosts sharing the file over NFS/EFS
};

// "wal" or "rollback"; an error naming the setting otherwise.
Result<StateJournal> ParseStateJournal(const std::string& value);

class SqliteState : public StateStore {
 public:
  // How long a statement waits for another connection's lock before failing with "database is
  // locked". Longer than a shared file system takes to free the locks of a host that died
  // holding them (CephFS evicts a dead client after about 30 s; NFSv4/EFS leases last 90 s), so
  // that a crashed host delays the others but fails nothing. Waits of more than 5 s are logged
  // as warnings (every 10 s) and counted in lock_wait_ms().
  static constexpr int kBusyTimeoutMs = 180000;

  // Opens or creates the database (and its folder), applies the schema, and releases jobs
  // claimed by processes that are no longer alive. Switching an existing database between
  // journal modes needs every other connection closed. Rollback mode is recorded in the
  // database and sticky: a later Open asking for kWal gets kRollback (to go back to WAL, stop
  // every process and delete the meta row 'state_journal').
  static Result<std::unique_ptr<SqliteState>> Open(const std::string& path,
                                                   StateJournal journal = StateJournal::kWal);
  ~SqliteState() override;

  Status Transact(const std::function<Status(StateTxn&)>& fn,
                  Durability durability = Durability::kDurable) override;
  Result<KeyState> Lookup(const std::string& bucket, const std::string& key) override;
  Result<std::vector<FetchJob>> ClaimJobs(int64_t now_ms, size_t limit) override;
  Status FinishJob(int64_t id) override;
  Status RenewClaim(int64_t id, int64_t now_ms) override;
  Status RetryJob(int64_t id, int64_t not_before_ms, const std::string& error,
                  int64_t first_error_ms) override;
  Result<int64_t> RetryFailed(int64_t now_ms) override;
  Status FailJob(int64_t id, const std::string& error) override;
  Result<std::pair<int64_t, int64_t>> JobCounts() override;
  Result<JobPresence> JobOf(const std::string& bucket, const std::string& key) override;
  Status IndexSubject(const std::string& subject, const std::string& bucket,
                      const std::string& key) override;
  Result<std::vector<std::string>> SubjectKeys(const std::string& subject,
                                               const std::string& bucket) override;
  Status UnindexKey(const std::string& bucket, const std::string& key) override;
  Result<CollectStats> CollectExpired(int64_t cutoff_ms, size_t batch) override;

  // How long a claim of a job holds without renewal (state_store.h): kClaimLeaseMs unless set
  // (the claim-lease setting). Set before the store is shared between threads.
  void set_claim_lease_ms(int64_t ms) { claim_lease_ms_ = ms; }
  int64_t claim_lease_ms() const override { return claim_lease_ms_; }

  // Milliseconds this store's connection has spent waiting for locks held by other processes
  // (or hosts), since it was opened.
  int64_t lock_wait_ms() const { return lock_wait_ms_.load(std::memory_order_relaxed); }

  // PRAGMA quick_check: OK, or kInternal naming the damage and the recovery command. Reads the
  // whole database (about a second per 100 MB): `serve` runs it at start.
  Status CheckIntegrity();

  // The guidance given for a damaged database: stop the processes, then `delete-sync state
  // rebuild` (app/commands/state.cc).
  static std::string DamagedAdvice(const std::string& path);

  // Small named values of the service (table meta): "" when unset; SetMeta("") deletes.
  Result<std::string> GetMeta(const std::string& name);
  Status SetMeta(const std::string& name, const std::string& value);
  // The meta value that makes the next `serve` start verify the whole cache against the bucket
  // (the state database was lost or rebuilt); cleared by a start pass that succeeded.
  static constexpr const char* kVerifyCacheMeta = "verify_cache";

  // Failed jobs, newest first, for `status` and operators.
  Result<std::vector<FetchJob>> FailedJobs(size_t limit);
  const std::string& path() const { return path_; }

 private:
  SqliteState(sqlite3* db, std::string path);
  Status Exec(const char* sql);
  // Adds the columns of later versions to a database made by an earlier one.
  Status Migrate();
  // Sets PRAGMA synchronous for the next commits (FULL for kDurable, NORMAL for kRelaxed).
  Status SetDurability(Durability d);
  Status Error(const std::string& what);
  // SQLite's busy handler: sleeps briefly and returns 1 (try again) until kBusyTimeoutMs.
  static int OnBusy(void* self, int count);
  int WaitForLock(int count);

  sqlite3* db_;
  std::string path_;
  std::string owner_;  // claims of this process: "<host token>-<pid>"
  std::mutex mu_;
  StmtCache cache_;
  Durability durability_ = Durability::kDurable;
  int64_t claim_lease_ms_ = kClaimLeaseMs;
  std::atomic<int64_t> lock_wait_ms_{0};
  // The lock wait in progress (the busy handler runs under mu_).
  std::chrono::steady_clock::time_point busy_since_{}, busy_warned_{};
  bool busy_warned_once_ = false;
};

}  // namespace ds
