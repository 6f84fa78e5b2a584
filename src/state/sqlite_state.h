// StateStore on SQLite in WAL mode with synchronous=FULL: a committed transaction survives a
// crash or power loss. Several processes on ONE host may share the file (SQLite's file locks
// serialise transactions); WAL needs shared memory, so the file must not be on NFS/EFS shared
// by several hosts (see docs/SEMANTICS.md, "Deployments").
#pragma once

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

class SqliteState : public StateStore {
 public:
  // Opens or creates the database (and its folder), applies the schema, and releases jobs
  // claimed by processes that are no longer alive.
  static Result<std::unique_ptr<SqliteState>> Open(const std::string& path);
  ~SqliteState() override;

  Status Transact(const std::function<Status(StateTxn&)>& fn,
                  Durability durability = Durability::kDurable) override;
  Result<KeyState> Lookup(const std::string& bucket, const std::string& key) override;
  Result<std::vector<FetchJob>> ClaimJobs(int64_t now_ms, size_t limit) override;
  Status FinishJob(int64_t id) override;
  Status RetryJob(int64_t id, int64_t not_before_ms, const std::string& error) override;
  Status FailJob(int64_t id, const std::string& error) override;
  Result<std::pair<int64_t, int64_t>> JobCounts() override;
  Status IndexSubject(const std::string& subject, const std::string& bucket,
                      const std::string& key) override;
  Result<std::vector<std::string>> SubjectKeys(const std::string& subject,
                                               const std::string& bucket) override;
  Status UnindexKey(const std::string& bucket, const std::string& key) override;

  // Failed jobs, newest first, for `status` and operators.
  Result<std::vector<FetchJob>> FailedJobs(size_t limit);
  const std::string& path() const { return path_; }

 private:
  SqliteState(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  Status Exec(const char* sql);
  // Sets PRAGMA synchronous for the next commits (FULL for kDurable, NORMAL for kRelaxed).
  Status SetDurability(Durability d);
  Status Error(const std::string& what);

  sqlite3* db_;
  std::string path_;
  std::mutex mu_;
  StmtCache cache_;
  Durability durability_ = Durability::kDurable;
};

}  // namespace ds
