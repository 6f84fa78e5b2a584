// Temp files of PosixCache (posix_cache_internal.h): their names ("dl-<host token>-<pid>-<16
// hex>.part"), PosixTempFile (write, fsync, publish by rename), CreateTemp and CleanTemp.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <ctime>
#include <optional>
#include <random>
#include <string>
#include <utility>

#include "core/cache_layout.h"
#include "fs/posix.h"
#include "fs/posix_cache.h"
#include "fs/posix_cache_internal.h"

namespace ds {
namespace posix_cache_internal {
namespace {

constexpr char kTempPrefix[] = "dl-";
constexpr char kTempSuffix[] = ".part";

uint64_t RandomU64() {
  uint64_t v = 0;
  if (::getrandom(&v, sizeof v, GRND_NONBLOCK) == static_cast<ssize_t>(sizeof v)) return v;
  thread_local std::mt19937_64 gen{std::random_device{}()};
  return gen();
}

}  // namespace

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

namespace {

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
        return posix::PosixError("write temp file " + Where(), errno);
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
    DS_RETURN_IF_ERROR(posix::FsyncFd(fd_.get(), "temp file " + Where()));
    synced_ = true;
    return Status::Ok();
  }

  Status Publish(const std::string& rel_path) override {
    DS_RETURN_IF_ERROR(PublishUnsynced(rel_path));
    return SyncFolder();
  }

  Status SyncFolder() override {
    if (!unsynced_folder_.valid()) return Status::Ok();
    Status s = posix::FsyncFd(unsynced_folder_.get(), "folder of " + Quoted(published_path_) +
                                                          " in cache " + st_->root_path);
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
          return posix::FsyncFd(parent,
                                "folder of " + Quoted(rel_path) + " in cache " + st_->root_path);
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
      return posix::PosixError("rename temp file " + Where() + " to " + Quoted(rel_path), err);
    }
  }

  uint64_t bytes_written() const override { return bytes_written_; }

 private:
  std::string Where() const { return CacheLayout(st_->root_path).TempDir() + "/" + name_; }
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

// PosixCache::CreateTemp.
Result<std::unique_ptr<TempFile>> CreateTempFile(const std::shared_ptr<const State>& state) {
  const State& st = *state;
  for (int attempt = 0; attempt < kMaxRaceRetries; ++attempt) {
    std::string name = MakeTempName(st.host_token);
    UniqueFd fd(::openat(st.tmp.get(), name.c_str(),
                         O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd.valid()) {
      if (errno == EEXIST || errno == EINTR) continue;
      return posix::PosixError("create temp file in " + CacheLayout(st.root_path).TempDir(), errno);
    }
    Status s = ApplyOwnerAndMode(st, fd.get(), st.opts.file_mode, "temp file " + name);
    if (!s.ok()) {
      ::unlinkat(st.tmp.get(), name.c_str(), 0);
      return s;
    }
    return std::unique_ptr<TempFile>(new PosixTempFile(state, std::move(fd), std::move(name)));
  }
  return Status::Internal("could not pick an unused temp file name");
}

// PosixCache::CleanTemp.
Result<size_t> CleanTempFiles(const State& st) {
  const std::string tmp_path = CacheLayout(st.root_path).TempDir();
  auto listing = OpenListing(st.tmp.get(), Quoted(tmp_path));
  if (!listing.ok()) return listing.status();
  const time_t now = ::time(nullptr);
  const auto max_age = static_cast<time_t>(st.opts.stale_temp_age.count());
  size_t removed = 0;
  while (true) {
    errno = 0;
    struct dirent* ent = ::readdir(listing->get());
    if (ent == nullptr) {
      if (errno != 0) return posix::PosixError("list folder " + Quoted(tmp_path), errno);
      break;
    }
    std::string name = ent->d_name;
    if (name == "." || name == "..") continue;
    struct stat sb;
    if (::fstatat(st.tmp.get(), name.c_str(), &sb, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;
      return posix::PosixError("stat " + Quoted(tmp_path + "/" + name), errno);
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
      return posix::PosixError("remove stale temp file " + Quoted(tmp_path + "/" + name), errno);
    }
  }
  return removed;
}

}  // namespace
}  // namespace posix_cache_internal

Result<std::unique_ptr<TempFile>> PosixCache::CreateTemp() {
  return posix_cache_internal::CreateTempFile(state_);
}

Result<size_t> PosixCache::CleanTemp() { return posix_cache_internal::CleanTempFiles(*state_); }

std::string HostToken() { return posix_cache_internal::MakeHostToken(); }

bool ProcessOnThisHostAlive(pid_t pid) { return posix_cache_internal::ProcessAlive(pid); }

}  // namespace ds
