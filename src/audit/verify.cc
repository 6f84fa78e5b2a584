// Verification of an audit log (verify.h, AuditLog::Inspect and AuditLog::Verify): every record
// of every file, as docs/AUDIT_FORMAT.md specifies.
#include "audit/verify.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "audit/audit_log.h"
#include "audit/log_files.h"
#include "audit/record.h"
#include "crypto/digest.h"
#include "fs/unique_fd.h"

namespace ds {
namespace {

using audit_internal::Envelope;
using audit_internal::Errno;
using audit_internal::HmacMatches;
using audit_internal::kZeroHash;
using audit_internal::ListRotated;
using audit_internal::ParseEnvelope;
using audit_internal::Rotated;
using crypto::Sha256Hex;

// Reads lines of an fd up to `limit` bytes: each with whether it ended with a newline.
class LineReader {
 public:
  LineReader(int fd, int64_t limit, std::string name)
      : fd_(fd), limit_(limit), name_(std::move(name)) {}

  // False at the end. `complete` is false for a last line without newline.
  Result<bool> Next(std::string* line, bool* complete, int64_t* start) {
    line->clear();
    *start = consumed_;
    for (;;) {
      size_t nl = buf_.find('\n', pos_);
      if (nl != std::string::npos) {
        line->append(buf_, pos_, nl - pos_);
        consumed_ += static_cast<int64_t>(nl - pos_ + 1);
        pos_ = nl + 1;
        *complete = true;
        return true;
      }
      line->append(buf_, pos_, std::string::npos);
      consumed_ += static_cast<int64_t>(buf_.size() - pos_);
      buf_.clear();
      pos_ = 0;
      if (eof_) {
        *complete = false;
        return !line->empty();
      }
      Status s = Fill();
      if (!s.ok()) return s;
    }
  }

 private:
  Status Fill() {
    constexpr size_t kChunk = 256 * 1024;
    size_t want = kChunk;
    if (limit_ >= 0) want = static_cast<size_t>(std::min<int64_t>(kChunk, limit_ - read_));
    if (want == 0) {
      eof_ = true;
      return Status::Ok();
    }
    buf_.resize(want);
    ssize_t r;
    do {
      r = ::pread(fd_, buf_.data(), want, static_cast<off_t>(read_));
    } while (r < 0 && errno == EINTR);
    if (r < 0) return Status::Io("cannot read " + name_ + ": " + Errno(errno));
    buf_.resize(static_cast<size_t>(r));
    read_ += r;
    if (r == 0) eof_ = true;
    return Status::Ok();
  }

  int fd_;
  int64_t limit_;  // -1: to the end of the file
  std::string name_;
  std::string buf_;
  size_t pos_ = 0;
  int64_t read_ = 0;      // bytes read from the file
  int64_t consumed_ = 0;  // bytes handed out as lines
  bool eof_ = false;
};

// Walks records across files, keeping the chain state.
class ChainChecker {
 public:
  ChainChecker(const std::optional<std::string>& key, VerifyReport* report)
      : key_(key), report_(report) {}

  // Checks one file; false when a failure was recorded (or `io` set).
  bool File(const std::string& name, int fd, int64_t limit, const Rotated* rotated, Status* io) {
    report_->files.push_back(name);
    LineReader reader(fd, limit, name);
    std::string line;
    bool complete = false;
    int64_t start = 0, lineno = 0, first_seq = 0;
    for (;;) {
      Result<bool> more = reader.Next(&line, &complete, &start);
      if (!more.ok()) {
        *io = more.status();
        return false;
      }
      if (!*more) break;
      ++lineno;
      if (!complete) {
        return Fail(name, lineno, expected_,
                    "truncated record: the last line has no newline (a crash during an append, "
                    "or the file was cut); the partial record is bytes " +
                        std::to_string(start) + ".." + std::to_string(start + line.size()));
      }
      Envelope e;
      std::string why = ParseEnvelope(line, &e);
      if (!why.empty()) return Fail(name, lineno, e.seq > 0 ? e.seq : expected_, why);
      if (e.seq != expected_) {
        std::string what = e.seq > expected_ ? "a record is missing: dropped or reordered"
                                             : "a record is repeated, inserted or reordered";
        if (expected_ == 1) what += "; the chain must start at seq 1";
        return Fail(name, lineno, e.seq,
                    "seq not consecutive: expected " + std::to_string(expected_) + ", found " +
                        std::to_string(e.seq) + " (" + what + ")");
      }
      if (e.prev != prev_hash_) {
        if (prev_where_.empty()) {
          return Fail(name, lineno, e.seq,
                      "prev hash mismatch: the first record's prev must be 64 zeros");
        }
        return Fail(name, lineno, e.seq,
                    "prev hash mismatch: prev is " + e.prev +
                        " but the SHA-256 of the previous "
                        "record (" +
                        prev_where_ + ") is " + prev_hash_ +
                        " (that record or this one was edited, or records were inserted, "
                        "dropped or reordered)");
      }
      if (e.has_hmac) ++report_->records_with_hmac;
      if (key_) {
        if (!e.has_hmac) return Fail(name, lineno, e.seq, "HMAC missing (a key was given)");
        if (!HmacMatches(*key_, line, e)) {
          return Fail(name, lineno, e.seq,
                      "HMAC mismatch (the record was edited or forged, or the key is wrong)");
        }
      }
      if (first_seq == 0) first_seq = e.seq;
      prev_hash_ = Sha256Hex(line);
      prev_where_ = name + ":" + std::to_string(lineno) + ", seq " + std::to_string(e.seq);
      report_->records++;
      report_->head_seq = e.seq;
      report_->head_hash = prev_hash_;
      ++expected_;
    }
    if (rotated != nullptr) {
      const std::string range =
          std::to_string(rotated->first) + "-" + std::to_string(rotated->last);
      if (lineno == 0) {
        return Fail(name, 1, expected_, "rotated file is empty (its name says seq " + range + ")");
      }
      if (first_seq != rotated->first) {
        return Fail(name, 1, first_seq,
                    "the file's name says it holds seq " + range + " but it starts at seq " +
                        std::to_string(first_seq));
      }
      if (report_->head_seq != rotated->last) {
        bool missing = report_->head_seq < rotated->last;
        return Fail(name, missing ? lineno + 1 : lineno, missing ? expected_ : report_->head_seq,
                    "the file's name says it holds seq " + range + " but it ends at seq " +
                        std::to_string(report_->head_seq) +
                        (missing ? " (its last records were dropped)" : ""));
      }
    }
    return true;
  }

 private:
  bool Fail(const std::string& file, int64_t line, int64_t seq, std::string reason) {
    report_->failure = VerifyFailure{file, line, seq, std::move(reason)};
    return false;
  }

  const std::optional<std::string>& key_;
  VerifyReport* report_;
  int64_t expected_ = 1;
  std::string prev_hash_ = kZeroHash;
  std::string prev_where_;
};

}  // namespace

std::string VerifyFailure::ToString() const {
  return file + ":" + std::to_string(line) + " (seq " + std::to_string(seq) + "): " + reason;
}

Result<VerifyReport> AuditLog::Inspect(const std::string& path,
                                       const std::optional<std::string>& hmac_key) {
  if (path.empty() || path.back() == '/') {
    return Status::Invalid("the audit log must be a file path, not '" + path + "'");
  }
  if (hmac_key && hmac_key->empty()) return Status::Invalid("the audit log HMAC key is empty");
  // A consistent snapshot: under a shared lock (when the lock file exists) list the rotated
  // files and note the current file's size; appenders hold the lock exclusively for a whole
  // append or rotation, so the snapshot ends at a record boundary.
  UniqueFd lock(::open((path + ".lock").c_str(), O_RDONLY | O_CLOEXEC));
  if (lock.get() >= 0) {
    while (::flock(lock.get(), LOCK_SH) != 0 && errno == EINTR) {
    }
  }
  Result<std::vector<Rotated>> rotated = ListRotated(path);
  if (!rotated.ok()) return rotated.status();
  UniqueFd cur(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (cur.get() < 0 && errno != ENOENT) {
    return Status::Io("cannot read audit log " + path + ": " + Errno(errno));
  }
  int64_t cur_size = 0;
  if (cur.get() >= 0) {
    struct stat st {};
    if (::fstat(cur.get(), &st) != 0)
      return Status::Io("cannot stat " + path + ": " + Errno(errno));
    cur_size = st.st_size;
  }
  if (lock.get() >= 0) ::flock(lock.get(), LOCK_UN);
  if (cur.get() < 0 && rotated->empty()) return Status::NotFound("no audit log at " + path);

  VerifyReport report;
  report.head_hash = kZeroHash;
  report.hmac_checked = hmac_key.has_value();
  ChainChecker checker(hmac_key, &report);
  Status io;
  for (const Rotated& r : *rotated) {
    UniqueFd fd(::open(r.path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) return Status::Io("cannot read audit log " + r.path + ": " + Errno(errno));
    if (!checker.File(r.path, fd.get(), -1, &r, &io)) {
      if (!io.ok()) return io;
      return report;
    }
  }
  if (cur.get() >= 0 && !checker.File(path, cur.get(), cur_size, nullptr, &io)) {
    if (!io.ok()) return io;
  }
  return report;
}

Result<VerifyReport> AuditLog::Verify(const std::string& path,
                                      const std::optional<std::string>& hmac_key) {
  Result<VerifyReport> r = Inspect(path, hmac_key);
  if (!r.ok()) return r;
  if (r->failure) return Status::Invalid(r->failure->ToString());
  return r;
}

}  // namespace ds
