#include "fs/posix.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace ds::posix {
namespace {

// GNU and XSI strerror_r differ in return type; accept both.
[[maybe_unused]] const char* StrerrorResult(int rc, const char* buf) {
  return rc == 0 ? buf : "unknown error";
}
[[maybe_unused]] const char* StrerrorResult(const char* result, const char* /*buf*/) {
  return result;
}

}  // namespace

std::string ErrnoText(int err) {
  char buf[256];
  buf[0] = '\0';
  return StrerrorResult(strerror_r(err, buf, sizeof buf), buf);
}

Status PosixError(std::string_view what, int err) {
  std::string message = std::string(what) + ": " + ErrnoText(err);
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

Status IoError(std::string_view what, int err) {
  return Status::Io(std::string(what) + ": " + ErrnoText(err));
}

Status FsyncFd(int fd, std::string_view what) {
  while (::fsync(fd) != 0) {
    if (errno == EINTR) continue;
    return PosixError("fsync " + std::string(what), errno);
  }
  return Status::Ok();
}

Status WriteAll(int fd, std::string_view bytes, std::string_view what) {
  const char* data = bytes.data();
  size_t size = bytes.size();
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return PosixError("write " + std::string(what), errno);
    }
    if (n == 0) return Status::Io("write " + std::string(what) + ": wrote nothing");
    data += n;
    size -= static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status FsyncDir(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return IoError("open " + dir, errno);
  while (::fsync(fd.get()) != 0) {
    if (errno == EINTR) continue;
    return IoError("fsync " + dir, errno);
  }
  return Status::Ok();
}

Status FsyncParentDir(const std::string& file_path) {
  const size_t slash = file_path.rfind('/');
  if (slash == std::string::npos) return FsyncDir(".");
  if (slash == 0) return FsyncDir("/");
  return FsyncDir(file_path.substr(0, slash));
}

Status WriteFileDurably(const std::string& path, std::string_view bytes,
                        const WriteFileOptions& opts) {
  int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (opts.exclusive ? O_EXCL : O_TRUNC);
  if (opts.no_follow) flags |= O_NOFOLLOW;
  UniqueFd fd(::open(path.c_str(), flags, opts.mode));
  if (!fd.valid()) return IoError("create " + path, errno);
  Status s = WriteAll(fd.get(), bytes, path);
  if (s.ok()) s = FsyncFd(fd.get(), path);
  fd.reset();
  if (!s.ok()) {
    ::unlink(path.c_str());
    // WriteAll and FsyncFd map errno with PosixError; these callers report kIoError.
    return Status::Io(s.message());
  }
  if (opts.sync_folder) return FsyncParentDir(path);
  return Status::Ok();
}

Result<FileLock> FileLock::Open(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd.valid()) return IoError("cannot open " + path, errno);
  return FileLock(std::move(fd), path);
}

FileLock& FileLock::operator=(FileLock&& other) noexcept {
  if (this != &other) {
    Unlock();
    fd_ = std::move(other.fd_);
    path_ = std::move(other.path_);
  }
  return *this;
}

Status FileLock::TryLock(Kind kind) {
  const int op = (kind == Kind::kExclusive ? LOCK_EX : LOCK_SH) | LOCK_NB;
  while (::flock(fd_.get(), op) != 0) {
    const int err = errno;
    if (err == EINTR) continue;
    if (err == EWOULDBLOCK) return Status::Conflict(path_ + " is locked");
    return IoError("cannot lock " + path_, err);
  }
  return Status::Ok();
}

void FileLock::Unlock() {
  if (fd_.valid()) ::flock(fd_.get(), LOCK_UN);
}

}  // namespace ds::posix
