// The pieces of SqliteState (sqlite_state.h) shared by its files: Stmt, a prepared statement,
// and SqliteTxn, the StateTxn of one SQLite transaction (its keys statements are in
// sqlite_state.cc, its jobs statements in sqlite_jobs.cc). Private to src/state/sqlite_*.cc. Both
// are used under SqliteState's mutex, on its connection.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>

#include "common/status.h"
#include "core/state_store.h"
#include "state/sqlite_state.h"  // StmtCache

namespace ds::sqlite_internal {

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

// The StateTxn of one SQLite transaction begun by SqliteState::Transact (or a read outside any,
// SqliteState::Lookup). `err` makes the Status of a failed step, naming what failed.
class SqliteTxn : public StateTxn {
 public:
  SqliteTxn(sqlite3* db, StmtCache* cache, std::string owner, int64_t lease_ms,
            std::function<Status(const std::string&)> err)
      : db_(db),
        cache_(cache),
        owner_(std::move(owner)),
        lease_ms_(lease_ms),
        err_(std::move(err)) {}

  Result<KeyState> Get(const std::string& bucket, const std::string& key) override;
  Status Put(const std::string& bucket, const std::string& key, const KeyState& st) override;
  Status Enqueue(const FetchJob& job) override;
  Result<std::optional<FetchJob>> ClaimNextJob(int64_t now_ms) override;
  Status ClearFailed(const std::string& bucket, const std::string& key) override;
  Status RequeueShadowed(const std::string& bucket, const std::string& key,
                         int64_t now_ms) override;
  Status FinishJob(int64_t id) override;

 private:
  sqlite3* db_;
  StmtCache* cache_;
  std::string owner_;  // this process's claim owner: "<host token>-<pid>"
  int64_t lease_ms_;   // how long a claim holds
  std::function<Status(const std::string&)> err_;
};

}  // namespace ds::sqlite_internal
