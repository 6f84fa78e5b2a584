// The files of an audit log (log_files.h): reading them, listing the rotated ones.
#include "audit/log_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <string_view>
#include <utility>

#include "audit/record.h"
#include "crypto/digest.h"
#include "fs/unique_fd.h"

namespace ds::audit_internal {
namespace {

using crypto::Sha256Hex;

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

}  // namespace

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

}  // namespace ds::audit_internal
