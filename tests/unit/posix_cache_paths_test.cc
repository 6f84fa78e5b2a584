// The safe path walk of PosixCache (posix_cache_paths.cc): path checks, symbolic links never
// lead outside the root, files against folders, races with concurrent pruning.
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

TEST_F(PosixCacheTest, PublishConflictsBetweenFilesAndFolders) {
  auto cache = OpenCache();
  ASSERT_NE(cache, nullptr);
  ASSERT_TRUE(Put(*cache, "a", "I am a file").ok());
  Status s = Put(*cache, "a/b", "x");
  EXPECT_EQ(s.code(), Code::kConflict);
  EXPECT_NE(s.message().find("cannot create folder 'a' for key 'a/b': a file of that name exists"),
            std::string::npos)
      << s.message();
  EXPECT_EQ(ReadFile(P("a")), "I am a file");

  s = Put(*cache, "a/b/c", "x");
  EXPECT_EQ(s.code(), Code::kConflict);

  ASSERT_TRUE(Put(*cache, "d/e/f", "x").ok());
  s = Put(*cache, "d", "x");
  EXPECT_EQ(s.code(), Code::kConflict) << s.ToString();
  s = Put(*cache, "d/e", "x");
  EXPECT_EQ(s.code(), Code::kConflict) << s.ToString();
  EXPECT_EQ(ReadFile(P("d/e/f")), "x");
  // Failed publishes leave no temp files behind once the TempFile is gone.
  EXPECT_TRUE(ListDir(tmp_dir_).empty());
}

TEST_F(PosixCacheTest, SymlinksInsideTheCacheNeverLeadOutside) {
  std::string outside = base_ + "/outside";
  ASSERT_EQ(::mkdir(outside.c_str(), 0755), 0);
  WriteFile(outside + "/victim", "precious");
  auto cache = OpenCache();
  ASSERT_NE(cache, nullptr);
  ASSERT_EQ(::symlink(outside.c_str(), P("evil").c_str()), 0);

  auto r = cache->Remove("evil/victim");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kConflict);
  EXPECT_NE(r.status().message().find("path component 'evil' is a symbolic link"),
            std::string::npos)
      << r.status().message();
  EXPECT_EQ(ReadFile(outside + "/victim"), "precious");

  Status s = Put(*cache, "evil/new", "x");
  EXPECT_EQ(s.code(), Code::kConflict) << s.ToString();
  s = Put(*cache, "evil/sub/new", "x");
  EXPECT_EQ(s.code(), Code::kConflict) << s.ToString();
  EXPECT_EQ(ListDir(outside), std::vector<std::string>{"victim"});

  // Deeper symlinked folder.
  ASSERT_TRUE(Put(*cache, "a/real", "r").ok());
  ASSERT_EQ(::symlink(outside.c_str(), P("a/evil").c_str()), 0);
  s = Put(*cache, "a/evil/x/y", "x");
  EXPECT_EQ(s.code(), Code::kConflict) << s.ToString();
  r = cache->Remove("a/evil/victim");
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(ListDir(outside), std::vector<std::string>{"victim"});

  // Stat never follows.
  auto info = cache->Stat("evil");
  ASSERT_TRUE(info.ok());
  EXPECT_TRUE(info->exists);
  EXPECT_FALSE(info->is_dir);
  auto through = cache->Stat("evil/victim");
  EXPECT_FALSE(through.ok());
  EXPECT_EQ(through.status().code(), Code::kConflict);

  // A symlink at the final component: Publish replaces the link, not its target...
  ASSERT_EQ(::symlink((outside + "/victim").c_str(), P("link").c_str()), 0);
  ASSERT_TRUE(Put(*cache, "link", "mine").ok());
  EXPECT_TRUE(IsRegular(P("link")));
  EXPECT_EQ(ReadFile(P("link")), "mine");
  EXPECT_EQ(ReadFile(outside + "/victim"), "precious");
  // ... and Remove unlinks the link, not its target.
  ASSERT_EQ(::symlink((outside + "/victim").c_str(), P("link2").c_str()), 0);
  r = cache->Remove("link2");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(*r);
  EXPECT_FALSE(Exists(P("link2")));
  EXPECT_EQ(ReadFile(outside + "/victim"), "precious");

  // Walk does not descend into symlinked folders, even when the prefix names one.
  std::vector<std::string> seen;
  ASSERT_TRUE(cache
                  ->Walk("",
                         [&](const std::string& k, const CacheEntryInfo&) {
                           seen.push_back(k);
                           return true;
                         })
                  .ok());
  EXPECT_EQ(seen, (std::vector<std::string>{"a/real", "link"}));
  seen.clear();
  ASSERT_TRUE(cache
                  ->Walk("evil/",
                         [&](const std::string& k, const CacheEntryInfo&) {
                           seen.push_back(k);
                           return true;
                         })
                  .ok());
  EXPECT_TRUE(seen.empty());
  EXPECT_TRUE(IsSymlink(P("evil")));
}

TEST_F(PosixCacheTest, RefusesPathsThatAreNotPlainRelativePaths) {
  auto cache = OpenCache();
  ASSERT_NE(cache, nullptr);
  const std::vector<std::string> bad = {"",
                                        "/etc/passwd",
                                        "..",
                                        ".",
                                        "../x",
                                        "a/../../x",
                                        "a/./b",
                                        "a//b",
                                        "a/",
                                        std::string(kReservedDir),
                                        std::string(kReservedDir) + "/tmp/x",
                                        std::string("a\0b", 3),
                                        std::string(300, 'n')};
  for (const std::string& path : bad) {
    SCOPED_TRACE("path: " + path);
    auto r = cache->Remove(path);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
    auto st = cache->Stat(path);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.status().code(), Code::kInvalidArgument);
    EXPECT_EQ(Put(*cache, path, "x").code(), Code::kInvalidArgument);
  }
  EXPECT_TRUE(Exists(tmp_dir_));
  EXPECT_TRUE(ListDir(tmp_dir_).empty());
  // Only the exact reserved name is reserved.
  std::string lookalike = std::string(kReservedDir) + "x/a";
  EXPECT_TRUE(Put(*cache, lookalike, "ok").ok());
  EXPECT_TRUE(Put(*cache, "a/" + std::string(kReservedDir), "ok").ok());

  EXPECT_EQ(
      cache->Walk("/a", [](const std::string&, const CacheEntryInfo&) { return true; }).code(),
      Code::kInvalidArgument);
  EXPECT_EQ(
      cache->Walk("../a", [](const std::string&, const CacheEntryInfo&) { return true; }).code(),
      Code::kInvalidArgument);
}

TEST_F(PosixCacheTest, ConcurrentPublishAndRemoveInSharedFolders) {
  auto cache = OpenCache();
  ASSERT_NE(cache, nullptr);
  constexpr int kThreads = 4;
  constexpr int kRounds = 150;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRounds; ++i) {
        std::string key = "s/t/u" + std::to_string(t) + "/f" + std::to_string(i % 3);
        Status s = Put(*cache, key, "v");
        if (!s.ok()) {
          ADD_FAILURE() << "publish " << key << ": " << s.ToString();
          ++failures;
          continue;
        }
        auto r = cache->Remove(key);
        if (!r.ok() || !*r) {
          ADD_FAILURE() << "remove " << key << ": " << r.status().ToString();
          ++failures;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_FALSE(Exists(P("s")));  // the last remover pruned everything
  EXPECT_TRUE(ListDir(tmp_dir_).empty());
}

}  // namespace ds::posix_cache_test
