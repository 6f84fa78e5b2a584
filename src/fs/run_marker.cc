#include "fs/run_marker.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "fs/posix.h"
#include "fs/posix_cache.h"

namespace ds {
namespace {

std::string NowUtc() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

Result<std::unique_ptr<RunMarker>> RunMarker::Create(const std::string& dir,
                                                     const std::string& what,
                                                     std::vector<UncleanRun>* unclean) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::Io("cannot create the run marker folder " + dir + ": " + ec.message());
  ::chmod(dir.c_str(), 0700);
  const std::string host = HostToken();
  const std::string prefix = host + "-";
  const pid_t self = ::getpid();
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    std::string name = entry.path().filename().string();
    if (name.compare(0, prefix.size(), prefix) != 0) continue;  // another host's, or not ours
    std::string digits = name.substr(prefix.size());
    if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos) continue;
    pid_t pid = static_cast<pid_t>(std::stoll(digits));
    if (pid != self && ProcessOnThisHostAlive(pid)) continue;  // a run in progress
    std::ifstream in(entry.path());
    std::stringstream ss;
    ss << in.rdbuf();
    std::string detail = ss.str();
    while (!detail.empty() && (detail.back() == '\n' || detail.back() == ' ')) detail.pop_back();
    if (unclean != nullptr) unclean->push_back({name, detail});
    if (::unlink(entry.path().c_str()) != 0 && errno != ENOENT) {
      return posix::IoError("cannot remove the run marker " + entry.path().string(), errno);
    }
  }
  if (ec) return Status::Io("cannot list the run marker folder " + dir + ": " + ec.message());

  const std::string path = dir + "/" + prefix + std::to_string(self);
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd.valid()) return posix::IoError("cannot create the run marker " + path, errno);
  std::string body =
      what + " pid " + std::to_string(self) + " on " + host + ", started " + NowUtc() + "\n";
  bool ok = ::write(fd.get(), body.data(), body.size()) == static_cast<ssize_t>(body.size()) &&
            ::fsync(fd.get()) == 0;
  const int err = errno;
  fd.reset();
  if (!ok) return posix::IoError("cannot write the run marker " + path, err);
  // The marker's name must survive a power cut for the next start to see it (best effort: a
  // marker whose name is lost only hides an unclean stop, as before there were markers).
  (void)posix::FsyncDir(dir);
  return std::unique_ptr<RunMarker>(new RunMarker(path));
}

RunMarker::~RunMarker() { (void)Release(); }

Status RunMarker::Release() {
  if (released_) return Status::Ok();
  if (::unlink(path_.c_str()) != 0 && errno != ENOENT) {
    return posix::IoError("cannot remove the run marker " + path_, errno);
  }
  released_ = true;
  return Status::Ok();
}

}  // namespace ds
