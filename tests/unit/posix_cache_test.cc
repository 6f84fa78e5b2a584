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
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace ds {
namespace {

namespace fs = std::filesystem;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
}

bool Exists(const std::string& path) {
  struct stat sb;
  return ::lstat(path.c_str(), &sb) == 0;
}

mode_t ModeOf(const std::string& path) {
  struct stat sb;
  if (::lstat(path.c_str(), &sb) != 0) return 0;
  return sb.st_mode & 07777;
}

bool IsSymlink(const std::string& path) {
  struct stat sb;
  return ::lstat(path.c_str(), &sb) == 0 && S_ISLNK(sb.st_mode);
}

bool IsRegular(const std::string& path) {
  struct stat sb;
  return ::lstat(path.c_str(), &sb) == 0 && S_ISREG(sb.st_mode);
}

std::vector<std::string> ListDir(const std::string& path) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(path)) names.push_back(e.path().filename());
  std::sort(names.begin(), names.end());
  return names;
}

void SetMtimeAgo(const std::string& path, int seconds) {
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

}  // namespace
}  // namespace ds
