// The CacheFs contract (core/cache_fs.h), run against both implementations: the fake the
// engine's unit tests use and the real POSIX cache (issue 18, "the same contract suites run
// against the fakes and the real StateStore/CacheFs").
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/cache_fs.h"
#include "fakes/fakes.h"
#include "fs/posix_cache.h"

namespace ds {
namespace {

struct FakeCache {
  static std::unique_ptr<CacheFs> Make(const std::string&) {
    return std::make_unique<fakes::FakeCacheFs>();
  }
};
struct PosixCacheImpl {
  static std::unique_ptr<CacheFs> Make(const std::string& dir) {
    Result<std::unique_ptr<PosixCache>> c = PosixCache::Open(dir);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::unique_ptr<CacheFs>(std::move(c).value()) : nullptr;
  }
};

template <typename Impl>
class CacheFsContract : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ds-cache-contract-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    cache_ = Impl::Make(dir_);
    ASSERT_NE(cache_, nullptr);
  }
  void TearDown() override {
    cache_.reset();
    std::filesystem::remove_all(dir_);
  }
  Status Put(const std::string& path, const std::string& body) {
    Result<std::unique_ptr<TempFile>> t = cache_->CreateTemp();
    if (!t.ok()) return t.status();
    DS_RETURN_IF_ERROR((*t)->Write(body.data(), body.size()));
    return (*t)->Publish(path);
  }
  std::vector<std::string> Walk(const std::string& prefix) {
    std::vector<std::string> out;
    Status s = cache_->Walk(prefix, [&](const std::string& p, const CacheEntryInfo&) {
      out.push_back(p);
      return true;
    });
    EXPECT_TRUE(s.ok()) << s.ToString();
    return out;
  }

  std::string dir_;
  std::unique_ptr<CacheFs> cache_;
};

using Implementations = ::testing::Types<FakeCache, PosixCacheImpl>;
class Names {
 public:
  template <typename T>
  static std::string GetName(int) {
    return std::is_same_v<T, FakeCache> ? "Fake" : "Posix";
  }
};
TYPED_TEST_SUITE(CacheFsContract, Implementations, Names);

TYPED_TEST(CacheFsContract, NothingIsVisibleBeforePublishAndAllOfItAfter) {
  CacheFs& c = *this->cache_;
  Result<std::unique_ptr<TempFile>> t = c.CreateTemp();
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  ASSERT_TRUE((*t)->Write("hello", 5).ok());
  EXPECT_FALSE(c.Stat("a/b").value().exists);
  EXPECT_TRUE(this->Walk("").empty());
  ASSERT_TRUE((*t)->Publish("a/b").ok());
  Result<CacheEntryInfo> st = c.Stat("a/b");
  ASSERT_TRUE(st.ok());
  EXPECT_TRUE(st->exists);
  EXPECT_FALSE(st->is_dir);
  EXPECT_EQ(st->size, 5u);
  EXPECT_TRUE(c.Stat("a").value().is_dir);
  EXPECT_EQ(this->Walk(""), std::vector<std::string>{"a/b"});
}

TYPED_TEST(CacheFsContract, RemovingIsIdempotentAndSaysWhetherAFileWentAway) {
  CacheFs& c = *this->cache_;
  ASSERT_TRUE(this->Put("d/k", "x").ok());
  EXPECT_TRUE(c.Remove("d/k").value());
  EXPECT_FALSE(c.Stat("d/k").value().exists);
  Result<bool> again = c.Remove("d/k");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_FALSE(*again);
  EXPECT_FALSE(c.Remove("never/was").value());
}

TYPED_TEST(CacheFsContract, AFileAndAFolderNeverShareAPath) {
  ASSERT_TRUE(this->Put("x", "file").ok());
  EXPECT_EQ(this->Put("x/y", "below a file").code(), Code::kConflict);
  ASSERT_TRUE(this->Put("f/y", "in a folder").ok());
  EXPECT_EQ(this->Put("f", "over a folder").code(), Code::kConflict);
  EXPECT_EQ(this->Walk(""), (std::vector<std::string>{"f/y", "x"}));
}

TYPED_TEST(CacheFsContract, TheWalkIsInS3KeyOrderAndHonoursAPlainBytePrefix) {
  // S3 key order is the byte order of the whole key: "a!" (0x21) before "a/b" (0x2f), which a
  // folder-by-folder walk sorting names alone would get wrong.
  for (const char* k : {"b", "a/z", "a/b", "a!", "a0"}) ASSERT_TRUE(this->Put(k, k).ok()) << k;
  EXPECT_EQ(this->Walk(""), (std::vector<std::string>{"a!", "a/b", "a/z", "a0", "b"}));
  EXPECT_EQ(this->Walk("a/"), (std::vector<std::string>{"a/b", "a/z"}));
  EXPECT_EQ(this->Walk("a"), (std::vector<std::string>{"a!", "a/b", "a/z", "a0"}));
}

TYPED_TEST(CacheFsContract, ABatchOfRemovalsTakesEffectAndCommits) {
  CacheFs& c = *this->cache_;
  ASSERT_TRUE(this->Put("g/1", "1").ok());
  ASSERT_TRUE(this->Put("g/2", "2").ok());
  ASSERT_TRUE(this->Put("h", "3").ok());
  std::unique_ptr<RemovalBatch> batch = c.BeginRemovals();
  std::vector<Result<CacheEntryInfo>> seen = batch->StatMany({"g/1", "g/2", "missing"});
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_TRUE(seen[0].value().exists);
  EXPECT_FALSE(seen[2].value().exists);
  std::vector<Result<bool>> removed = batch->RemoveMany({"g/1", "g/2", "missing"});
  ASSERT_EQ(removed.size(), 3u);
  EXPECT_TRUE(removed[0].value());
  EXPECT_TRUE(removed[1].value());
  EXPECT_FALSE(removed[2].value());
  ASSERT_TRUE(batch->Commit().ok());
  EXPECT_EQ(this->Walk(""), std::vector<std::string>{"h"});
}

}  // namespace
}  // namespace ds
