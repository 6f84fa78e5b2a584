// PosixRemovalBatch (posix_removal_batch.cc): parallel lookups and unlinks, one fsync per folder.
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

TEST_F(PosixCacheTest, RemovalBatchUnlinksAtOnceAndPrunesAtCommit) {
  auto cache = OpenCache();
  ASSERT_NE(cache, nullptr);
  // One by one (Remove), over 100 folders.
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(Put(*cache, "d" + std::to_string(i) + "/sub/f", "x").ok());
  }
  ASSERT_TRUE(Put(*cache, "d0/keep", "k").ok());
  ASSERT_TRUE(Put(*cache, "top", "t").ok());
  ASSERT_TRUE(Put(*cache, "folder/inside", "i").ok());

  std::unique_ptr<RemovalBatch> batch = cache->BeginRemovals();
  for (int i = 0; i < 100; ++i) {
    auto r = batch->Remove("d" + std::to_string(i) + "/sub/f");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE(*r);
  }
  auto r = batch->Remove("top");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(*r);
  r = batch->Remove("top");  // already gone: ok(false)
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(*r);
  r = batch->Remove("missing/parent");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(*r);
  r = batch->Remove("folder");  // a folder is never removed
  EXPECT_EQ(r.status().code(), Code::kConflict);
  EXPECT_FALSE(Exists(P("d7/sub/f")));  // unlinked before Commit
  EXPECT_TRUE(Exists(P("d7/sub")));     // pruned only at Commit

  ASSERT_TRUE(batch->Commit().ok());
  EXPECT_FALSE(Exists(P("d7")));
  EXPECT_FALSE(Exists(P("d0/sub")));
  EXPECT_TRUE(Exists(P("d0/keep")));
  EXPECT_TRUE(Exists(P("folder/inside")));
  EXPECT_EQ(ListDir(root_), (std::vector<std::string>{kReservedDir, "d0", "folder"}));
}

// StatMany and RemoveMany look at and unlink many paths at once (issue 17: a shared file
// system answers many calls at a time): one by one or 16 at a time, over more folders than the
// batch keeps open (so folders are synced and closed in between), each path gets what
// PosixCache::Stat and PosixCache::Remove would give it, in order.
TEST_F(PosixCacheTest, RemovalBatchLooksAtAndUnlinksManyPathsAtOnceWithTheResultsOfOneByOne) {
  for (size_t parallelism : {size_t{1}, size_t{16}}) {
    SCOPED_TRACE("parallelism " + std::to_string(parallelism));
    fs::remove_all(root_);
    PosixCacheOptions opts;
    opts.parallelism = parallelism;
    auto cache = OpenCache(opts);
    ASSERT_NE(cache, nullptr);
    std::vector<std::string> paths;
    for (int i = 0; i < 300; ++i) {
      std::string p = "d" + std::to_string(i) + "/sub/f";
      ASSERT_TRUE(Put(*cache, p, std::string(static_cast<size_t>(i), 'x')).ok());
      paths.push_back(p);
    }
    ASSERT_TRUE(Put(*cache, "d0/keep", "k").ok());
    ASSERT_TRUE(Put(*cache, "top", "t").ok());
    ASSERT_TRUE(Put(*cache, "folder/inside", "i").ok());
    fs::create_directories(base_ + "/outside");
    WriteFile(base_ + "/outside/f", "secret");
    ASSERT_EQ(::symlink((base_ + "/outside").c_str(), P("evil").c_str()), 0);
    // The odd ones, among the others: absent with its folder missing, absent in a folder that
    // exists, under a file, a folder, crossing a symbolic link, not a cache path at all.
    const std::vector<std::string> odd = {"missing/parent", "d5/sub/none", "top/below",
                                          "folder",         "evil/f",      "../escape"};
    paths.insert(paths.begin() + 100, odd.begin(), odd.end());

    std::vector<Result<CacheEntryInfo>> one_by_one;
    for (const std::string& p : paths) one_by_one.push_back(cache->Stat(p));
    std::unique_ptr<RemovalBatch> batch = cache->BeginRemovals();
    std::vector<Result<CacheEntryInfo>> looked = batch->StatMany(paths);
    ASSERT_EQ(looked.size(), paths.size());
    for (size_t i = 0; i < paths.size(); ++i) {
      SCOPED_TRACE(paths[i]);
      ASSERT_EQ(looked[i].ok(), one_by_one[i].ok());
      if (!looked[i].ok()) {
        EXPECT_EQ(looked[i].status().code(), one_by_one[i].status().code());
        continue;
      }
      EXPECT_EQ(looked[i]->exists, one_by_one[i]->exists);
      EXPECT_EQ(looked[i]->is_dir, one_by_one[i]->is_dir);
      EXPECT_EQ(looked[i]->size, one_by_one[i]->size);
    }
    EXPECT_EQ(looked[7]->size, 7u);
    EXPECT_EQ(looked[100 + 4].status().code(), Code::kConflict);  // the symbolic link
    EXPECT_EQ(looked[100 + 5].status().code(), Code::kInvalidArgument);

    std::vector<Result<bool>> removed = batch->RemoveMany(paths);
    ASSERT_EQ(removed.size(), paths.size());
    for (size_t i = 0; i < paths.size(); ++i) {
      SCOPED_TRACE(paths[i]);
      if (i >= 100 && i < 100 + odd.size()) continue;
      ASSERT_TRUE(removed[i].ok()) << removed[i].status().ToString();
      EXPECT_TRUE(*removed[i]);
    }
    ASSERT_TRUE(removed[100].ok());
    EXPECT_FALSE(*removed[100]);  // folder missing
    ASSERT_TRUE(removed[101].ok());
    EXPECT_FALSE(*removed[101]);  // absent
    ASSERT_TRUE(removed[102].ok());
    EXPECT_FALSE(*removed[102]);                               // under a file: nothing there
    EXPECT_EQ(removed[103].status().code(), Code::kConflict);  // a folder is never removed
    EXPECT_EQ(removed[104].status().code(), Code::kConflict);  // nor through a link
    EXPECT_EQ(removed[105].status().code(), Code::kInvalidArgument);
    EXPECT_FALSE(Exists(P("d299/sub/f")));  // unlinked before Commit
    EXPECT_TRUE(Exists(P("d299/sub")));     // pruned only at Commit
    // Removing again in the same batch: nothing there any more.
    std::vector<Result<bool>> again = batch->RemoveMany({"d1/sub/f", "d299/sub/f"});
    ASSERT_TRUE(again[0].ok() && again[1].ok());
    EXPECT_FALSE(*again[0]);
    EXPECT_FALSE(*again[1]);

    ASSERT_TRUE(batch->Commit().ok());
    EXPECT_EQ(ReadFile(base_ + "/outside/f"), "secret");
    EXPECT_TRUE(Exists(P("d0/keep")));
    EXPECT_FALSE(Exists(P("d0/sub")));
    EXPECT_TRUE(Exists(P("folder/inside")));
    EXPECT_EQ(ListDir(root_),
              (std::vector<std::string>{kReservedDir, "d0", "evil", "folder", "top"}));
  }
}

}  // namespace ds::posix_cache_test
