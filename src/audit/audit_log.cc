// The audit log's appender (audit_log.h): opening, locking, appending, rotating. The format is
// specified in docs/AUDIT_FORMAT.md; keep the two in step.
#include "audit/audit_log.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <thread>
#include <utility>

#include "audit/log_files.h"
#include "audit/record.h"
#include "common/crash_point.h"
#include "crypto/digest.h"
#include "fs/unique_fd.h"

namespace ds {
namespace {

using audit_internal::AddStringField;
using audit_internal::BuildLine;
using audit_internal::CheckFileTail;
using audit_internal::Envelope;
using audit_internal::Errno;
using audit_internal::FileTail;
using audit_internal::FsyncDir;
using audit_internal::HasFloat;
using audit_internal::IsReservedField;
using audit_internal::IsTypeName;
using audit_internal::JsonStr;
using audit_internal::kMaxRecordBytes;
using audit_internal::kZeroHash;
using audit_internal::ListRotated;
using audit_internal::ParseEnvelope;
using audit_internal::PreadAll;
using audit_internal::ReadFirstLine;
using audit_internal::ReadTail;
using audit_internal::Rotated;
using audit_internal::Tail;
using crypto::Sha256Hex;

std::string Advice(const std::string& path) {
  return "; refusing to append. Run `delete-sync audit verify --log " + path +
         "` and see docs/AUDIT_FORMAT.md (Crashes and truncation)";
}

}  // namespace

AuditLog::AuditLog(std::string path, AuditOptions opts, Clock& clock)
    : path_(std::move(path)), opts_(std::move(opts)), clock_(clock) {
  last_ = {0, kZeroHash};
}

AuditLog::~AuditLog() {
  if (fd_ >= 0) ::close(fd_);
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

Result<std::unique_ptr<AuditLog>> AuditLog::Open(const std::string& path, const AuditOptions& opts,
                                                 Clock& clock) {
  if (path.empty() || path.back() == '/') {
    return Status::Invalid("the audit log must be a file path, not '" + path + "'");
  }
  if (opts.hmac_key && opts.hmac_key->empty()) {
    return Status::Invalid("the audit log HMAC key is empty");
  }
  std::unique_ptr<AuditLog> log(new AuditLog(path, opts, clock));
  const std::string lock_path = path + ".lock";
  log->lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (log->lock_fd_ < 0) {
    int err = errno;
    std::string m = "cannot open audit log lock file " + lock_path + ": " + Errno(err);
    return err == ENOENT ? Status::NotFound(m) : Status::Io(m);
  }
  DS_RETURN_IF_ERROR(log->Lock());  // not yet shared with other threads: no mutex needed
  Status s = log->Refresh();
  log->Unlock();
  if (!s.ok()) return s;
  if (!log->torn_note_.empty()) DS_RETURN_IF_ERROR(log->AppendLines({}).status());
  return log;
}

Status AuditLog::Lock() {
  // Without waiting first; when another process or host holds the lock, polled (1 ms doubling
  // to 20 ms, as SQLite's busy handler does) so that a long wait can be told and counted.
  using Steady = std::chrono::steady_clock;
  std::optional<Steady::time_point> since;
  Steady::time_point warned;
  int sleep_ms = 1;
  for (;;) {
    if (::flock(lock_fd_, LOCK_EX | LOCK_NB) == 0) break;
    if (errno == EINTR) continue;
    if (errno != EWOULDBLOCK) {
      return Status::Io("cannot lock " + path_ + ".lock: " + Errno(errno));
    }
    const Steady::time_point now = Steady::now();
    if (!since) {
      since = now;
      warned = now;
    }
    const auto waited = std::chrono::duration_cast<std::chrono::seconds>(now - *since);
    if (waited >= std::chrono::seconds(5) &&
        (warned == *since || now - warned >= std::chrono::seconds(10))) {
      warned = now;
      spdlog::warn(
          "audit log {} is locked by another process for {} s; waiting (a host that died "
          "holding it keeps it until the file system evicts that host: CephFS about 30 s, "
          "NFS/EFS 90 s)",
          path_, waited.count());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms));
    sleep_ms = std::min(sleep_ms * 2, 20);
  }
  if (since) {
    lock_wait_ms_.fetch_add(
        std::chrono::duration_cast<std::chrono::milliseconds>(Steady::now() - *since).count(),
        std::memory_order_relaxed);
  }
  return Status::Ok();
}

void AuditLog::Unlock() { ::flock(lock_fd_, LOCK_UN); }

Status AuditLog::Refresh() {
  // The file is opened afresh under the lock for every append, never judged by a stat() of
  // the path: on NFS/EFS an open() revalidates the file's attributes with the server
  // (close-to-open consistency) and so drops cached pages another host's append made stale,
  // while stat() may answer from the attribute cache (3-60 s old) and hide that append; the
  // O_APPEND write then goes at the size the server has. On a local disk it costs one open().
  int fd = ::open(path_.c_str(), O_RDWR | O_APPEND | O_CLOEXEC);
  bool created = false;
  if (fd < 0 && errno == ENOENT) {
    fd = ::open(path_.c_str(), O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    created = fd >= 0;
  }
  if (fd < 0) return Status::Io("cannot open audit log " + path_ + ": " + Errno(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return Status::Io("cannot stat " + path_ + ": " + Errno(err));
  }
  const bool unchanged =
      fd_ >= 0 && known_ && st.st_dev == dev_ && st.st_ino == ino_ && st.st_size == size_;
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
  if (created) DS_RETURN_IF_ERROR(FsyncDir(path_));
  if (unchanged) return Status::Ok();  // nobody appended or rotated since our last append
  return LoadTail();
}

Status AuditLog::CutTornTail(int64_t start, int64_t size) {
  // The bytes of a record whose append never finished (its fdatasync never returned, so its
  // removal was never acknowledged). They are kept as evidence, cut off, and the cut is noted
  // in the chain by a "torn-tail" record: repaired loudly, never silently.
  std::string torn(static_cast<size_t>(size - start), '\0');
  DS_RETURN_IF_ERROR(PreadAll(fd_, torn.data(), torn.size(), start, path_));
  const std::string evidence = path_ + ".torn-" + std::to_string(start);
  UniqueFd efd(::open(evidence.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (efd.get() < 0) {
    return Status::Io("audit log " + path_ + " ends with a torn record (bytes " +
                      std::to_string(start) + ".." + std::to_string(size) +
                      ", a crash during an append) and it cannot be kept in " + evidence + ": " +
                      Errno(errno) + Advice(path_));
  }
  const char* p = torn.data();
  size_t left = torn.size();
  while (left > 0) {
    ssize_t n = ::write(efd.get(), p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Status::Io("cannot write " + evidence + ": " + Errno(errno));
    p += n;
    left -= static_cast<size_t>(n);
  }
  if (::fsync(efd.get()) != 0) return Status::Io("cannot fsync " + evidence + ": " + Errno(errno));
  DS_RETURN_IF_ERROR(FsyncDir(evidence));
  if (::ftruncate(fd_, static_cast<off_t>(start)) != 0 || ::fdatasync(fd_) != 0) {
    return Status::Io("cannot cut the torn record off audit log " + path_ + ": " + Errno(errno) +
                      Advice(path_));
  }
  const size_t slash = evidence.rfind('/');
  const std::string base = slash == std::string::npos ? evidence : evidence.substr(slash + 1);
  torn_note_ = ",\"bytes\":" + std::to_string(torn.size()) + ",\"evidence\":" + JsonStr(base) +
               ",\"offset\":" + std::to_string(start) + ",\"sha256\":\"" + Sha256Hex(torn) + "\"";
  spdlog::warn(
      "audit log {}: cut off a torn last record ({} bytes at offset {}) left by a crash during "
      "an append (never acknowledged: its removal is applied and recorded again when its event "
      "is redelivered); the bytes are kept in {} and a 'torn-tail' record notes the cut",
      path_, torn.size(), start, evidence);
  return Status::Ok();
}

Status AuditLog::LoadTail() {
  struct stat st {};
  if (::fstat(fd_, &st) != 0) return Status::Io("cannot stat " + path_ + ": " + Errno(errno));
  int64_t size = st.st_size;
  if (size > 0) {
    Result<Tail> t = ReadTail(fd_, size, path_);
    if (!t.ok()) return t.status();
    if (!t->ends_with_newline) {
      DS_RETURN_IF_ERROR(CutTornTail(t->partial_start, size));
      size = t->partial_start;
    }
  }
  AuditPosition last{0, kZeroHash};
  int64_t first_seq = 0;
  const std::optional<std::string>& key = opts_.hmac_key;

  // The newest rotated file's last record, for an empty current file or to link its first one.
  auto rotated_tail = [&](std::optional<FileTail>* out) -> Status {
    Result<std::vector<Rotated>> rot = ListRotated(path_);
    if (!rot.ok()) return rot.status();
    if (rot->empty()) return Status::Ok();
    const Rotated* newest = &rot->back();
    for (const Rotated& r : *rot) newest = r.last > newest->last ? &r : newest;
    UniqueFd rfd(::open(newest->path.c_str(), O_RDONLY | O_CLOEXEC));
    struct stat rst {};
    if (rfd.get() < 0 || ::fstat(rfd.get(), &rst) != 0) {
      return Status::Io("cannot read rotated audit log " + newest->path + ": " + Errno(errno));
    }
    if (rst.st_size == 0) {
      return Status::Invalid("rotated audit log " + newest->path + " is empty" + Advice(path_));
    }
    Result<FileTail> ft = CheckFileTail(newest->path, rfd.get(), rst.st_size, key);
    if (!ft.ok()) return Status::Invalid(ft.status().message() + Advice(path_));
    if (ft->last.seq != newest->last) {
      return Status::Invalid("rotated audit log " + newest->path + " ends at seq " +
                             std::to_string(ft->last.seq) + ", not at the seq its name says" +
                             Advice(path_));
    }
    *out = *ft;
    return Status::Ok();
  };

  if (size == 0) {
    std::optional<FileTail> rt;
    DS_RETURN_IF_ERROR(rotated_tail(&rt));
    if (rt) last = rt->last;
  } else {
    Result<FileTail> ft = CheckFileTail(path_, fd_, size, key);
    if (!ft.ok()) return Status::Invalid(ft.status().message() + Advice(path_));
    last = ft->last;
    Result<std::string> first_line = ReadFirstLine(fd_, size, path_);
    if (!first_line.ok()) return first_line.status();
    Envelope fe;
    std::string why = ParseEnvelope(*first_line, &fe);
    if (!why.empty()) {
      return Status::Invalid("the first record of audit log " + path_ + " is not valid: " + why +
                             Advice(path_));
    }
    first_seq = fe.seq;
    if (ft->single) {
      // The only record of the file must chain to the newest rotated file (or start the chain).
      std::optional<FileTail> rt;
      DS_RETURN_IF_ERROR(rotated_tail(&rt));
      AuditPosition before = rt ? rt->last : AuditPosition{0, kZeroHash};
      if (last.seq != before.seq + 1 || ft->last_prev != before.hash) {
        return Status::Invalid("the record (seq " + std::to_string(last.seq) + ") of audit log " +
                               path_ + " does not chain to " +
                               (rt ? "the newest rotated file" : "the start of the chain") +
                               Advice(path_));
      }
    }
  }
  if (known_ && (last.seq < last_.seq || (last.seq == last_.seq && last.hash != last_.hash))) {
    return Status::Invalid("audit log " + path_ + " went backwards: it was at seq " +
                           std::to_string(last_.seq) + " and now ends at seq " +
                           std::to_string(last.seq) +
                           " (truncated, replaced or edited by someone else?)" + Advice(path_));
  }
  dev_ = st.st_dev;
  ino_ = st.st_ino;
  size_ = size;
  first_seq_ = first_seq;
  last_ = last;
  known_ = true;
  return Status::Ok();
}

Status AuditLog::RecordRemoval(const RemovalRecord& r) { return AppendRemoval(r).status(); }

Status AuditLog::RecordRemovals(const std::vector<RemovalRecord>& records) {
  std::vector<TypedFields> lines;
  lines.reserve(records.size());
  for (const RemovalRecord& r : records) lines.push_back({"removal", RemovalFields(r)});
  return AppendLines(lines).status();
}

Result<AuditPosition> AuditLog::AppendRemoval(const RemovalRecord& r) {
  return AppendLine("removal", RemovalFields(r));
}

std::string AuditLog::RemovalFields(const RemovalRecord& r) {
  std::string f;
  AddStringField(&f, "bucket", r.bucket);
  AddStringField(&f, "key", r.key);
  AddStringField(&f, "version_id", r.version_id);
  AddStringField(&f, "etag", r.etag);
  f += ",\"size\":" + std::to_string(r.size);
  AddStringField(&f, "cause", std::string(RemovalCauseName(r.cause)));
  AddStringField(&f, "event_id", r.event_id);
  AddStringField(&f, "event_name", r.event_name);
  AddStringField(&f, "outcome", std::string(RemovalOutcomeName(r.outcome)));
  return f;
}

Result<AuditPosition> AuditLog::Append(const std::string& type, const nlohmann::json& fields) {
  if (!IsTypeName(type)) {
    return Status::Invalid("audit record type '" + type +
                           "' is not [a-z][a-z0-9-]* of at most 64 bytes");
  }
  if (!fields.is_object()) return Status::Invalid("audit record fields must be a JSON object");
  std::string f;
  try {
    for (const auto& [name, value] : fields.items()) {
      if (IsReservedField(name)) {
        return Status::Invalid("audit record field name '" + name + "' is reserved");
      }
      if (HasFloat(value)) {
        return Status::Invalid("audit record field '" + name +
                               "' holds a floating-point number; only integers are allowed");
      }
      f += ',';
      f += nlohmann::json(name).dump();
      f += ':';
      f += value.dump();
    }
  } catch (const nlohmann::json::exception&) {
    return Status::Invalid("audit record fields hold a string that is not valid UTF-8");
  }
  return AppendLine(type, f);
}

AuditPosition AuditLog::last_position() const {
  std::lock_guard<std::mutex> l(mu_);
  return last_;
}

Result<AuditPosition> AuditLog::AppendLine(const std::string& type, const std::string& fields) {
  std::vector<TypedFields> one;
  one.push_back({type, fields});
  return AppendLines(one);
}

Status AuditLog::WritePending(std::string* pending, int64_t* pending_size,
                              AuditPosition pending_last, int64_t pending_first_seq) {
  if (pending->empty()) return Status::Ok();
  // Writes bytes [from, to) of pending.
  auto write_range = [&](size_t from, size_t to) -> Status {
    const char* p = pending->data() + from;
    size_t left = to - from;
    while (left > 0) {
      ssize_t n = ::write(fd_, p, left);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        std::string err = n < 0 ? Errno(errno) : "wrote nothing";
        // Take back our partial lines (nobody can have seen them: we hold the lock).
        if (::ftruncate(fd_, static_cast<off_t>(size_)) != 0 || ::fdatasync(fd_) != 0) {
          broken_ = "audit log " + path_ + " may end with a partial record after a failed write (" +
                    err + ")" + Advice(path_);
        }
        return Status::Io("cannot append to audit log " + path_ + ": " + err);
      }
      p += n;
      left -= static_cast<size_t>(n);
    }
    return Status::Ok();
  };
  // The reliability suite's torn append: half the bytes, then the crash.
  const size_t half = CrashPointArmed("audit-partial-write") ? pending->size() / 2 : 0;
  DS_RETURN_IF_ERROR(write_range(0, half));
  if (half > 0) CrashPoint("audit-partial-write");
  DS_RETURN_IF_ERROR(write_range(half, pending->size()));
  CrashPoint("audit-before-sync");
  if (::fdatasync(fd_) != 0) {
    std::string err = Errno(errno);
    // After a failed fdatasync the file's content on disk is unknown: stop appending.
    broken_ = "audit log " + path_ + ": fdatasync failed earlier (" + err +
              "); restart to re-read the log";
    return Status::Io("cannot fdatasync audit log " + path_ + ": " + err);
  }
  size_ += static_cast<int64_t>(pending->size());
  if (first_seq_ == 0) first_seq_ = pending_first_seq;
  last_ = pending_last;
  pending->clear();
  *pending_size = 0;
  return Status::Ok();
}

Result<AuditPosition> AuditLog::AppendLines(const std::vector<TypedFields>& records) {
  for (const TypedFields& r : records) {
    if (r.fields.size() > kMaxRecordBytes) {
      return Status::Invalid("audit record larger than 1 MiB");
    }
  }
  std::lock_guard<std::mutex> l(mu_);
  if (!broken_.empty()) return Status::Io(broken_);
  if (records.empty() && torn_note_.empty()) return last_;
  DS_RETURN_IF_ERROR(Lock());
  struct Unlocker {
    AuditLog* log;
    ~Unlocker() { log->Unlock(); }
  } unlocker{this};
  DS_RETURN_IF_ERROR(Refresh());
  // A torn record cut off by this process (LoadTail) is noted first.
  std::vector<TypedFields> noted;
  const bool note = !torn_note_.empty();
  if (note) {
    noted.push_back({"torn-tail", torn_note_});
    noted.insert(noted.end(), records.begin(), records.end());
  }
  const std::vector<TypedFields>& all = note ? noted : records;

  // Lines not yet written, chained after last_ (which moves only once they are durable).
  std::string pending;
  int64_t pending_size = 0;
  int64_t pending_first_seq = 0;
  AuditPosition tail = last_;
  const std::string now = JsonStr(FormatUtcMillis(clock_.NowMillis()));
  for (const TypedFields& r : all) {
    const int64_t seq = tail.seq + 1;
    std::string line = BuildLine(seq, now, tail.hash, r.type, r.fields, opts_.hmac_key);
    const std::string hash = Sha256Hex(line);
    line += '\n';

    // Rotation: the current file keeps at most max_bytes, and at least one record. Lines
    // waiting for the current file are written (and synced) before it is rotated.
    const int64_t file_size = size_ + pending_size;
    if (opts_.max_bytes > 0 && file_size > 0 &&
        static_cast<uint64_t>(file_size) + line.size() > opts_.max_bytes) {
      DS_RETURN_IF_ERROR(WritePending(&pending, &pending_size, tail, pending_first_seq));
      const std::string rotated =
          path_ + "." + std::to_string(first_seq_) + "-" + std::to_string(last_.seq);
      struct stat st {};
      if (::lstat(rotated.c_str(), &st) == 0) {
        return Status::Io("cannot rotate audit log " + path_ + ": " + rotated + " already exists");
      }
      if (::rename(path_.c_str(), rotated.c_str()) != 0) {
        return Status::Io("cannot rotate audit log " + path_ + " to " + rotated + ": " +
                          Errno(errno));
      }
      int fd = ::open(path_.c_str(), O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
      if (fd < 0) {
        return Status::Io("cannot create audit log " + path_ + " after rotation: " + Errno(errno));
      }
      spdlog::info("audit log rotated: {} holds seq {}..{}", rotated, first_seq_, last_.seq);
      ::close(fd_);
      fd_ = fd;
      if (::fstat(fd_, &st) != 0) return Status::Io("cannot stat " + path_ + ": " + Errno(errno));
      dev_ = st.st_dev;
      ino_ = st.st_ino;
      size_ = 0;
      first_seq_ = 0;
      DS_RETURN_IF_ERROR(FsyncDir(path_));
    }
    if (pending.empty()) pending_first_seq = seq;
    pending += line;
    pending_size += static_cast<int64_t>(line.size());
    tail = {seq, hash};
  }
  DS_RETURN_IF_ERROR(WritePending(&pending, &pending_size, tail, pending_first_seq));
  if (note) torn_note_.clear();
  return last_;
}

}  // namespace ds
