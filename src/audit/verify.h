// What a verification of an audit log finds (AuditLog::Verify and AuditLog::Inspect in
// audit_log.h): every record of every file is checked as docs/AUDIT_FORMAT.md specifies, and the
// first bad one, if any, is named by file, line and seq.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ds {

// The first bad record found by a verification.
struct VerifyFailure {
  std::string file;  // the file holding it
  int64_t line = 0;  // 1-based line number in that file
  int64_t seq = 0;   // the record's seq when readable, else the seq expected there
  std::string reason;
  // "<file>:<line> (seq N): <reason>"
  std::string ToString() const;
};

struct VerifyReport {
  int64_t records = 0;             // records checked (when intact: all of them)
  int64_t head_seq = 0;            // seq of the last good record (0 when none)
  std::string head_hash;           // SHA-256 of the last good record's line (64 zeros when none)
  std::vector<std::string> files;  // files verified, in chain order (rotated ones, then current)
  bool hmac_checked = false;       // a key was given: every record's HMAC was checked
  int64_t records_with_hmac = 0;   // records carrying an "hmac" field
  std::optional<VerifyFailure> failure;  // set when the chain is broken
};

}  // namespace ds
