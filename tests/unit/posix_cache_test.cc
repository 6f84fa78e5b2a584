// PosixCache itself: opening a cache, its modes and owners, Remove of one path.
#include "fs/posix_cache.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "unit/posix_cache_fixture.h"

namespace ds::posix_cache_test {

TEST_F(PosixCacheTest, OpenCreatesRootAndPrivateReservedFolders) {
  PosixCacheOptions opts;
  opts.dir_mode = 0751;
  auto cache = OpenCache(opts);
  ASSERT_NE(cache, nullptr);
  EXPECT_EQ(cache->root(), root_);
  EXPECT_EQ(ModeOf(root_), 0751u);
  EXPECT_EQ(ModeOf(root_ + "/" + kReservedDir), 0700u);
  EXPECT_EQ(ModeOf(tmp_dir_), 0700u);
  // Opening again is fine.
  EXPECT_TRUE(PosixCache::Open(root_, opts).ok());
}

TEST_F(PosixCacheTest, OpenFailsClearlyOnBadRoots) {
  WriteFile(root_, "not a folder");
  auto file_root = PosixCache::Open(root_, {});
  ASSERT_FALSE(file_root.ok());
  EXPECT_EQ(file_root.status().code(), Code::kInvalidArgument);
  EXPECT_NE(file_root.status().message().find("not a folder"), std::string::npos)
      << file_root.status().message();

  auto no_parent = PosixCache::Open(base_ + "/missing/cache", {});
  ASSERT_FALSE(no_parent.ok());
  EXPECT_NE(no_parent.status().message().find("parent folder does not exist"), std::string::npos)
      << no_parent.status().message();

  EXPECT_EQ(PosixCache::Open("", {}).status().code(), Code::kInvalidArgument);

  if (::geteuid() != 0) {
    std::string ro = base_ + "/readonly";
    ASSERT_EQ(::mkdir(ro.c_str(), 0500), 0);
    auto denied = PosixCache::Open(ro, {});
    ASSERT_FALSE(denied.ok());
    EXPECT_EQ(denied.status().code(), Code::kPermissionDenied);
    EXPECT_NE(denied.status().message().find("not writable"), std::string::npos);
  }
}

TEST_F(PosixCacheTest, OpenRefusesSymlinkedReservedFolder) {
  std::string outside = base_ + "/outside";
  ASSERT_EQ(::mkdir(outside.c_str(), 0755), 0);
  ASSERT_EQ(::mkdir(root_.c_str(), 0755), 0);
  ASSERT_EQ(::symlink(outside.c_str(), (root_ + "/" + kReservedDir).c_str()), 0);
  auto cache = PosixCache::Open(root_, {});
  ASSERT_FALSE(cache.ok());
  EXPECT_EQ(cache.status().code(), Code::kInvalidArgument);
  EXPECT_TRUE(ListDir(outside).empty());
}

TEST_F(PosixCacheTest, CustomModesAreAppliedDespiteUmask) {
  PosixCacheOptions opts;
  opts.file_mode = 0664;
  opts.dir_mode = 0775;
  auto cache = OpenCache(opts);
  ASSERT_NE(cache, nullptr);
  ASSERT_TRUE(Put(*cache, "x/y", "1").ok());
  EXPECT_EQ(ModeOf(P("x")), 0775u);
  EXPECT_EQ(ModeOf(P("x/y")), 0664u);
}

TEST_F(PosixCacheTest, RemovePrunesEmptyParentsButKeepsRootAndReservedFolder) {
  auto cache = OpenCache();
  ASSERT_NE(cache, nullptr);
  ASSERT_TRUE(Put(*cache, "a/b/c/f1", "1").ok());
  ASSERT_TRUE(Put(*cache, "a/keep", "2").ok());
  ASSERT_TRUE(Put(*cache, "top", "3").ok());

  auto r = cache->Remove("a/b/c/f1");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(*r);
  EXPECT_FALSE(Exists(P("a/b/c/f1")));
  EXPECT_FALSE(Exists(P("a/b")));    // pruned
  EXPECT_TRUE(Exists(P("a/keep")));  // non-empty parent kept
  EXPECT_EQ(ModeOf(P("a")), 0755u);

  r = cache->Remove("a/keep");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(*r);
  EXPECT_FALSE(Exists(P("a")));

  r = cache->Remove("top");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(*r);
  EXPECT_TRUE(Exists(root_));
  EXPECT_TRUE(Exists(tmp_dir_));
  EXPECT_EQ(ListDir(root_), std::vector<std::string>{kReservedDir});

  // Absent file, missing parent, parent that is a file: ok(false).
  r = cache->Remove("top");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(*r);
  r = cache->Remove("x/y/z");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(*r);
  ASSERT_TRUE(Put(*cache, "f", "file").ok());
  r = cache->Remove("f/g");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(*r);
  EXPECT_TRUE(Exists(P("f")));

  // A folder is refused.
  ASSERT_TRUE(Put(*cache, "d/e", "x").ok());
  r = cache->Remove("d");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kConflict);
  EXPECT_TRUE(Exists(P("d/e")));
}

TEST_F(PosixCacheTest, ChownsNewFilesAndFoldersWhenIdsAreSet) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to chown";
  PosixCacheOptions opts;
  opts.uid = 1001;
  opts.gid = 1001;
  opts.file_mode = 0640;
  opts.dir_mode = 0750;
  auto cache = OpenCache(opts);
  ASSERT_NE(cache, nullptr);
  ASSERT_TRUE(Put(*cache, "p/q/f", "data").ok());
  for (const std::string& path :
       {root_, root_ + "/" + kReservedDir, tmp_dir_, P("p"), P("p/q"), P("p/q/f")}) {
    SCOPED_TRACE(path);
    struct stat sb;
    ASSERT_EQ(::lstat(path.c_str(), &sb), 0);
    EXPECT_EQ(sb.st_uid, 1001u);
    EXPECT_EQ(sb.st_gid, 1001u);
  }
  EXPECT_EQ(ModeOf(root_), 0750u);
  EXPECT_EQ(ModeOf(P("p")), 0750u);
  EXPECT_EQ(ModeOf(P("p/q")), 0750u);
  EXPECT_EQ(ModeOf(P("p/q/f")), 0640u);
}

}  // namespace ds::posix_cache_test
