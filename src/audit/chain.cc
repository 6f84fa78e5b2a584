// The audit log. The format is specified in docs/AUDIT_FORMAT.md; keep the two in step.
#include "audit/chain.h"

#include <dirent.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <iterator>
#include <string_view>
#include <thread>
#include <utility>

#include "common/crash_point.h"
#include "crypto/digest.h"
#include "fs/unique_fd.h"

namespace ds {
namespace {

using ojson = nlohmann::ordered_json;

constexpr size_t kHashHexLen = 64;
const std::string kZeroHash(kHashHexLen, '0');
// A line with an HMAC ends with these 75 bytes: ,"hmac":"<64 hex>"}
constexpr std::string_view kHmacPrefix = ",\"hmac\":\"";
constexpr size_t kHmacSuffixLen = 9 + kHashHexLen + 2;
constexpr size_t kMaxRecordBytes = 1u << 20;
constexpr size_t kMaxTypeLen = 64;
constexpr int64_t kMaxKeyFileBytes = 64 * 1024;

std::string Errno(int err) { return std::strerror(err); }

using crypto::Base64;
using crypto::Sha256Hex;
std::string HmacHex(const std::string& key, std::string_view data) {
  return crypto::HmacSha256Hex(key, data);
}

// RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF.
bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len = 0;
    uint32_t cp = 0;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
      cp = c & 0x1Fu;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      cp = c & 0x0Fu;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      cp = c & 0x07u;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3Fu);
    }
    if (len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) return false;
    if (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) return false;
    i += len;
  }
  return true;
}

bool IsLowerHex64(const std::string& s) {
  return s.size() == kHashHexLen && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

bool IsTypeName(const std::string& s) {
  if (s.empty() || s.size() > kMaxTypeLen || s[0] < 'a' || s[0] > 'z') return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

// "YYYY-MM-DDTHH:MM:SS.mmmZ"
bool IsUtcMillis(const std::string& s) {
  static const char kPattern[] = "dddd-dd-ddTdd:dd:dd.dddZ";
  if (s.size() != sizeof kPattern - 1) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (kPattern[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != kPattern[i]) return false;
  }
  return true;
}

bool IsReservedField(const std::string& name) {
  return name == "seq" || name == "time" || name == "prev" || name == "type" || name == "hmac";
}

template <typename J>
bool HasFloat(const J& j) {
  if (j.is_number_float()) return true;
  if (j.is_structured()) {
    for (const auto& v : j) {
      if (HasFloat(v)) return true;
    }
  }
  return false;
}

// A string as canonical JSON (the string must be valid UTF-8).
std::string JsonStr(const std::string& s) { return nlohmann::json(s).dump(); }

// ,"name":"value" or, when value is not valid UTF-8, ,"name_b64":"<base64>"
void AddStringField(std::string* out, const char* name, const std::string& value) {
  *out += ",\"";
  *out += name;
  if (IsValidUtf8(value)) {
    *out += "\":";
    *out += JsonStr(value);
  } else {
    *out += "_b64\":\"";
    *out += Base64(value);
    *out += '"';
  }
}

// What a verifier reads from a record's line: the envelope members.
struct Envelope {
  int64_t seq = 0;
  std::string prev;
  bool has_hmac = false;
  std::string hmac;
};

// Checks that `line` (without its newline) is one canonical record; returns "" or the reason.
// On failure `e->seq` is the record's seq when it could be read, else 0.
std::string ParseEnvelope(const std::string& line, Envelope* e) {
  *e = Envelope{};
  ojson j;
  try {
    j = ojson::parse(line);
  } catch (const nlohmann::json::parse_error& ex) {
    return "not valid JSON (error at byte " + std::to_string(ex.byte) + " of the line)";
  }
  if (!j.is_object()) return "not a JSON object";
  static const char* const kHead[] = {"seq", "time", "prev", "type"};
  auto it = j.begin();
  for (const char* name : kHead) {
    if (it == j.end() || it.key() != name) {
      return "the record does not begin with the members seq, time, prev, type in this order";
    }
    ++it;
  }
  const ojson& seq = j["seq"];
  if (!seq.is_number_integer()) return "seq is not an integer";
  if (seq.is_number_unsigned() ? seq.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)
                               : seq.get<int64_t>() < 1) {
    return "seq is out of range";
  }
  e->seq = seq.get<int64_t>();
  if (!j["time"].is_string() || !IsUtcMillis(j["time"].get<std::string>())) {
    return "time is not a UTC timestamp YYYY-MM-DDTHH:MM:SS.mmmZ";
  }
  if (!j["prev"].is_string() || !IsLowerHex64(j["prev"].get<std::string>())) {
    return "prev is not 64 lowercase hex digits";
  }
  e->prev = j["prev"].get<std::string>();
  if (!j["type"].is_string() || !IsTypeName(j["type"].get<std::string>())) {
    return "type is not a record type name ([a-z][a-z0-9-]*)";
  }
  auto h = j.find("hmac");
  if (h != j.end()) {
    if (std::next(h) != j.end()) return "hmac is not the last member";
    if (!h->is_string() || !IsLowerHex64(h->get<std::string>())) {
      return "hmac is not 64 lowercase hex digits";
    }
    e->has_hmac = true;
    e->hmac = h->get<std::string>();
  }
  if (HasFloat(j)) return "holds a floating-point number (only integers are allowed)";
  if (j.dump() != line) {
    return "not in canonical form (its spacing, escaping or numbers differ from the canonical "
           "serialisation)";
  }
  return "";
}

// HMAC-SHA-256 over the line's bytes before ,"hmac": (the line ends with kHmacSuffixLen bytes).
bool HmacMatches(const std::string& key, const std::string& line, const Envelope& e) {
  if (!e.has_hmac || line.size() < kHmacSuffixLen) return false;
  std::string want = HmacHex(key, std::string_view(line).substr(0, line.size() - kHmacSuffixLen));
  return CRYPTO_memcmp(want.data(), e.hmac.data(), kHashHexLen) == 0;
}

// ---- files ----

Status FsyncDir(const std::string& file_path) {
  std::string dir = file_path;
  size_t slash = dir.rfind('/');
  dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : dir.substr(0, slash));
  UniqueFd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (d.get() < 0) return Status::Io("cannot open folder " + dir + ": " + Errno(errno));
  if (::fsync(d.get()) != 0) return Status::Io("cannot fsync folder " + dir + ": " + Errno(errno));
  return Status::Ok();
}

Status PreadAll(int fd, char* buf, size_t n, int64_t off, const std::string& name) {
  while (n > 0) {
    ssize_t r = ::pread(fd, buf, n, static_cast<off_t>(off));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Status::Io("cannot read " + name + ": " + Errno(errno));
    if (r == 0) return Status::Io("cannot read " + name + ": unexpected end of file");
    buf += r;
    n -= static_cast<size_t>(r);
    off += r;
  }
  return Status::Ok();
}

// The last complete lines of a file of `size` bytes (up to two, in file order, without their
// newlines), or, when it does not end with a newline, the offset where its partial line starts.
struct Tail {
  bool ends_with_newline = true;
  int64_t partial_start = 0;
  std::vector<std::string> lines;
};

Result<Tail> ReadTail(int fd, int64_t size, const std::string& name) {
  Tail t;
  if (size == 0) return t;
  constexpr int64_t kChunk = 64 * 1024;
  std::string buf;  // bytes [pos, size)
  int64_t pos = size;
  // Newlines wanted before the last byte: 2 for two complete lines, 1 for the partial's start.
  for (;;) {
    int64_t n = std::min(kChunk, pos);
    pos -= n;
    std::string chunk(static_cast<size_t>(n), '\0');
    DS_RETURN_IF_ERROR(PreadAll(fd, chunk.data(), chunk.size(), pos, name));
    buf.insert(0, chunk);
    t.ends_with_newline = buf.back() == '\n';
    size_t wanted = t.ends_with_newline ? 2 : 1;
    size_t found = static_cast<size_t>(std::count(buf.begin(), buf.end() - 1, '\n'));
    if (found >= wanted || pos == 0) break;
  }
  if (!t.ends_with_newline) {
    size_t nl = buf.rfind('\n');
    t.partial_start = pos + (nl == std::string::npos ? 0 : static_cast<int64_t>(nl) + 1);
    return t;
  }
  // Split buf[.. size-1) on '\n'; the first piece is whole only when pos == 0.
  std::string body = buf.substr(0, buf.size() - 1);
  std::vector<std::string> pieces;
  size_t start = 0;
  for (;;) {
    size_t nl = body.find('\n', start);
    pieces.push_back(body.substr(start, nl == std::string::npos ? std::string::npos : nl - start));
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  if (pos != 0) pieces.erase(pieces.begin());
  size_t keep = std::min<size_t>(2, pieces.size());
  t.lines.assign(pieces.end() - static_cast<std::ptrdiff_t>(keep), pieces.end());
  return t;
}

Result<std::string> ReadFirstLine(int fd, int64_t size, const std::string& name) {
  std::string line;
  int64_t off = 0;
  while (off < size) {
    std::string chunk(static_cast<size_t>(std::min<int64_t>(64 * 1024, size - off)), '\0');
    DS_RETURN_IF_ERROR(PreadAll(fd, chunk.data(), chunk.size(), off, name));
    size_t nl = chunk.find('\n');
    if (nl != std::string::npos) return line + chunk.substr(0, nl);
    line += chunk;
    off += static_cast<int64_t>(chunk.size());
  }
  return line;
}

// A rotated file "<base>.<first>-<last>" of the log "<dir>/<base>".
struct Rotated {
  int64_t first = 0, last = 0;
  std::string path;  // the log's path + ".<first>-<last>"
};

// Decimal without sign or leading zeros, 1..INT64_MAX.
bool ParseSeq(std::string_view s, int64_t* out) {
  if (s.empty() || s.size() > 19 || s[0] == '0') return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v > static_cast<uint64_t>(INT64_MAX)) return false;
  *out = static_cast<int64_t>(v);
  return true;
}

// The rotated files of the log at `path`, by first seq.
Result<std::vector<Rotated>> ListRotated(const std::string& path) {
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  std::vector<Rotated> out;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return Status::Io("cannot list folder " + dir + ": " + Errno(errno));
  const std::string prefix = base + ".";
  while (dirent* ent = ::readdir(d)) {
    std::string_view name(ent->d_name);
    if (name.size() <= prefix.size() || name.substr(0, prefix.size()) != prefix) continue;
    std::string_view rest = name.substr(prefix.size());
    size_t dash = rest.find('-');
    if (dash == std::string_view::npos) continue;
    Rotated r;
    if (!ParseSeq(rest.substr(0, dash), &r.first) || !ParseSeq(rest.substr(dash + 1), &r.last)) {
      continue;
    }
    r.path = path + "." + std::string(rest);
    out.push_back(std::move(r));
  }
  ::closedir(d);
  std::sort(out.begin(), out.end(), [](const Rotated& a, const Rotated& b) {
    return a.first != b.first ? a.first < b.first : a.last < b.last;
  });
  return out;
}

std::string Advice(const std::string& path) {
  return "; refusing to append. Run `delete-sync audit verify --log " + path +
         "` and see docs/AUDIT_FORMAT.md (Crashes and truncation)";
}

// The validated last record of one file (size > 0) and, when the file has two or more, the
// check that the last one chains to the one before it.
struct FileTail {
  AuditPosition last;
  std::string last_prev;  // the last record's "prev"
  bool single = false;    // the file holds one record
};

Result<FileTail> CheckFileTail(const std::string& name, int fd, int64_t size,
                               const std::optional<std::string>& key) {
  Result<Tail> t = ReadTail(fd, size, name);
  if (!t.ok()) return t.status();
  if (!t->ends_with_newline) {
    return Status::Invalid("audit log " + name + " ends with an incomplete record (bytes " +
                           std::to_string(t->partial_start) + ".." + std::to_string(size) +
                           " have no newline: a crash during an append, or a cut file)");
  }
  const std::string& line = t->lines.back();
  Envelope e;
  std::string why = ParseEnvelope(line, &e);
  if (!why.empty()) {
    return Status::Invalid("the last record of audit log " + name + " is not valid: " + why);
  }
  if (key && !e.has_hmac) {
    return Status::Invalid("audit log " + name +
                           " was written without an HMAC key but --audit-hmac-key is set; a "
                           "log is HMAC'd from its first record or not at all (start a new log "
                           "to start using a key)");
  }
  if (!key && e.has_hmac) {
    return Status::Invalid("audit log " + name +
                           " carries HMACs but no --audit-hmac-key is set; give the key it was "
                           "written with");
  }
  if (key && !HmacMatches(*key, line, e)) {
    return Status::Invalid("the HMAC of the last record (seq " + std::to_string(e.seq) +
                           ") of audit log " + name +
                           " does not match --audit-hmac-key (a different key, or an edited "
                           "record)");
  }
  FileTail ft;
  ft.last = {e.seq, Sha256Hex(line)};
  ft.last_prev = e.prev;
  ft.single = t->lines.size() == 1;
  if (!ft.single) {
    const std::string& before = t->lines.front();
    Envelope pe;
    why = ParseEnvelope(before, &pe);
    if (!why.empty()) {
      return Status::Invalid("the second-to-last record of audit log " + name +
                             " is not valid: " + why);
    }
    if (e.seq != pe.seq + 1 || e.prev != Sha256Hex(before)) {
      return Status::Invalid("the last record (seq " + std::to_string(e.seq) + ") of audit log " +
                             name + " does not chain to the record before it");
    }
  }
  return ft;
}

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

Result<std::string> LoadHmacKey(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    int err = errno;
    std::string m = "cannot read HMAC key file " + path + ": " + Errno(err);
    return err == ENOENT ? Status::NotFound(m) : Status::Io(m);
  }
  if (!S_ISREG(st.st_mode)) {
    return Status::Invalid("HMAC key file " + path + " is not a regular file");
  }
  if (st.st_size > kMaxKeyFileBytes) {
    return Status::Invalid("HMAC key file " + path + " is larger than 64 KiB: not a key file?");
  }
  UniqueFd f(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (f.get() < 0) return Status::Io("cannot read HMAC key file " + path + ": " + Errno(errno));
  std::string key;
  char buf[4096];
  for (;;) {
    ssize_t r = ::read(f.get(), buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Status::Io("cannot read HMAC key file " + path + ": " + Errno(errno));
    if (r == 0) break;
    key.append(buf, static_cast<size_t>(r));
    if (static_cast<int64_t>(key.size()) > kMaxKeyFileBytes) {
      return Status::Invalid("HMAC key file " + path + " is larger than 64 KiB: not a key file?");
    }
  }
  while (!key.empty() && (key.back() == '\n' || key.back() == '\r')) key.pop_back();
  if (key.empty()) return Status::Invalid("HMAC key file " + path + " is empty");
  if ((st.st_mode & (S_IRGRP | S_IROTH)) != 0) {
    spdlog::warn(
        "HMAC key file {} can be read by its group or by others (mode {:04o}); "
        "chmod 600 it",
        path, static_cast<unsigned>(st.st_mode & 07777));
  }
  if (key.size() < 16) {
    spdlog::warn("HMAC key in {} is only {} bytes; use at least 32 random bytes", path, key.size());
  }
  return key;
}

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
    std::string line = "{\"seq\":" + std::to_string(seq) + ",\"time\":" + now + ",\"prev\":\"" +
                       tail.hash + "\",\"type\":" + JsonStr(r.type) + r.fields;
    if (opts_.hmac_key) {
      std::string mac = HmacHex(*opts_.hmac_key, line);
      line += kHmacPrefix;
      line += mac;
      line += '"';
    }
    line += '}';
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
