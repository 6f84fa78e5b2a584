// PosixCache itself (posix_cache.h): opening the cache, Remove and Stat of one path, and the
// disk reserve. Its other parts: see posix_cache_internal.h.
#include "fs/posix_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/crash_point.h"
#include "core/cache_layout.h"
#include "fs/posix.h"
#include "fs/posix_cache_internal.h"

namespace ds {
namespace posix_cache_internal {
namespace {

constexpr mode_t kPrivateDirMode = 0700;

// Creates (mode 0700 + owner) or opens a service folder, refusing symbolic links.
Result<UniqueFd> OpenPrivateDir(const State& st, int parent, const char* name,
                                const std::string& path) {
  bool created = false;
  if (::mkdirat(parent, name, kPrivateDirMode) == 0) {
    created = true;
  } else if (errno != EEXIST) {
    return posix::PosixError("create folder " + path, errno);
  }
  UniqueFd fd(::openat(parent, name, kDirOpenFlags));
  if (!fd.valid()) {
    if (errno == ELOOP || errno == ENOTDIR) {
      return Status::Invalid("cache folder " + path + " is a symbolic link or not a folder");
    }
    return posix::PosixError("open folder " + path, errno);
  }
  if (created) {
    DS_RETURN_IF_ERROR(ApplyOwnerAndMode(st, fd.get(), kPrivateDirMode, "folder " + path));
    DS_RETURN_IF_ERROR(posix::FsyncFd(parent, "folder holding " + path));
  }
  if (::faccessat(fd.get(), ".", W_OK | X_OK, AT_EACCESS) != 0) {
    return Status::Denied("cache folder " + path + " is not writable by uid " +
                          std::to_string(::geteuid()) + ": " + posix::ErrnoText(errno));
  }
  return fd;
}

// PosixCache::Open: the State of the cache at `root`.
Result<std::shared_ptr<State>> OpenState(const std::string& root, const PosixCacheOptions& opts) {
  if (root.empty()) return Status::Invalid("cache root is empty");
  if (root.find('\0') != std::string::npos) {
    return Status::Invalid("cache root " + Quoted(root) + " contains a NUL byte");
  }
  if ((opts.file_mode & ~07777) != 0 || (opts.dir_mode & ~07777) != 0) {
    return Status::Invalid("cache file_mode/dir_mode must be permission bits (at most 07777)");
  }
  auto st = std::make_shared<State>();
  st->root_path = root;
  st->opts = opts;

  bool created = false;
  if (::mkdir(root.c_str(), opts.dir_mode) == 0) {
    created = true;
  } else if (errno != EEXIST) {
    int err = errno;
    if (err == ENOENT) {
      return Status::Invalid("cannot create cache root " + Quoted(root) +
                             ": its parent folder does not exist");
    }
    if (err == ENOTDIR) return Status::Invalid("cache root " + Quoted(root) + " is not a folder");
    return posix::PosixError("create cache root " + Quoted(root), err);
  }
  st->root = UniqueFd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!st->root.valid()) {
    int err = errno;
    if (err == ENOTDIR) return Status::Invalid("cache root " + Quoted(root) + " is not a folder");
    return posix::PosixError("open cache root " + Quoted(root), err);
  }
  if (created) {
    DS_RETURN_IF_ERROR(
        ApplyOwnerAndMode(*st, st->root.get(), opts.dir_mode, "cache root " + Quoted(root)));
  }
  if (::faccessat(st->root.get(), ".", W_OK | X_OK, AT_EACCESS) != 0) {
    int err = errno;
    if (err == EROFS) {
      return Status::Denied("cache root " + Quoted(root) + " is on a read-only file system");
    }
    return Status::Denied("cache root " + Quoted(root) + " is not writable by uid " +
                          std::to_string(::geteuid()) + ": " + posix::ErrnoText(err));
  }
  const std::string reserved_path = root + "/" + kReservedDir;
  auto reserved = OpenPrivateDir(*st, st->root.get(), kReservedDir, Quoted(reserved_path));
  if (!reserved.ok()) return reserved.status();
  st->reserved = std::move(*reserved);
  auto tmp = OpenPrivateDir(*st, st->reserved.get(), "tmp", Quoted(reserved_path + "/tmp"));
  if (!tmp.ok()) return tmp.status();
  st->tmp = std::move(*tmp);
  st->host_token = MakeHostToken();
  return st;
}

// PosixCache::Remove.
Result<bool> RemoveFile(const State& st, const std::string& rel_path) {
  auto segs = SplitRelPath(rel_path);
  if (!segs.ok()) return segs.status();
  DirChain chain;
  Result<bool> removed = UnlinkFile(st, rel_path, *segs, &chain);
  if (!removed.ok() || !*removed) return removed;
  const std::string where = Quoted(rel_path) + " in cache " + st.root_path;
  // The unlink must be durable before the caller acknowledges the deletion.
  DS_RETURN_IF_ERROR(posix::FsyncFd(chain.last(), "folder of " + where));
  if (segs->size() > 1) CrashPoint("removal-before-prune");
  PruneEmpty(chain, *segs, segs->size() - 1, where);
  return true;
}

// PosixCache::Stat.
Result<CacheEntryInfo> StatFile(const State& st, const std::string& rel_path) {
  auto segs = SplitRelPath(rel_path);
  if (!segs.ok()) return segs.status();
  auto chain = OpenDirs(st, rel_path, *segs, segs->size() - 1, /*create=*/false);
  if (!chain.ok()) {
    if (chain.status().code() == Code::kNotFound) return CacheEntryInfo{};
    return chain.status();
  }
  return StatIn(st, rel_path, chain->last(), segs->back());
}

// PosixCache::EnsureReserve.
Status EnsureReserveFile(const State& st, uint64_t bytes) {
  if (bytes == 0) return Status::Ok();
  struct stat sb;
  if (::fstatat(st.reserved.get(), "reserve", &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
      S_ISREG(sb.st_mode) && static_cast<uint64_t>(sb.st_size) >= bytes) {
    return Status::Ok();
  }
  const std::string what = CacheLayout(st.root_path).Reserve();
  // A name of this process's own: several processes (and hosts) may make the reserve at once.
  const std::string temp = MakeTempName(st.host_token) + ".reserve";
  UniqueFd fd(::openat(st.reserved.get(), temp.c_str(),
                       O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (fd.get() < 0) return posix::PosixError("create " + what, errno);
  int rc = ::posix_fallocate(fd.get(), 0, static_cast<off_t>(bytes));
  if (rc == EOPNOTSUPP || rc == EINVAL) {
    // No fallocate here (some NFS servers): write the bytes.
    std::string zeros(64 * 1024, '\0');
    rc = 0;
    for (uint64_t done = 0; done < bytes && rc == 0;) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(zeros.size(), bytes - done));
      ssize_t w = ::write(fd.get(), zeros.data(), n);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0)
        rc = errno;
      else
        done += static_cast<uint64_t>(w);
    }
  }
  if (rc == 0 && ::fsync(fd.get()) != 0) rc = errno;
  if (rc != 0) {
    ::unlinkat(st.reserved.get(), temp.c_str(), 0);
    // Not enough space for it: the reserve stays missing (HasReserve says so).
    if (rc == ENOSPC || rc == EDQUOT) return Status::Ok();
    return posix::PosixError("allocate " + what, rc);
  }
  if (::renameat(st.reserved.get(), temp.c_str(), st.reserved.get(), "reserve") != 0) {
    int err = errno;
    ::unlinkat(st.reserved.get(), temp.c_str(), 0);
    return posix::PosixError("rename into " + what, err);
  }
  return Status::Ok();
}

// PosixCache::ReleaseReserve.
Result<bool> ReleaseReserveFile(const State& st) {
  if (::unlinkat(st.reserved.get(), "reserve", 0) == 0) return true;
  if (errno == ENOENT) return false;
  return posix::PosixError("remove " + CacheLayout(st.root_path).Reserve(), errno);
}

// PosixCache::HasReserve.
Result<bool> HasReserveFile(const State& st) {
  struct stat sb;
  if (::fstatat(st.reserved.get(), "reserve", &sb, AT_SYMLINK_NOFOLLOW) == 0) return true;
  if (errno == ENOENT) return false;
  return posix::PosixError("stat " + CacheLayout(st.root_path).Reserve(), errno);
}

// PosixCache::FreeBytes.
Result<uint64_t> FreeBytesOf(const State& st) {
  struct statvfs vfs;
  if (::fstatvfs(st.reserved.get(), &vfs) != 0) {
    return posix::PosixError("statvfs " + st.root_path, errno);
  }
  return static_cast<uint64_t>(vfs.f_bavail) * static_cast<uint64_t>(vfs.f_frsize);
}

}  // namespace
}  // namespace posix_cache_internal

PosixCache::PosixCache(std::shared_ptr<const posix_cache_internal::State> state)
    : state_(std::move(state)) {}

PosixCache::~PosixCache() = default;

const std::string& PosixCache::root() const { return state_->root_path; }

Result<std::unique_ptr<PosixCache>> PosixCache::Open(const std::string& root,
                                                     const PosixCacheOptions& opts) {
  Result<std::shared_ptr<posix_cache_internal::State>> st =
      posix_cache_internal::OpenState(root, opts);
  if (!st.ok()) return st.status();
  return std::unique_ptr<PosixCache>(new PosixCache(std::move(st).value()));
}

Result<bool> PosixCache::Remove(const std::string& rel_path) {
  return posix_cache_internal::RemoveFile(*state_, rel_path);
}

Result<CacheEntryInfo> PosixCache::Stat(const std::string& rel_path) {
  return posix_cache_internal::StatFile(*state_, rel_path);
}

Status PosixCache::EnsureReserve(uint64_t bytes) {
  return posix_cache_internal::EnsureReserveFile(*state_, bytes);
}

Result<bool> PosixCache::ReleaseReserve() {
  return posix_cache_internal::ReleaseReserveFile(*state_);
}

Result<bool> PosixCache::HasReserve() { return posix_cache_internal::HasReserveFile(*state_); }

Result<uint64_t> PosixCache::FreeBytes() { return posix_cache_internal::FreeBytesOf(*state_); }

}  // namespace ds
