// PosixCache temp files (posix_temp_file.cc): write, publish, crash leftovers, CleanTemp.
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

#include "fs/posix_cache.h"
#include "unit/posix_cache_fixture.h"

namespace ds::posix_cache_test {

TEST_F(PosixCacheTest, PublishCreatesNestedFoldersWithModesAndContent) {
  auto cache = OpenCache();
  ASSERT_NE(cache, nullptr);
  auto temp = cache->CreateTemp();
  ASSERT_TRUE(temp.ok()) << temp.status().ToString();
  EXPECT_EQ(ListDir(tmp_dir_).size(), 1u);
  std::string part1 = "hello, ";
  std::string part2(100000, 'x');
  ASSERT_TRUE((*temp)->Write(part1.data(), part1.size()).ok());
  ASSERT_TRUE((*temp)->Write(part2.data(), part2.size()).ok());
  EXPECT_EQ((*temp)->bytes_written(), part1.size() + part2.size());
  EXPECT_FALSE(Exists(P("a")));  // nothing visible before Publish
  Status s = (*temp)->Publish("a/b/c.bin");
  ASSERT_TRUE(s.ok()) << s.ToString();

  EXPECT_EQ(ReadFile(P("a/b/c.bin")), part1 + part2);
  EXPECT_EQ(ModeOf(P("a")), 0755u);
  EXPECT_EQ(ModeOf(P("a/b")), 0755u);
  EXPECT_EQ(ModeOf(P("a/b/c.bin")), 0644u);
  EXPECT_TRUE(ListDir(tmp_dir_).empty());
  // Publishing again or writing after Publish is a programming error, not a crash.
  EXPECT_FALSE((*temp)->Publish("a/b/d.bin").ok());
  EXPECT_FALSE((*temp)->Write("x", 1).ok());
  temp->reset();
  EXPECT_EQ(ReadFile(P("a/b/c.bin")), part1 + part2);

  auto info = cache->Stat("a/b/c.bin");
  ASSERT_TRUE(info.ok());
  EXPECT_TRUE(info->exists);
  EXPECT_FALSE(info->is_dir);
  EXPECT_EQ(info->size, part1.size() + part2.size());
  auto dir_info = cache->Stat("a/b");
  ASSERT_TRUE(dir_info.ok());
  EXPECT_TRUE(dir_info->exists);
  EXPECT_TRUE(dir_info->is_dir);
  auto missing = cache->Stat("a/b/nope");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->exists);
  auto under_file = cache->Stat("a/b/c.bin/x");
  ASSERT_TRUE(under_file.ok());
  EXPECT_FALSE(under_file->exists);
}

TEST_F(PosixCacheTest, PublishReplacesExistingFileAtomically) {
  auto cache = OpenCache();
  ASSERT_NE(cache, nullptr);
  ASSERT_TRUE(Put(*cache, "k/v", "old content").ok());
  int reader = ::open(P("k/v").c_str(), O_RDONLY);
  ASSERT_GE(reader, 0);
  ASSERT_TRUE(Put(*cache, "k/v", "new").ok());
  char buf[64] = {};
  ssize_t n = ::read(reader, buf, sizeof buf);
  ::close(reader);
  EXPECT_EQ(std::string(buf, n > 0 ? static_cast<size_t>(n) : 0), "old content");
  EXPECT_EQ(ReadFile(P("k/v")), "new");
  EXPECT_TRUE(ListDir(tmp_dir_).empty());
}

TEST_F(PosixCacheTest, CrashBetweenTempWriteAndRenameLeavesOnlyATempThatCleanTempRemoves) {
  auto cache = OpenCache();
  ASSERT_NE(cache, nullptr);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The "crashing" downloader: writes a temp and dies without publishing or cleaning up.
    auto temp = cache->CreateTemp();
    if (!temp.ok()) ::_exit(1);
    if (!(*temp)->Write("partial", 7).ok()) ::_exit(2);
    ::_exit(0);
  }
  int wstatus = 0;
  ASSERT_EQ(::waitpid(child, &wstatus, 0), child);  // reaped: its pid is no longer alive
  ASSERT_TRUE(WIFEXITED(wstatus));
  ASSERT_EQ(WEXITSTATUS(wstatus), 0);

  auto left = ListDir(tmp_dir_);
  ASSERT_EQ(left.size(), 1u);
  EXPECT_NE(left[0].find("-" + std::to_string(child) + "-"), std::string::npos) << left[0];
  EXPECT_EQ(left[0].rfind("dl-", 0), 0u) << left[0];

  auto removed = cache->CleanTemp();
  ASSERT_TRUE(removed.ok()) << removed.status().ToString();
  EXPECT_EQ(*removed, 1u);
  EXPECT_TRUE(ListDir(tmp_dir_).empty());
  // Only the reserved folder is in the root: the final path never existed.
  EXPECT_EQ(ListDir(root_), std::vector<std::string>{kReservedDir});
}

TEST_F(PosixCacheTest, CleanTempKeepsLiveAndForeignTempsButRemovesOldOnes) {
  auto cache = OpenCache();
  ASSERT_NE(cache, nullptr);
  auto live = cache->CreateTemp();
  ASSERT_TRUE(live.ok());
  ASSERT_TRUE((*live)->Write("live", 4).ok());
  // Another host (or PID namespace) whose pid 1 means nothing here: kept while recent.
  WriteFile(tmp_dir_ + "/dl-otherhost.1-1-0123456789abcdef.part", "x");
  WriteFile(tmp_dir_ + "/dl-otherhost.1-2-0123456789abcdef.part", "x");
  SetMtimeAgo(tmp_dir_ + "/dl-otherhost.1-2-0123456789abcdef.part", 2 * 3600);
  // Names we did not make (e.g. NFS silly-renames) are only removed by age.
  WriteFile(tmp_dir_ + "/.nfs000000000001", "x");
  WriteFile(tmp_dir_ + "/garbage", "x");
  SetMtimeAgo(tmp_dir_ + "/garbage", 2 * 3600);
  ASSERT_EQ(::mkdir((tmp_dir_ + "/somedir").c_str(), 0700), 0);

  auto removed = cache->CleanTemp();
  ASSERT_TRUE(removed.ok()) << removed.status().ToString();
  EXPECT_EQ(*removed, 2u);
  auto names = ListDir(tmp_dir_);
  EXPECT_EQ(names.size(), 4u);  // live, otherhost pid 1, .nfs, somedir
  EXPECT_TRUE(Exists(tmp_dir_ + "/dl-otherhost.1-1-0123456789abcdef.part"));
  EXPECT_TRUE(Exists(tmp_dir_ + "/.nfs000000000001"));
  EXPECT_FALSE(Exists(tmp_dir_ + "/garbage"));

  // The live temp survived and can still be published.
  ASSERT_TRUE((*live)->Publish("done").ok());
  EXPECT_EQ(ReadFile(P("done")), "live");

  // A live temp not written to for longer than stale_temp_age goes, and its Publish fails.
  auto idle = cache->CreateTemp();
  ASSERT_TRUE(idle.ok());
  for (const auto& n : ListDir(tmp_dir_)) {
    if (n.rfind("dl-", 0) == 0 && n.find("otherhost") == std::string::npos) {
      SetMtimeAgo(tmp_dir_ + "/" + n, 2 * 3600);
    }
  }
  removed = cache->CleanTemp();
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(*removed, 1u);
  Status s = (*idle)->Publish("idle");
  EXPECT_EQ(s.code(), Code::kIoError) << s.ToString();
  EXPECT_FALSE(Exists(P("idle")));
}

TEST_F(PosixCacheTest, DestroyingAnUnpublishedTempRemovesIt) {
  auto cache = OpenCache();
  ASSERT_NE(cache, nullptr);
  {
    auto temp = cache->CreateTemp();
    ASSERT_TRUE(temp.ok());
    ASSERT_TRUE((*temp)->Write("abc", 3).ok());
    EXPECT_EQ(ListDir(tmp_dir_).size(), 1u);
  }
  EXPECT_TRUE(ListDir(tmp_dir_).empty());
  EXPECT_EQ(ListDir(root_), std::vector<std::string>{kReservedDir});
}

TEST_F(PosixCacheTest, TempFileMayOutliveTheCache) {
  auto cache = OpenCache();
  ASSERT_NE(cache, nullptr);
  auto temp = cache->CreateTemp();
  ASSERT_TRUE(temp.ok());
  cache.reset();
  ASSERT_TRUE((*temp)->Write("z", 1).ok());
  ASSERT_TRUE((*temp)->Publish("late").ok());
  EXPECT_EQ(ReadFile(P("late")), "z");
}

}  // namespace ds::posix_cache_test
