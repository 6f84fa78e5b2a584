// The fixture of the PosixCache tests (posix_cache_test.cc, posix_cache_paths_test.cc,
// posix_temp_file_test.cc, posix_removal_batch_test.cc, posix_cache_walk_test.cc): a fresh cache
// root under /tmp per test, a strict umask, and small file helpers. Header-only.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "common/status.h"
#include "core/cache_fs.h"
#include "fakes/test_files.h"
#include "fs/posix_cache.h"

namespace ds::posix_cache_test {

namespace fs = std::filesystem;

using testfiles::Exists;
using testfiles::ReadFile;
using testfiles::WriteFile;

inline mode_t ModeOf(const std::string& path) {
  struct stat sb;
  if (::lstat(path.c_str(), &sb) != 0) return 0;
  return sb.st_mode & 07777;
}

inline bool IsSymlink(const std::string& path) {
  struct stat sb;
  return ::lstat(path.c_str(), &sb) == 0 && S_ISLNK(sb.st_mode);
}

inline bool IsRegular(const std::string& path) {
  struct stat sb;
  return ::lstat(path.c_str(), &sb) == 0 && S_ISREG(sb.st_mode);
}

inline std::vector<std::string> ListDir(const std::string& path) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(path)) names.push_back(e.path().filename());
  std::sort(names.begin(), names.end());
  return names;
}

inline void SetMtimeAgo(const std::string& path, int seconds) {
  struct timespec times[2];
  times[0].tv_sec = ::time(nullptr) - seconds;
  times[0].tv_nsec = 0;
  times[1] = times[0];
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW), 0);
}

class PosixCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/posix_cache_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    base_ = tmpl;
    root_ = base_ + "/cache";
    tmp_dir_ = root_ + "/" + kReservedDir + "/tmp";
    // A strict umask: modes must come out as configured anyway.
    old_umask_ = ::umask(077);
  }
  void TearDown() override {
    ::umask(old_umask_);
    std::error_code ec;
    fs::remove_all(base_, ec);  // does not follow symbolic links
  }

  std::unique_ptr<PosixCache> OpenCache(const PosixCacheOptions& opts = {}) {
    auto cache = PosixCache::Open(root_, opts);
    EXPECT_TRUE(cache.ok()) << cache.status().ToString();
    if (!cache.ok()) return nullptr;
    return std::move(*cache);
  }

  static Status Put(PosixCache& cache, const std::string& rel, const std::string& content) {
    auto temp = cache.CreateTemp();
    if (!temp.ok()) return temp.status();
    DS_RETURN_IF_ERROR((*temp)->Write(content.data(), content.size()));
    return (*temp)->Publish(rel);
  }

  std::string P(const std::string& rel) const { return root_ + "/" + rel; }

  std::string base_;
  std::string root_;
  std::string tmp_dir_;
  mode_t old_umask_ = 022;
};

}  // namespace ds::posix_cache_test
