// The audit log: an append-only, hash-chained (and optionally HMAC'd) file of JSON lines that
// records every removal from a cache, every erasure request and every verification. The byte
// format, the rotation scheme and what a verifier checks are specified in docs/AUDIT_FORMAT.md.
//
// Appends are durable (write + fdatasync) before they return, serialised by a mutex inside a
// process and by flock(2) on "<path>.lock" across processes of one host, so several processes
// may append to one log and the chain stays consistent.
//
// Where the parts live: this class's appending in audit_log.cc, its Verify/Inspect in verify.cc
// (report types in verify.h), the bytes of a record in record.h, the files of a log (tails,
// rotated files) in log_files.h, key files in hmac_key.h.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "audit/verify.h"
#include "common/clock.h"
#include "common/status.h"
#include "core/audit_sink.h"

namespace ds {

struct AuditOptions {
  // HMAC-SHA-256 key (raw bytes, see LoadHmacKey in hmac_key.h). When set every record carries
  // "hmac", and Open refuses a log whose last record has no HMAC or an HMAC made with another key.
  std::optional<std::string> hmac_key;
  // Rotation: before an append that would make the current file larger than this, the current
  // file is renamed to "<path>.<first-seq>-<last-seq>" and a new one is started (the chain goes
  // on across files). 0 never rotates. A file always holds at least one record.
  uint64_t max_bytes = 64ull << 20;
};

// Where a record sits in the chain: its sequence number and the lowercase hex SHA-256 of its
// line (what the next record's "prev" will be). A receipt can cite it.
struct AuditPosition {
  int64_t seq = 0;
  std::string hash;
};

class AuditLog : public AuditSink {
 public:
  // Opens (creating when missing) the log at `path` in an existing folder, recovering the last
  // seq and hash from its tail (or from the newest rotated file when `path` is missing or
  // empty). Refuses, naming the problem and pointing at `audit verify`, a log whose last line
  // is incomplete (a crash during an append), whose tail is not a valid record or does not
  // chain, or whose HMAC presence/validity does not match `opts.hmac_key`. `clock` must
  // outlive the log.
  static Result<std::unique_ptr<AuditLog>> Open(const std::string& path, const AuditOptions& opts,
                                                Clock& clock);
  ~AuditLog() override;
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // AuditSink: appends a "removal" record; OK only once it is written and fdatasync'ed.
  Status RecordRemoval(const RemovalRecord& r) override;
  // AuditSink: appends one "removal" record per entry, in order, with one write and one
  // fdatasync (and one lock) for all of them; OK only once all are durable.
  Status RecordRemovals(const std::vector<RemovalRecord>& records) override;
  // The same, returning the record's position.
  Result<AuditPosition> AppendRemoval(const RemovalRecord& r);

  // Appends a record of `type` ([a-z][a-z0-9-]*, at most 64 bytes; e.g. "erasure-request",
  // "verification") whose fields are the members of the JSON object `fields`, written after
  // "type" in the byte order of their names. Values may be strings (valid UTF-8), integers,
  // booleans, null, arrays and objects, not floating-point numbers; the names "seq", "time",
  // "prev", "type" and "hmac" are reserved. A record is at most 1 MiB.
  Result<AuditPosition> Append(const std::string& type, const nlohmann::json& fields);

  // The last record this log appended or found at its tail ({0, 64 zeros} for an empty log).
  AuditPosition last_position() const;

  // Milliseconds this process has waited for the log's lock ("<path>.lock") held by another
  // process or host (a host that died holding it keeps it until the file system evicts it).
  // A wait of more than 5 s is logged as a warning, then every 10 s while it lasts.
  int64_t lock_wait_ms() const { return lock_wait_ms_.load(std::memory_order_relaxed); }
  const std::string& path() const { return path_; }

  // Checks the whole chain: the rotated files "<path>.<A>-<B>" in order of A, then `path`.
  // With `hmac_key` every record must carry a valid HMAC. A broken chain is kInvalidArgument
  // with VerifyFailure::ToString() as message; a log that does not exist is kNotFound.
  static Result<VerifyReport> Verify(const std::string& path,
                                     const std::optional<std::string>& hmac_key);
  // The same, but a broken chain is an OK result with `failure` set (I/O errors and a missing
  // log are still errors).
  static Result<VerifyReport> Inspect(const std::string& path,
                                      const std::optional<std::string>& hmac_key);

 private:
  AuditLog(std::string path, AuditOptions opts, Clock& clock);
  Status Lock();
  void Unlock();
  // Under the lock: makes fd_ the current file and the cached tail the log's real tail.
  Status Refresh();
  // Under the lock, while loading the tail: the current file ends with a partial line from
  // `start` to `size` (a crash during an append). Keeps it in "<path>.torn-<start>", cuts it
  // off, and sets torn_note_ so that the next append first writes a "torn-tail" record.
  Status CutTornTail(int64_t start, int64_t size);
  Status LoadTail();
  struct TypedFields {
    std::string type;
    std::string fields;  // the record's members after "type", each starting with ','
  };
  Result<AuditPosition> AppendLine(const std::string& type, const std::string& body_fields);
  // Appends the records in order under one lock; rotates between them when needed. Returns
  // the last record's position.
  Result<AuditPosition> AppendLines(const std::vector<TypedFields>& records);
  // Writes and fdatasyncs `pending` (records seq pending_first_seq..pending_last.seq), then
  // makes them the file's tail.
  Status WritePending(std::string* pending, int64_t* pending_size, AuditPosition pending_last,
                      int64_t pending_first_seq);
  static std::string RemovalFields(const RemovalRecord& r);

  const std::string path_;
  const AuditOptions opts_;
  Clock& clock_;
  mutable std::mutex mu_;
  int lock_fd_ = -1;
  std::atomic<int64_t> lock_wait_ms_{0};
  int fd_ = -1;  // the current file, O_RDWR | O_APPEND
  dev_t dev_ = 0;
  ino_t ino_ = 0;
  int64_t size_ = 0;       // bytes of the current file as last seen under the lock
  int64_t first_seq_ = 0;  // seq of the current file's first record, 0 when it is empty
  AuditPosition last_;     // the log's last record
  bool known_ = false;     // last_ was read from the log at least once
  std::string broken_;     // non-empty: an earlier failure left the file in doubt
  std::string torn_note_;  // fields of a "torn-tail" record still to append (CutTornTail)
};

}  // namespace ds
