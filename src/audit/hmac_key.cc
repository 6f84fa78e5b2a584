// Reading an HMAC key file (hmac_key.h).
#include "audit/hmac_key.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

#include "audit/log_files.h"
#include "fs/unique_fd.h"

namespace ds {
namespace {

using audit_internal::Errno;

constexpr int64_t kMaxKeyFileBytes = 64 * 1024;

}  // namespace

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

}  // namespace ds
