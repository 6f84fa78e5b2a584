// PosixCache::Walk (posix_cache_walk.cc): regular files in S3 key order.
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

TEST_F(PosixCacheTest, WalkYieldsRegularFilesInS3KeyOrder) {
  auto cache = OpenCache();
  ASSERT_NE(cache, nullptr);
  std::vector<std::string> keys = {"a-b", "a/b",        "a/c/d", "a0",   "b",
                                   "Z",   "\xc3\xbc/x", "a/c-",  "a/c0", "\xff\xfe raw"};
  for (const auto& k : keys) ASSERT_TRUE(Put(*cache, k, "content of " + k).ok()) << k;
  // Not reported: symlinks, fifos, empty folders, temp files in the reserved folder.
  ASSERT_EQ(::symlink("a0", P("lnk").c_str()), 0);
  ASSERT_EQ(::symlink("a", P("dirlnk").c_str()), 0);
  ASSERT_EQ(::mkfifo(P("a/fifo").c_str(), 0600), 0);
  ASSERT_EQ(::mkdir(P("empty").c_str(), 0755), 0);
  auto temp = cache->CreateTemp();
  ASSERT_TRUE(temp.ok());

  std::vector<std::string> expected = keys;
  std::sort(expected.begin(), expected.end());  // byte order
  ASSERT_EQ(expected.front(), "Z");

  auto walk = [&](const std::string& prefix, size_t limit = 1000) {
    std::vector<std::string> seen;
    Status s = cache->Walk(prefix, [&](const std::string& k, const CacheEntryInfo& info) {
      EXPECT_TRUE(info.exists);
      EXPECT_FALSE(info.is_dir);
      EXPECT_EQ(info.size, ("content of " + k).size()) << k;
      seen.push_back(k);
      return seen.size() < limit;
    });
    EXPECT_TRUE(s.ok()) << s.ToString();
    return seen;
  };
  EXPECT_EQ(walk(""), expected);
  EXPECT_EQ(walk("a"), (std::vector<std::string>{"a-b", "a/b", "a/c-", "a/c/d", "a/c0", "a0"}));
  EXPECT_EQ(walk("a/"), (std::vector<std::string>{"a/b", "a/c-", "a/c/d", "a/c0"}));
  EXPECT_EQ(walk("a/c"), (std::vector<std::string>{"a/c-", "a/c/d", "a/c0"}));
  EXPECT_EQ(walk("a/c/"), (std::vector<std::string>{"a/c/d"}));
  EXPECT_EQ(walk("a/b"), (std::vector<std::string>{"a/b"}));
  EXPECT_EQ(walk("\xc3"), (std::vector<std::string>{"\xc3\xbc/x"}));
  EXPECT_TRUE(walk("nope").empty());
  EXPECT_TRUE(walk("nope/deeper/").empty());
  EXPECT_TRUE(walk("b/").empty());  // b is a file
  EXPECT_TRUE(walk(".delete").empty());
  EXPECT_EQ(walk("", 3), (std::vector<std::string>(expected.begin(), expected.begin() + 3)));
}

TEST_F(PosixCacheTest, WalkVisitorMayRemoveWhatItSees) {
  auto cache = OpenCache();
  ASSERT_NE(cache, nullptr);
  for (const std::string k : {"x/1", "x/2", "x/y/3", "z"}) ASSERT_TRUE(Put(*cache, k, k).ok());
  std::vector<std::string> seen;
  Status s = cache->Walk("", [&](const std::string& k, const CacheEntryInfo&) {
    seen.push_back(k);
    EXPECT_TRUE(cache->Remove(k).ok());
    return true;
  });
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(seen, (std::vector<std::string>{"x/1", "x/2", "x/y/3", "z"}));
  EXPECT_EQ(ListDir(root_), std::vector<std::string>{kReservedDir});
}

}  // namespace ds::posix_cache_test
