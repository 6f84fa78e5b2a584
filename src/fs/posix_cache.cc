#include "fs/posix_cache.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <type_traits>
#include <utility>
#include <vector>

#include "common/crash_point.h"
#include "fs/parallel.h"
#include "fs/unique_fd.h"

namespace ds {
namespace posix_cache_internal {

struct State {
  std::string root_path;
  UniqueFd root;
  UniqueFd reserved;
  UniqueFd tmp;
  PosixCacheOptions opts;
  std::string host_token;  // "<hostname>.<pid namespace inode>", see posix_cache.h
};

}  // namespace posix_cache_internal

namespace {

using posix_cache_internal::State;

constexpr int kDirOpenFlags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
// Bounds the retries of races with concurrent creators / pruners of the same folders.
constexpr int kMaxRaceRetries = 16;
constexpr size_t kMaxSegment = 255;  // NAME_MAX on Linux file systems
constexpr mode_t kPrivateDirMode = 0700;
constexpr char kTempPrefix[] = "dl-";
constexpr char kTempSuffix[] = ".part";

// GNU and XSI strerror_r differ in return type; accept both.
[[maybe_unused]] const char* StrerrorResult(int rc, const char* buf) {
  return rc == 0 ? buf : "unknown error";
}
[[maybe_unused]] const char* StrerrorResult(const char* result, const char* /*buf*/) {
  return result;
}

std::string ErrnoText(int err) {
  char buf[256];
  buf[0] = '\0';
  return StrerrorResult(strerror_r(err, buf, sizeof buf), buf);
}

Status ErrnoStatus(int err, const std::string& what) {
  std::string message = what + ": " + ErrnoText(err);
  switch (err) {
    case EACCES:
    case EPERM:
      return Status::Denied(std::move(message));
    case ENAMETOOLONG:
      return Status::Invalid(std::move(message));
    default:
      return Status::Io(std::move(message));
  }
}

// For messages: control bytes (and NUL) as \xNN, the rest as is.
std::string Printable(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

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
    if (::fchown(fd, uid, gid) != 0) return ErrnoStatus(errno, "chown " + what);
  }
  // After chown: chown may clear set-id bits.
  if (::fchmod(fd, mode) != 0) return ErrnoStatus(errno, "chmod " + what);
  return Status::Ok();
}

Status FsyncFd(int fd, const std::string& what) {
  while (::fsync(fd) != 0) {
    if (errno == EINTR) continue;
    return ErrnoStatus(errno, "fsync " + what);
  }
  return Status::Ok();
}

// Descriptors of the folders on the way to a path: level 0 is the root (not owned), level i
// the folder segs[0..i-1].
struct DirChain {
  int root = -1;
  std::vector<UniqueFd> dirs;
  int at(size_t level) const { return level == 0 ? root : dirs[level - 1].get(); }
  int last() const { return at(dirs.size()); }
};

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
      if (attempt >= kMaxRaceRetries) return ErrnoStatus(err, "open folder " + where());
      if (err == ENOENT) {
        if (!create) return Status::NotFound("folder " + where() + " does not exist");
        if (::mkdirat(cur, seg.c_str(), st.opts.dir_mode) != 0) {
          if (errno == EEXIST) continue;  // a concurrent creator, or a file: open again.
          if (errno == ENOENT && i > 0) {
            restart = true;
            return Status::Unavailable("folder " + Quoted(JoinPrefix(segs, i)) +
                                       " was removed while creating " + where());
          }
          return ErrnoStatus(errno, "create folder " + where());
        }
        UniqueFd made(::openat(cur, seg.c_str(), kDirOpenFlags));
        if (!made.valid()) {
          if (errno == ENOENT || errno == ELOOP || errno == ENOTDIR) continue;  // raced
          return ErrnoStatus(errno, "open new folder " + where());
        }
        DS_RETURN_IF_ERROR(
            ApplyOwnerAndMode(st, made.get(), st.opts.dir_mode, "folder " + where()));
        DS_RETURN_IF_ERROR(FsyncFd(cur, "folder holding " + where()));
        chain.dirs.push_back(std::move(made));
        break;
      }
      if (err == ELOOP || err == ENOTDIR) {
        struct stat sb;
        if (::fstatat(cur, seg.c_str(), &sb, AT_SYMLINK_NOFOLLOW) != 0) {
          if (errno == ENOENT) continue;  // vanished meanwhile
          return ErrnoStatus(errno, "stat " + where());
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
      return ErrnoStatus(err, "open folder " + where());
    }
  }
  return chain;
}

Result<DirChain> OpenDirs(const State& st, const std::string& rel,
                          const std::vector<std::string>& segs, size_t count, bool create) {
  for (int attempt = 0;; ++attempt) {
    bool restart = false;
    auto chain = OpenDirsOnce(st, rel, segs, count, create, restart);
    if (chain.ok() || !restart || attempt >= kMaxRaceRetries) return chain;
  }
}

uint64_t RandomU64() {
  uint64_t v = 0;
  if (::getrandom(&v, sizeof v, GRND_NONBLOCK) == static_cast<ssize_t>(sizeof v)) return v;
  thread_local std::mt19937_64 gen{std::random_device{}()};
  return gen();
}

std::string MakeHostToken() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  std::string token;
  for (const char* p = host; *p != '\0' && token.size() < 64; ++p) {
    char c = *p;
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.';
    token += ok ? c : '_';
  }
  if (token.empty()) token = "host";
  // "pid:[4026531836]" -> ".4026531836": PIDs are only comparable within one PID namespace.
  char ns[128] = {};
  ssize_t n = ::readlink("/proc/self/ns/pid", ns, sizeof ns - 1);
  if (n > 0) {
    std::string digits;
    for (ssize_t i = 0; i < n; ++i) {
      if (ns[i] >= '0' && ns[i] <= '9') digits += ns[i];
    }
    if (!digits.empty()) token += "." + digits;
  }
  return token;
}

std::string MakeTempName(const std::string& host_token) {
  char rnd[17];
  std::snprintf(rnd, sizeof rnd, "%016llx", static_cast<unsigned long long>(RandomU64()));
  return kTempPrefix + host_token + "-" + std::to_string(::getpid()) + "-" + rnd + kTempSuffix;
}

struct TempOwner {
  std::string host_token;
  pid_t pid = 0;
};

// Parses "dl-<host token>-<pid>-<16 hex>.part".
std::optional<TempOwner> ParseTempName(const std::string& name) {
  const std::string prefix = kTempPrefix;
  const std::string suffix = kTempSuffix;
  if (name.size() <= prefix.size() + suffix.size()) return std::nullopt;
  if (name.compare(0, prefix.size(), prefix) != 0) return std::nullopt;
  if (name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) return std::nullopt;
  std::string mid = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
  size_t dash2 = mid.rfind('-');
  if (dash2 == std::string::npos || dash2 == 0) return std::nullopt;
  std::string rnd = mid.substr(dash2 + 1);
  if (rnd.size() != 16 || rnd.find_first_not_of("0123456789abcdef") != std::string::npos) {
    return std::nullopt;
  }
  size_t dash1 = mid.rfind('-', dash2 - 1);
  if (dash1 == std::string::npos || dash1 == 0) return std::nullopt;
  std::string pid_text = mid.substr(dash1 + 1, dash2 - dash1 - 1);
  if (pid_text.empty() || pid_text.size() > 9 ||
      pid_text.find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  TempOwner owner;
  owner.pid = static_cast<pid_t>(std::stol(pid_text));
  owner.host_token = mid.substr(0, dash1);
  if (owner.pid <= 0) return std::nullopt;
  return owner;
}

bool ProcessAlive(pid_t pid) {
  if (pid <= 0) return false;
  if (pid == ::getpid()) return true;
  return ::kill(pid, 0) == 0 || errno != ESRCH;
}

// Creates (mode 0700 + owner) or opens a service folder, refusing symbolic links.
Result<UniqueFd> OpenPrivateDir(const State& st, int parent, const char* name,
                                const std::string& path) {
  bool created = false;
  if (::mkdirat(parent, name, kPrivateDirMode) == 0) {
    created = true;
  } else if (errno != EEXIST) {
    return ErrnoStatus(errno, "create folder " + path);
  }
  UniqueFd fd(::openat(parent, name, kDirOpenFlags));
  if (!fd.valid()) {
    if (errno == ELOOP || errno == ENOTDIR) {
      return Status::Invalid("cache folder " + path + " is a symbolic link or not a folder");
    }
    return ErrnoStatus(errno, "open folder " + path);
  }
  if (created) {
    DS_RETURN_IF_ERROR(ApplyOwnerAndMode(st, fd.get(), kPrivateDirMode, "folder " + path));
    DS_RETURN_IF_ERROR(FsyncFd(parent, "folder holding " + path));
  }
  if (::faccessat(fd.get(), ".", W_OK | X_OK, AT_EACCESS) != 0) {
    return Status::Denied("cache folder " + path + " is not writable by uid " +
                          std::to_string(::geteuid()) + ": " + ErrnoText(errno));
  }
  return fd;
}

class PosixTempFile : public TempFile {
 public:
  PosixTempFile(std::shared_ptr<const State> st, UniqueFd fd, std::string name)
      : st_(std::move(st)), fd_(std::move(fd)), name_(std::move(name)) {}

  ~PosixTempFile() override {
    if (!published_) ::unlinkat(st_->tmp.get(), name_.c_str(), 0);
  }

  Status Write(const char* data, size_t size) override {
    if (published_ || !fd_.valid()) return Status::Internal("write to a closed temp file");
    while (size > 0) {
      size_t chunk = std::min<size_t>(size, size_t{1} << 30);
      ssize_t n = ::write(fd_.get(), data, chunk);
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus(errno, "write temp file " + Where());
      }
      if (n == 0) return Status::Io("write temp file " + Where() + ": wrote nothing");
      data += n;
      size -= static_cast<size_t>(n);
      bytes_written_ += static_cast<uint64_t>(n);
      synced_ = false;
    }
    return Status::Ok();
  }

  Status Sync() override {
    if (published_ || !fd_.valid()) return Status::Internal("sync of a closed temp file");
    if (synced_) return Status::Ok();
    DS_RETURN_IF_ERROR(FsyncFd(fd_.get(), "temp file " + Where()));
    synced_ = true;
    return Status::Ok();
  }

  Status Publish(const std::string& rel_path) override {
    DS_RETURN_IF_ERROR(PublishUnsynced(rel_path));
    return SyncFolder();
  }

  Status SyncFolder() override {
    if (!unsynced_folder_.valid()) return Status::Ok();
    Status s = FsyncFd(unsynced_folder_.get(),
                       "folder of " + Quoted(published_path_) + " in cache " + st_->root_path);
    unsynced_folder_.reset();
    return s;
  }

  Status PublishUnsynced(const std::string& rel_path) override {
    if (published_ || !fd_.valid()) return Status::Internal("temp file already published");
    auto segs = SplitRelPath(rel_path);
    if (!segs.ok()) return segs.status();
    DS_RETURN_IF_ERROR(Sync());
    const std::string& last = segs->back();
    for (int attempt = 0;; ++attempt) {
      auto chain = OpenDirs(*st_, rel_path, *segs, segs->size() - 1, /*create=*/true);
      if (!chain.ok()) return chain.status();
      const int parent = chain->last();
      struct stat sb;
      if (::fstatat(parent, last.c_str(), &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(sb.st_mode)) {
        return FolderConflict(rel_path);
      }
      if (::renameat(st_->tmp.get(), name_.c_str(), parent, last.c_str()) == 0) {
        published_ = true;
        published_path_ = rel_path;
        // The folder is fsynced by SyncFolder(), through a descriptor of its own.
        unsynced_folder_ = UniqueFd(::fcntl(parent, F_DUPFD_CLOEXEC, 0));
        fd_.reset();
        if (!unsynced_folder_.valid()) {
          return FsyncFd(parent, "folder of " + Quoted(rel_path) + " in cache " + st_->root_path);
        }
        return Status::Ok();
      }
      int err = errno;
      if (err == EISDIR || err == ENOTEMPTY || err == EEXIST) return FolderConflict(rel_path);
      if (err == ENOENT) {
        struct stat ts;
        if (::fstat(fd_.get(), &ts) == 0 && ts.st_nlink == 0) {
          return Status::Io("temp file " + Where() + " was removed before it could be published" +
                            " (CleanTemp of another process?)");
        }
        // The parent folder was pruned by a concurrent Remove after we opened it: walk again.
        if (attempt < kMaxRaceRetries) continue;
      }
      if (err == EINTR && attempt < kMaxRaceRetries) continue;
      return ErrnoStatus(err, "rename temp file " + Where() + " to " + Quoted(rel_path));
    }
  }

  uint64_t bytes_written() const override { return bytes_written_; }

 private:
  std::string Where() const { return st_->root_path + "/" + kReservedDir + "/tmp/" + name_; }
  static Status FolderConflict(const std::string& rel_path) {
    return Status::Conflict("cannot publish " + Quoted(rel_path) +
                            ": a folder of that name exists");
  }

  std::shared_ptr<const State> st_;
  UniqueFd fd_;
  std::string name_;
  UniqueFd unsynced_folder_;  // after PublishUnsynced: the folder still to fsync
  std::string published_path_;
  bool published_ = false;
  bool synced_ = false;
  uint64_t bytes_written_ = 0;
};

struct DirCloser {
  void operator()(DIR* d) const { ::closedir(d); }
};
using DirPtr = std::unique_ptr<DIR, DirCloser>;

// A fresh stream over folder `dir_fd` (its own offset, so concurrent listings don't interfere).
Result<DirPtr> OpenListing(int dir_fd, const std::string& what) {
  UniqueFd fd(::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus(errno, "open folder " + what);
  DIR* d = ::fdopendir(fd.get());
  if (d == nullptr) return ErrnoStatus(errno, "list folder " + what);
  fd.release();
  return DirPtr(d);
}

struct WalkEntry {
  std::string sort_key;  // name, plus '/' for a folder
  bool is_dir = false;
};

// Lists one folder, sorts it by key and recurses. Sets `stop` when the visitor says so.
Status WalkDir(const State& st, int dir_fd, const std::string& path, const std::string& filter,
               bool at_root, const CacheWalkVisitor& visit, bool& stop) {
  const std::string what = Quoted(path.empty() ? "." : path) + " in cache " + st.root_path;
  std::vector<WalkEntry> entries;
  {
    auto listing = OpenListing(dir_fd, what);
    if (!listing.ok()) {
      // The folder was removed after we opened it (e.g. pruned by a concurrent Remove).
      if (listing.status().code() == Code::kIoError) {
        struct stat sb;
        if (::fstat(dir_fd, &sb) == 0 && sb.st_nlink == 0) return Status::Ok();
      }
      return listing.status();
    }
    DIR* d = listing->get();
    while (true) {
      errno = 0;
      struct dirent* ent = ::readdir(d);
      if (ent == nullptr) {
        if (errno != 0) return ErrnoStatus(errno, "list folder " + what);
        break;
      }
      std::string name = ent->d_name;
      if (name == "." || name == "..") continue;
      if (at_root && name == kReservedDir) continue;
      if (name.compare(0, filter.size(), filter) != 0) continue;
      unsigned char type = ent->d_type;
      if (type == DT_UNKNOWN) {
        struct stat sb;
        if (::fstatat(dir_fd, name.c_str(), &sb, AT_SYMLINK_NOFOLLOW) != 0) {
          if (errno == ENOENT) continue;
          return ErrnoStatus(errno, "stat " + Quoted(path + name) + " in cache " + st.root_path);
        }
        type = S_ISDIR(sb.st_mode) ? DT_DIR : S_ISREG(sb.st_mode) ? DT_REG : DT_UNKNOWN;
      }
      if (type == DT_DIR) {
        entries.push_back({name + '/', true});
      } else if (type == DT_REG) {
        entries.push_back({std::move(name), false});
      }
    }
  }
  // std::string compares through char_traits<char>, i.e. as unsigned bytes (memcmp order).
  std::sort(entries.begin(), entries.end(),
            [](const WalkEntry& a, const WalkEntry& b) { return a.sort_key < b.sort_key; });
  for (const WalkEntry& e : entries) {
    if (e.is_dir) {
      std::string name = e.sort_key.substr(0, e.sort_key.size() - 1);
      UniqueFd child(::openat(dir_fd, name.c_str(), kDirOpenFlags));
      if (!child.valid()) {
        // Removed or replaced by a non-folder since the listing: nothing to report.
        if (errno == ENOENT || errno == ELOOP || errno == ENOTDIR) continue;
        return ErrnoStatus(errno,
                           "open folder " + Quoted(path + name) + " in cache " + st.root_path);
      }
      DS_RETURN_IF_ERROR(WalkDir(st, child.get(), path + e.sort_key, "", false, visit, stop));
      if (stop) return Status::Ok();
    } else {
      struct stat sb;
      if (::fstatat(dir_fd, e.sort_key.c_str(), &sb, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) continue;
        return ErrnoStatus(errno,
                           "stat " + Quoted(path + e.sort_key) + " in cache " + st.root_path);
      }
      if (!S_ISREG(sb.st_mode)) continue;
      CacheEntryInfo info;
      info.exists = true;
      info.is_dir = false;
      info.size = static_cast<uint64_t>(sb.st_size);
      if (!visit(path + e.sort_key, info)) {
        stop = true;
        return Status::Ok();
      }
    }
  }
  return Status::Ok();
}

}  // namespace

PosixCache::PosixCache(std::shared_ptr<const posix_cache_internal::State> state)
    : state_(std::move(state)) {}

PosixCache::~PosixCache() = default;

const std::string& PosixCache::root() const { return state_->root_path; }

Result<std::unique_ptr<PosixCache>> PosixCache::Open(const std::string& root,
                                                     const PosixCacheOptions& opts) {
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
    return ErrnoStatus(err, "create cache root " + Quoted(root));
  }
  st->root = UniqueFd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!st->root.valid()) {
    int err = errno;
    if (err == ENOTDIR) return Status::Invalid("cache root " + Quoted(root) + " is not a folder");
    return ErrnoStatus(err, "open cache root " + Quoted(root));
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
                          std::to_string(::geteuid()) + ": " + ErrnoText(err));
  }
  const std::string reserved_path = root + "/" + kReservedDir;
  auto reserved = OpenPrivateDir(*st, st->root.get(), kReservedDir, Quoted(reserved_path));
  if (!reserved.ok()) return reserved.status();
  st->reserved = std::move(*reserved);
  auto tmp = OpenPrivateDir(*st, st->reserved.get(), "tmp", Quoted(reserved_path + "/tmp"));
  if (!tmp.ok()) return tmp.status();
  st->tmp = std::move(*tmp);
  st->host_token = MakeHostToken();
  return std::unique_ptr<PosixCache>(new PosixCache(std::move(st)));
}

Result<std::unique_ptr<TempFile>> PosixCache::CreateTemp() {
  const State& st = *state_;
  for (int attempt = 0; attempt < kMaxRaceRetries; ++attempt) {
    std::string name = MakeTempName(st.host_token);
    UniqueFd fd(::openat(st.tmp.get(), name.c_str(),
                         O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd.valid()) {
      if (errno == EEXIST || errno == EINTR) continue;
      return ErrnoStatus(errno,
                         "create temp file in " + st.root_path + "/" + kReservedDir + "/tmp");
    }
    Status s = ApplyOwnerAndMode(st, fd.get(), st.opts.file_mode, "temp file " + name);
    if (!s.ok()) {
      ::unlinkat(st.tmp.get(), name.c_str(), 0);
      return s;
    }
    return std::unique_ptr<TempFile>(new PosixTempFile(state_, std::move(fd), std::move(name)));
  }
  return Status::Internal("could not pick an unused temp file name");
}

namespace {

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
    return ErrnoStatus(err, "remove " + Quoted(rel_path) + " in cache " + st.root_path);
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
    return ErrnoStatus(errno, "stat " + Quoted(rel_path) + " in cache " + st.root_path);
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
  if (level < depth) (void)FsyncFd(chain.at(level), "folder after pruning " + where);
}

// Each folder holding a path of the batch is opened once (its descriptor kept until the folder
// is synced), the lookups and unlinks of one StatMany or RemoveMany run `parallelism` at a
// time, each folder that lost a file is fsynced once (in parallel too) and the folders are
// pruned at Commit, deepest first.
class PosixRemovalBatch : public RemovalBatch {
 public:
  explicit PosixRemovalBatch(std::shared_ptr<const State> state) : state_(std::move(state)) {}

  Result<CacheEntryInfo> Stat(const std::string& rel_path) override {
    return std::move(StatMany({rel_path}).front());
  }

  std::vector<Result<CacheEntryInfo>> StatMany(const std::vector<std::string>& rel_paths) override {
    return Each<CacheEntryInfo>(rel_paths,
                                [this](const Path& p, const Folder& f) -> Result<CacheEntryInfo> {
                                  if (!f.status.ok()) {
                                    // A missing parent, or one that is a file: no copy (as
                                    // PosixCache::Stat).
                                    if (f.status.code() == Code::kNotFound) return CacheEntryInfo{};
                                    return f.status;
                                  }
                                  return StatIn(*state_, *p.rel, FolderFd(f), p.segs.back());
                                });
  }

  Result<bool> Remove(const std::string& rel_path) override {
    return std::move(RemoveMany({rel_path}).front());
  }

  std::vector<Result<bool>> RemoveMany(const std::vector<std::string>& rel_paths) override {
    std::vector<std::string> folders;  // of the paths unlinked
    std::vector<Result<bool>> out = Each<bool>(
        rel_paths,
        [this](const Path& p, const Folder& f) -> Result<bool> {
          if (!f.status.ok()) {
            if (f.status.code() == Code::kNotFound) return false;
            return f.status;
          }
          return UnlinkIn(*state_, *p.rel, FolderFd(f), p.segs.back());
        },
        [this](const Path& p, Folder& f, const Result<bool>& removed) {
          if (!removed.ok() || !*removed) return;
          f.unsynced = true;
          if (p.segs.size() > 1) prune_.insert(p.folder);
        });
    return out;
  }

  Status Commit() override {
    DS_RETURN_IF_ERROR(SyncAll());
    open_.clear();
    if (!prune_.empty()) CrashPoint("removal-before-prune");
    // Deepest first, the folders of one depth in parallel: every folder of a depth is pruned
    // (or found not empty) before its parents are looked at.
    const State& st = *state_;
    std::map<size_t, std::vector<std::vector<std::string>>, std::greater<>> by_depth;
    for (const std::string& folder : prune_) {
      auto segs = SplitRelPath(folder);
      if (segs.ok()) by_depth[segs->size()].push_back(std::move(*segs));
    }
    for (const auto& depth_folders : by_depth) {
      // (not a structured binding: clang 14 cannot capture one in a lambda)
      const std::vector<std::vector<std::string>>& folders = depth_folders.second;
      ParallelFor(folders.size(), st.opts.parallelism, [&](size_t i) {
        const std::vector<std::string>& segs = folders[i];
        const std::string rel = JoinPrefix(segs, segs.size());
        auto chain = OpenDirs(st, rel, segs, segs.size(), /*create=*/false);
        if (!chain.ok()) return;  // pruned already, or replaced
        PruneEmpty(*chain, segs, segs.size(), Quoted(rel) + " in cache " + st.root_path);
      });
    }
    prune_.clear();
    return Status::Ok();
  }

 private:
  // Folders the batch keeps open at most (each one descriptor): past that they are synced and
  // closed before more are opened.
  static constexpr size_t kMaxOpenFolders = 256;
  // Paths handled in one round (opening their new folders, then looking at or unlinking them).
  static constexpr size_t kRound = 128;

  struct Folder {
    Status status;  // OK: `fd` (or the root, when `fd` is not valid) is the folder
    UniqueFd fd;
    bool unsynced = false;  // lost a file since it was last fsynced
  };
  struct Path {
    const std::string* rel = nullptr;
    std::vector<std::string> segs;
    std::string folder;  // the first segs.size() - 1 segments ("" = the root)
  };

  int FolderFd(const Folder& f) const { return f.fd.valid() ? f.fd.get() : state_->root.get(); }

  // Runs op(path, its folder) for every path (in parallel, rounds of kRound paths), then
  // after(path, its folder, the result) for each path of the round on this thread.
  template <typename T, typename Op, typename After = std::nullptr_t>
  std::vector<Result<T>> Each(const std::vector<std::string>& rel_paths, const Op& op,
                              const After& after = nullptr) {
    const State& st = *state_;
    std::vector<Result<T>> out;
    out.reserve(rel_paths.size());
    for (size_t begin = 0; begin < rel_paths.size(); begin += kRound) {
      const size_t end = std::min(rel_paths.size(), begin + kRound);
      std::vector<Path> paths;
      std::vector<std::optional<Status>> bad(end - begin);
      std::set<std::string> wanted;
      for (size_t i = begin; i < end; ++i) {
        Path p;
        p.rel = &rel_paths[i];
        auto segs = SplitRelPath(rel_paths[i]);
        if (segs.ok()) {
          p.segs = std::move(*segs);
          p.folder = JoinPrefix(p.segs, p.segs.size() - 1);
          if (!open_.count(p.folder)) wanted.insert(p.folder);
        } else {
          bad[i - begin] = segs.status();
        }
        paths.push_back(std::move(p));
      }
      if (open_.size() + wanted.size() > kMaxOpenFolders) {
        Status s = SyncAll();
        if (!s.ok()) {
          for (size_t i = begin; i < rel_paths.size(); ++i) out.push_back(s);
          return out;
        }
        open_.clear();
        for (const Path& p : paths) {
          if (!p.segs.empty()) wanted.insert(p.folder);
        }
      }
      // Open the round's new folders at once.
      std::vector<std::string> names(wanted.begin(), wanted.end());
      std::vector<Folder> opened(names.size());
      ParallelFor(names.size(), st.opts.parallelism, [&](size_t i) {
        std::vector<std::string> segs;
        if (!names[i].empty()) segs = *SplitRelPath(names[i]);
        auto chain = OpenDirs(st, names[i], segs, segs.size(), /*create=*/false);
        if (!chain.ok()) {
          opened[i].status = chain.status();
        } else if (!chain->dirs.empty()) {
          opened[i].fd = std::move(chain->dirs.back());
        }
      });
      for (size_t i = 0; i < names.size(); ++i) open_.emplace(names[i], std::move(opened[i]));
      // Then the round's paths at once.
      std::vector<std::optional<Result<T>>> results(paths.size());
      ParallelFor(paths.size(), st.opts.parallelism, [&](size_t i) {
        if (bad[i]) {
          results[i].emplace(*bad[i]);
        } else {
          results[i].emplace(op(paths[i], open_.at(paths[i].folder)));
        }
      });
      for (size_t i = 0; i < paths.size(); ++i) {
        if constexpr (!std::is_same_v<After, std::nullptr_t>) {
          if (!bad[i]) after(paths[i], open_.at(paths[i].folder), *results[i]);
        }
        out.push_back(std::move(*results[i]));
      }
    }
    return out;
  }

  // fsyncs every folder that lost a file since its last sync, in parallel. A failure fails the
  // whole batch: those unlinks are not known durable.
  Status SyncAll() {
    if (!failed_.ok()) return failed_;
    const State& st = *state_;
    std::vector<std::pair<const std::string*, Folder*>> todo;
    for (auto& [folder, f] : open_) {
      if (f.unsynced) todo.emplace_back(&folder, &f);
    }
    std::vector<Status> synced(todo.size());
    ParallelFor(todo.size(), st.opts.parallelism, [&](size_t i) {
      const std::string& folder = *todo[i].first;
      synced[i] =
          FsyncFd(FolderFd(*todo[i].second),
                  "folder " + Quoted(folder.empty() ? "." : folder) + " in cache " + st.root_path);
    });
    for (size_t i = 0; i < todo.size(); ++i) {
      if (!synced[i].ok()) {
        failed_ = synced[i];
        return failed_;
      }
      todo[i].second->unsynced = false;
    }
    return Status::Ok();
  }

  std::shared_ptr<const State> state_;
  std::map<std::string, Folder> open_;  // folder ("" = the root) -> its descriptor
  std::set<std::string> prune_;         // folders (not the root) that lost a file: prune them
  Status failed_;
};

}  // namespace

std::unique_ptr<RemovalBatch> PosixCache::BeginRemovals() {
  return std::make_unique<PosixRemovalBatch>(state_);
}

Result<bool> PosixCache::Remove(const std::string& rel_path) {
  const State& st = *state_;
  auto segs = SplitRelPath(rel_path);
  if (!segs.ok()) return segs.status();
  DirChain chain;
  Result<bool> removed = UnlinkFile(st, rel_path, *segs, &chain);
  if (!removed.ok() || !*removed) return removed;
  const std::string where = Quoted(rel_path) + " in cache " + st.root_path;
  // The unlink must be durable before the caller acknowledges the deletion.
  DS_RETURN_IF_ERROR(FsyncFd(chain.last(), "folder of " + where));
  if (segs->size() > 1) CrashPoint("removal-before-prune");
  PruneEmpty(chain, *segs, segs->size() - 1, where);
  return true;
}

Result<CacheEntryInfo> PosixCache::Stat(const std::string& rel_path) {
  const State& st = *state_;
  auto segs = SplitRelPath(rel_path);
  if (!segs.ok()) return segs.status();
  auto chain = OpenDirs(st, rel_path, *segs, segs->size() - 1, /*create=*/false);
  if (!chain.ok()) {
    if (chain.status().code() == Code::kNotFound) return CacheEntryInfo{};
    return chain.status();
  }
  return StatIn(st, rel_path, chain->last(), segs->back());
}

Result<size_t> PosixCache::CleanTemp() {
  const State& st = *state_;
  const std::string tmp_path = st.root_path + "/" + kReservedDir + "/tmp";
  auto listing = OpenListing(st.tmp.get(), Quoted(tmp_path));
  if (!listing.ok()) return listing.status();
  const time_t now = ::time(nullptr);
  const auto max_age = static_cast<time_t>(st.opts.stale_temp_age.count());
  size_t removed = 0;
  while (true) {
    errno = 0;
    struct dirent* ent = ::readdir(listing->get());
    if (ent == nullptr) {
      if (errno != 0) return ErrnoStatus(errno, "list folder " + Quoted(tmp_path));
      break;
    }
    std::string name = ent->d_name;
    if (name == "." || name == "..") continue;
    struct stat sb;
    if (::fstatat(st.tmp.get(), name.c_str(), &sb, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;
      return ErrnoStatus(errno, "stat " + Quoted(tmp_path + "/" + name));
    }
    if (S_ISDIR(sb.st_mode)) continue;
    bool stale = now - sb.st_mtime > max_age;
    if (!stale) {
      std::optional<TempOwner> owner = ParseTempName(name);
      stale = owner && owner->host_token == st.host_token && !ProcessAlive(owner->pid);
    }
    if (!stale) continue;
    if (::unlinkat(st.tmp.get(), name.c_str(), 0) == 0) {
      ++removed;
    } else if (errno != ENOENT) {
      return ErrnoStatus(errno, "remove stale temp file " + Quoted(tmp_path + "/" + name));
    }
  }
  return removed;
}

Status PosixCache::Walk(const std::string& prefix, const CacheWalkVisitor& visit) const {
  const State& st = *state_;
  if (prefix.find('\0') != std::string::npos) {
    return Status::Invalid("walk prefix " + Quoted(prefix) + " contains a NUL byte");
  }
  if (!prefix.empty() && prefix.front() == '/') {
    return Status::Invalid("walk prefix " + Quoted(prefix) + " is absolute");
  }
  const size_t slash = prefix.rfind('/');
  const std::string dir_part = slash == std::string::npos ? "" : prefix.substr(0, slash);
  const std::string filter = slash == std::string::npos ? prefix : prefix.substr(slash + 1);
  bool stop = false;
  if (dir_part.empty()) return WalkDir(st, st.root.get(), "", filter, true, visit, stop);

  auto segs = SplitRelPath(dir_part);
  if (!segs.ok()) {
    return Status::Invalid("walk prefix " + Quoted(prefix) + ": " + segs.status().message());
  }
  auto chain = OpenDirs(st, dir_part, *segs, segs->size(), /*create=*/false);
  if (!chain.ok()) {
    // Missing, a file, or a symbolic link on the way: there is nothing to report.
    if (chain.status().code() == Code::kNotFound || chain.status().code() == Code::kConflict) {
      return Status::Ok();
    }
    return chain.status();
  }
  return WalkDir(st, chain->last(), dir_part + "/", filter, false, visit, stop);
}

std::string HostToken() { return MakeHostToken(); }

bool ProcessOnThisHostAlive(pid_t pid) { return ProcessAlive(pid); }

Status PosixCache::EnsureReserve(uint64_t bytes) {
  const State& st = *state_;
  if (bytes == 0) return Status::Ok();
  struct stat sb;
  if (::fstatat(st.reserved.get(), "reserve", &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
      S_ISREG(sb.st_mode) && static_cast<uint64_t>(sb.st_size) >= bytes) {
    return Status::Ok();
  }
  const std::string what = st.root_path + "/" + kReservedDir + "/reserve";
  // A name of this process's own: several processes (and hosts) may make the reserve at once.
  const std::string temp = MakeTempName(st.host_token) + ".reserve";
  UniqueFd fd(::openat(st.reserved.get(), temp.c_str(),
                       O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (fd.get() < 0) return ErrnoStatus(errno, "create " + what);
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
    return ErrnoStatus(rc, "allocate " + what);
  }
  if (::renameat(st.reserved.get(), temp.c_str(), st.reserved.get(), "reserve") != 0) {
    int err = errno;
    ::unlinkat(st.reserved.get(), temp.c_str(), 0);
    return ErrnoStatus(err, "rename into " + what);
  }
  return Status::Ok();
}

Result<bool> PosixCache::ReleaseReserve() {
  const State& st = *state_;
  if (::unlinkat(st.reserved.get(), "reserve", 0) == 0) return true;
  if (errno == ENOENT) return false;
  return ErrnoStatus(errno, "remove " + st.root_path + "/" + kReservedDir + "/reserve");
}

Result<bool> PosixCache::HasReserve() {
  const State& st = *state_;
  struct stat sb;
  if (::fstatat(st.reserved.get(), "reserve", &sb, AT_SYMLINK_NOFOLLOW) == 0) return true;
  if (errno == ENOENT) return false;
  return ErrnoStatus(errno, "stat " + st.root_path + "/" + kReservedDir + "/reserve");
}

Result<uint64_t> PosixCache::FreeBytes() {
  const State& st = *state_;
  struct statvfs vfs;
  if (::fstatvfs(st.reserved.get(), &vfs) != 0) {
    return ErrnoStatus(errno, "statvfs " + st.root_path);
  }
  return static_cast<uint64_t>(vfs.f_bavail) * static_cast<uint64_t>(vfs.f_frsize);
}

}  // namespace ds
