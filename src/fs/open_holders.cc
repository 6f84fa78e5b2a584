#include "fs/open_holders.h"

#include <dirent.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>

#include "fs/posix.h"

namespace ds {

namespace {

bool AllDigits(const char* s) {
  if (*s == '\0') return false;
  for (; *s; ++s) {
    if (*s < '0' || *s > '9') return false;
  }
  return true;
}

std::string Comm(const std::string& dir) {
  std::ifstream in(dir + "/comm");
  std::string name;
  std::getline(in, name);
  return name;
}

}  // namespace

Status ScanOpenHolders(const std::string& root, std::vector<OpenHolder>* holders, bool* complete,
                       const std::string& proc) {
  char resolved[PATH_MAX];
  if (realpath(root.c_str(), resolved) == nullptr) {
    return posix::IoError("realpath " + root, errno);
  }
  const std::string base = resolved;
  const std::string under = base == "/" ? base : base + "/";
  *complete = true;
  DIR* pd = opendir(proc.c_str());
  if (pd == nullptr) return posix::IoError("opendir " + proc, errno);
  static const std::string kDeleted = " (deleted)";
  while (dirent* pe = readdir(pd)) {
    if (!AllDigits(pe->d_name)) continue;
    const std::string pdir = proc + "/" + pe->d_name;
    const std::string fddir = pdir + "/fd";
    DIR* fd = opendir(fddir.c_str());
    if (fd == nullptr) {
      // Gone meanwhile (ENOENT) is fine; not allowed to look (EACCES) leaves a blind spot.
      if (errno == EACCES || errno == EPERM) *complete = false;
      continue;
    }
    std::string comm;
    while (dirent* fe = readdir(fd)) {
      if (!AllDigits(fe->d_name)) continue;
      char target[PATH_MAX + 32];
      ssize_t n = readlink((fddir + "/" + fe->d_name).c_str(), target, sizeof target - 1);
      if (n <= 0) continue;
      std::string path(target, static_cast<size_t>(n));
      bool deleted = false;
      if (path.size() > kDeleted.size() &&
          path.compare(path.size() - kDeleted.size(), kDeleted.size(), kDeleted) == 0) {
        path.resize(path.size() - kDeleted.size());
        deleted = true;
      }
      if (path != base && path.compare(0, under.size(), under) != 0) continue;
      if (comm.empty()) comm = Comm(pdir);
      OpenHolder h;
      h.pid = std::atoll(pe->d_name);
      h.command = comm;
      h.path = path;
      h.deleted = deleted;
      h.fd = std::atoi(fe->d_name);
      holders->push_back(std::move(h));
    }
    closedir(fd);
  }
  closedir(pd);
  return Status::Ok();
}

}  // namespace ds
