// The safe path walk of PosixCache (posix_cache_internal.h): relative paths are checked and
// split, then resolved one folder at a time from the root's descriptor with openat + O_NOFOLLOW,
// so that a symbolic link inside the cache never leads outside it; and the one-entry operations
// done at a folder descriptor reached that way.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "common/crash_point.h"
#include "core/key_path.h"
#include "fs/posix.h"
#include "fs/posix_cache_internal.h"

namespace ds::posix_cache_internal {
namespace {

// Opens the folders segs[0..count-1] one by one without following symbolic links.
// create=false: a missing component, or one that is a file, gives kNotFound.
// create=true: missing folders are created (dir_mode, owner, fsync of the folder holding them);
// a component that is a file gives kConflict.
// Either way a component that is a symbolic link gives kConflict.
// Sets `restart` when a folder we hold was removed under us (pruned by a concurrent Remove)
// while we tried to create something in it: the caller walks again from the root.
Result<DirChain> OpenDirsOnce(const State& st, const std::string& rel,
                              const std::vector<std::string>& segs, size_t count, bool create,
                              bool& restart) {
  DirChain chain;
  chain.root = st.root.get();
  chain.dirs.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    const std::string& seg = segs[i];
    const int cur = chain.last();
    auto where = [&] { return Quoted(JoinPrefix(segs, i + 1)) + " in cache " + st.root_path; };
    for (int attempt = 0;; ++attempt) {
      int fd = ::openat(cur, seg.c_str(), kDirOpenFlags);
      if (fd >= 0) {
        chain.dirs.emplace_back(fd);
        break;
      }
      int err = errno;
      if (err == EINTR) continue;
      if (attempt >= kMaxRaceRetries) return posix::PosixError("open folder " + where(), err);
      if (err == ENOENT) {
        if (!create) return Status::NotFound("folder " + where() + " does not exist");
        if (::mkdirat(cur, seg.c_str(), st.opts.dir_mode) != 0) {
          if (errno == EEXIST) continue;  // a concurrent creator, or a file: open again.
          if (errno == ENOENT && i > 0) {
            restart = true;
            return Status::Unavailable("folder " + Quoted(JoinPrefix(segs, i)) +
                                       " was removed while creating " + where());
          }
          return posix::PosixError("create folder " + where(), errno);
        }
        UniqueFd made(::openat(cur, seg.c_str(), kDirOpenFlags));
        if (!made.valid()) {
          if (errno == ENOENT || errno == ELOOP || errno == ENOTDIR) continue;  // raced
          return posix::PosixError("open new folder " + where(), errno);
        }
        DS_RETURN_IF_ERROR(
            ApplyOwnerAndMode(st, made.get(), st.opts.dir_mode, "folder " + where()));
        DS_RETURN_IF_ERROR(posix::FsyncFd(cur, "folder holding " + where()));
        chain.dirs.push_back(std::move(made));
        break;
      }
      if (err == ELOOP || err == ENOTDIR) {
        struct stat sb;
        if (::fstatat(cur, seg.c_str(), &sb, AT_SYMLINK_NOFOLLOW) != 0) {
          if (errno == ENOENT) continue;  // vanished meanwhile
          return posix::PosixError("stat " + where(), errno);
        }
        if (S_ISLNK(sb.st_mode)) {
          return Status::Conflict("refusing cache path " + Quoted(rel) + ": path component " +
                                  Quoted(JoinPrefix(segs, i + 1)) + " is a symbolic link");
        }
        if (S_ISDIR(sb.st_mode)) continue;  // replaced by a folder meanwhile
        if (!create) return Status::NotFound(Quoted(JoinPrefix(segs, i + 1)) + " is not a folder");
        return Status::Conflict(
            "cannot create folder " + Quoted(JoinPrefix(segs, i + 1)) + " for key " + Quoted(rel) +
            ": a " + (S_ISREG(sb.st_mode) ? "file" : "non-folder entry") + " of that name exists");
      }
      return posix::PosixError("open folder " + where(), err);
    }
  }
  return chain;
}

}  // namespace

// For messages: control bytes (and NUL) as \xNN, the rest as is.
// One printable form of a key for every message (core/key_path.h), here without truncation:
// an error names the whole path.
std::string Printable(const std::string& s) { return PrintableKey(s, std::string::npos); }

std::string Quoted(const std::string& s) { return "'" + Printable(s) + "'"; }

// Checks a relative cache path and splits it into segments.
Result<std::vector<std::string>> SplitRelPath(const std::string& rel) {
  auto bad = [&rel](const std::string& why) {
    return Status::Invalid("invalid cache path " + Quoted(rel) + ": " + why);
  };
  if (rel.empty()) return bad("empty");
  if (rel.find('\0') != std::string::npos) return bad("contains a NUL byte");
  if (rel.front() == '/') return bad("absolute");
  std::vector<std::string> segs;
  size_t start = 0;
  while (true) {
    size_t slash = rel.find('/', start);
    std::string seg =
        rel.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (seg.empty()) return bad("empty path segment");
    if (seg == "." || seg == "..") return bad("'.' or '..' segment");
    if (seg.size() > kMaxSegment) return bad("segment longer than 255 bytes");
    segs.push_back(std::move(seg));
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  if (segs.front() == kReservedDir) return bad("inside the reserved folder");
  return segs;
}

std::string JoinPrefix(const std::vector<std::string>& segs, size_t count) {
  std::string out;
  for (size_t i = 0; i < count; ++i) {
    if (i > 0) out += '/';
    out += segs[i];
  }
  return out;
}

Status ApplyOwnerAndMode(const State& st, int fd, mode_t mode, const std::string& what) {
  if (st.opts.uid || st.opts.gid) {
    uid_t uid = st.opts.uid ? static_cast<uid_t>(*st.opts.uid) : static_cast<uid_t>(-1);
    gid_t gid = st.opts.gid ? static_cast<gid_t>(*st.opts.gid) : static_cast<gid_t>(-1);
    if (::fchown(fd, uid, gid) != 0) return posix::PosixError("chown " + what, errno);
  }
  // After chown: chown may clear set-id bits.
  if (::fchmod(fd, mode) != 0) return posix::PosixError("chmod " + what, errno);
  return Status::Ok();
}

Result<DirChain> OpenDirs(const State& st, const std::string& rel,
                          const std::vector<std::string>& segs, size_t count, bool create) {
  for (int attempt = 0;; ++attempt) {
    bool restart = false;
    auto chain = OpenDirsOnce(st, rel, segs, count, create, restart);
    if (chain.ok() || !restart || attempt >= kMaxRaceRetries) return chain;
  }
}

// A fresh stream over folder `dir_fd` (its own offset, so concurrent listings don't interfere).
Result<DirPtr> OpenListing(int dir_fd, const std::string& what) {
  UniqueFd fd(::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return posix::PosixError("open folder " + what, errno);
  DIR* d = ::fdopendir(fd.get());
  if (d == nullptr) return posix::PosixError("list folder " + what, errno);
  fd.release();
  return DirPtr(d);
}

// Unlinks the file `last` of the folder `parent` (the folder of `rel_path`). true: unlinked;
// false: nothing there.
Result<bool> UnlinkIn(const State& st, const std::string& rel_path, int parent,
                      const std::string& last) {
  if (::unlinkat(parent, last.c_str(), 0) != 0) {
    int err = errno;
    if (err == ENOENT) return false;
    struct stat sb;
    if (err == EISDIR ||
        (err == EPERM && ::fstatat(parent, last.c_str(), &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
         S_ISDIR(sb.st_mode))) {
      return Status::Conflict("cannot remove " + Quoted(rel_path) + ": it is a folder");
    }
    return posix::PosixError("remove " + Quoted(rel_path) + " in cache " + st.root_path, err);
  }
  CrashPoint("removal-unlinked");
  return true;
}

// Unlinks the file at `rel_path` (split into `segs`). true: unlinked, and `chain` holds the
// folders down to the file's folder (not yet fsynced). false: nothing there.
Result<bool> UnlinkFile(const State& st, const std::string& rel_path,
                        const std::vector<std::string>& segs, DirChain* chain) {
  const size_t depth = segs.size() - 1;  // folders above the file
  auto opened = OpenDirs(st, rel_path, segs, depth, /*create=*/false);
  if (!opened.ok()) {
    if (opened.status().code() == Code::kNotFound) return false;
    return opened.status();
  }
  Result<bool> removed = UnlinkIn(st, rel_path, opened->last(), segs.back());
  if (removed.ok() && *removed) *chain = std::move(*opened);
  return removed;
}

// What is at `last` in the folder `parent` (the folder of `rel_path`), without following a
// symbolic link (PosixCache::Stat).
Result<CacheEntryInfo> StatIn(const State& st, const std::string& rel_path, int parent,
                              const std::string& last) {
  struct stat sb;
  if (::fstatat(parent, last.c_str(), &sb, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return CacheEntryInfo{};
    return posix::PosixError("stat " + Quoted(rel_path) + " in cache " + st.root_path, errno);
  }
  CacheEntryInfo info;
  info.exists = true;
  info.is_dir = S_ISDIR(sb.st_mode);
  info.size = info.is_dir ? 0 : static_cast<uint64_t>(sb.st_size);
  return info;
}

// Removes the folders of `chain` (the first `depth` of `segs`) that are empty, deepest first,
// never the root (level 0). Any failure (ENOTEMPTY/EEXIST: not empty or a concurrent writer;
// ENOENT: pruned by someone else; ...) just ends the pruning. Best effort: pruning is tidying
// up, its durability is not something we acknowledge.
void PruneEmpty(const DirChain& chain, const std::vector<std::string>& segs, size_t depth,
                const std::string& where) {
  size_t level = depth;
  while (level > 0) {
    if (::unlinkat(chain.at(level - 1), segs[level - 1].c_str(), AT_REMOVEDIR) != 0) break;
    --level;
  }
  if (level < depth) (void)posix::FsyncFd(chain.at(level), "folder after pruning " + where);
}

}  // namespace ds::posix_cache_internal
