// Faults with default settings (issue 16): what a user who runs `serve` as documented gets when
// the service is killed, stopped or restarted, against the real local Ceph RGW and its real
// (non-persistent, synchronous) notifications, which are lost while the service is down.
#include <gtest/gtest.h>

#include <fstream>

#include "service_harness.h"

namespace ds::itest {
namespace {

// The bucket's objects and their contents.
std::map<std::string, std::string> BucketContents(ServiceHarness& h) {
  std::map<std::string, std::string> out;
  std::vector<std::string> keys;
  Status s = h.s3().ListObjects(h.bucket(), "", [&](const ObjectInfo& o) {
    keys.push_back(o.key);
    return true;
  });
  EXPECT_TRUE(s.ok()) << s.ToString();
  for (const std::string& k : keys) {
    std::string body;
    Result<ObjectInfo> got = h.s3().GetObject(h.bucket(), k, "", [&](const char* d, size_t n) {
      body.append(d, n);
      return Status::Ok();
    });
    EXPECT_TRUE(got.ok()) << got.status().ToString();
    out[k] = body;
  }
  return out;
}

std::string Key(const char* prefix, int i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%s%03d", prefix, i);
  return buf;
}

// Issue 16, item 1: serve SIGKILLed, objects deleted (and created, and overwritten) in the
// bucket while it is down, serve started again with the same default settings: the deleted
// objects must leave the cache without any manual step. Before the start pass they stayed for
// good, with no log line saying anything may have been missed.
TEST(FaultTest, KilledServeRestartedWithDefaultsMakesTheCacheEqualTheBucket) {
  ServiceHarness h;
  h.Start();
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  const int n = 40;
  for (int i = 0; i < n; ++i) {
    ASSERT_TRUE(h.s3().PutObject(h.bucket(), Key("k", i), "v1-" + Key("k", i)).ok());
  }
  ASSERT_TRUE(h.WaitContent(Key("k", n - 1), "v1-" + Key("k", n - 1))) << h.Log();
  ASSERT_TRUE(WaitFor([&] { return h.CacheContents().size() == static_cast<size_t>(n); }))
      << h.Log();

  h.Kill();
  for (int i = 0; i < n / 2; ++i) ASSERT_TRUE(h.s3().DeleteObject(h.bucket(), Key("k", i)).ok());
  for (int i = n / 2; i < n / 2 + 5; ++i) {
    ASSERT_TRUE(h.s3().PutObject(h.bucket(), Key("k", i), "v2-" + Key("k", i)).ok());
  }
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(h.s3().PutObject(h.bucket(), Key("new/n", i), "new-" + Key("n", i)).ok());
  }
  // Nothing was told: the deleted objects are still cached.
  ASSERT_TRUE(Exists(h.Path(Key("k", 0))));

  h.Restart();
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  const std::map<std::string, std::string> want = BucketContents(h);
  ASSERT_EQ(want.size(), static_cast<size_t>(n / 2 + 10));
  EXPECT_TRUE(WaitFor([&] { return h.CacheContents() == want; }, std::chrono::seconds(60)))
      << "the cache does not equal the bucket after the restart; log:\n"
      << h.Log();
  const std::string log = h.Log();
  EXPECT_NE(log.find("did not stop cleanly"), std::string::npos) << log;
  EXPECT_NE(log.find("start reconcile pass"), std::string::npos) << log;
  h.Stop();
}

// A clean stop (SIGTERM) leaves no marker: the next start does not warn, and its start pass
// still runs (reconcile-at-start is on by default); with it off, a clean restart runs none.
TEST(FaultTest, CleanStopIsNotReportedAsUnclean) {
  ServiceHarness h;
  h.Start({"--reconcile-at-start", "off"});
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  ASSERT_TRUE(h.s3().PutObject(h.bucket(), "a.txt", "a").ok());
  ASSERT_TRUE(h.WaitContent("a.txt", "a"));
  EXPECT_EQ(h.Terminate(), 0);
  const std::string running = h.cache() + "/.delete-sync/running";
  ASSERT_TRUE(Exists(running));
  EXPECT_TRUE(std::filesystem::is_empty(running)) << "a clean stop left its run marker";
  h.Restart();
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  ASSERT_TRUE(h.s3().PutObject(h.bucket(), "b.txt", "b").ok());
  ASSERT_TRUE(h.WaitContent("b.txt", "b"));
  std::string log = h.Log();
  EXPECT_EQ(log.find("did not stop cleanly"), std::string::npos) << log;
  EXPECT_EQ(log.find("start reconcile pass"), std::string::npos) << log;

  // Killed now: the next start runs its pass although reconcile-at-start is off.
  h.Kill();
  ASSERT_TRUE(h.s3().DeleteObject(h.bucket(), "a.txt").ok());
  h.Restart();
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  EXPECT_TRUE(h.WaitGone("a.txt")) << h.Log();
  log = h.Log();
  EXPECT_NE(log.find("did not stop cleanly"), std::string::npos) << log;
  EXPECT_NE(log.find("start reconcile pass"), std::string::npos) << log;
  h.Stop();
}

// Issue 16, shadowed keys and failed downloads, with the real binary against RGW: "a" and "a/b"
// both exist; the one that loses the path is a failed download (listed by `status`, re-queued
// by `retry-failed`), and appears by itself once the key holding its path is removed.
TEST(FaultTest, ShadowedKeyAppearsWhenTheWinnerGoesAndRetryFailedRequeues) {
  const std::map<std::string, std::string> env = ReadRgwEnv();
  ASSERT_FALSE(env.empty()) << "run `scripts/rgw-local.sh start` first";
  Result<S3Config> cfg = S3Config::FromVariables(env);
  ASSERT_TRUE(cfg.ok());
  S3Client s3(*cfg);
  const std::string bucket = "ds-shadow-" + RandomSuffix();
  ASSERT_TRUE(s3.CreateBucket(bucket).ok());
  ASSERT_TRUE(s3.PutObject(bucket, "a", "file a").ok());
  ASSERT_TRUE(s3.PutObject(bucket, "a/b", "file a/b").ok());
  const std::string dir = std::filesystem::temp_directory_path() / ("ds-shadow-" + RandomSuffix());
  std::filesystem::create_directories(dir);
  const std::string cache = dir + "/cache";
  auto doc = [&](const std::string& name, const std::string& key) {
    return R"({"Records":[{"eventVersion":"2.2","eventSource":"ceph:s3","eventName":")" + name +
           R"(","s3":{"bucket":{"name":")" + bucket + R"("},"object":{"key":")" + key + R"("}}}]})";
  };
  auto apply = [&](const std::string& lines, std::string* out) {
    const std::string events = dir + "/events-" + RandomSuffix() + ".jsonl";
    std::ofstream(events) << lines;
    return RunCommand({DS_BINARY, "apply", "--cache", cache, "--bucket", bucket, "--events", events,
                       "--fetch-concurrency", "1"},
                      env, out);
  };
  std::string out;
  // "a" first: it wins the path; "a/b" fails with a conflict, for good.
  EXPECT_EQ(apply(doc("ObjectCreated:Put", "a") + "\n", &out), 0) << out;
  EXPECT_EQ(apply(doc("ObjectCreated:Put", "a/b") + "\n", &out), 1) << out;
  EXPECT_EQ(ReadFile(cache + "/a"), "file a");
  ASSERT_EQ(RunCommand({DS_BINARY, "status", "--cache", cache, "--json"}, {}, &out), 0) << out;
  EXPECT_NE(out.find("\"downloads_failed\":1"), std::string::npos) << out;
  // retry-failed re-queues it (it fails again: "a" still holds the path).
  ASSERT_EQ(RunCommand({DS_BINARY, "retry-failed", "--cache", cache}, {}, &out), 0) << out;
  EXPECT_NE(out.find("re-queued 1 failed download(s)"), std::string::npos) << out;
  ASSERT_EQ(RunCommand({DS_BINARY, "status", "--cache", cache, "--json"}, {}, &out), 0) << out;
  EXPECT_NE(out.find("\"downloads_failed\":0"), std::string::npos) << out;
  EXPECT_NE(out.find("\"downloads_waiting\":1"), std::string::npos) << out;
  // "a" is deleted: its removal frees the path and "a/b" appears, with no event of its own.
  ASSERT_TRUE(s3.DeleteObject(bucket, "a").ok());
  EXPECT_EQ(apply(doc("ObjectRemoved:Delete", "a") + "\n", &out), 0) << out;
  EXPECT_EQ(ReadFile(cache + "/a/b"), "file a/b") << out;
  ASSERT_EQ(RunCommand({DS_BINARY, "status", "--cache", cache, "--json"}, {}, &out), 0) << out;
  EXPECT_NE(out.find("\"downloads_failed\":0"), std::string::npos) << out;
  EXPECT_NE(out.find("\"downloads_waiting\":0"), std::string::npos) << out;
  if (!::testing::Test::HasFailure()) std::filesystem::remove_all(dir);
}

// Issue 16, item 7: a deleted state database was recreated silently, and reconcile then judged
// files "matching" by size alone. Now the start pass verifies every file: one whose bytes
// changed behind the service's back (same size) is downloaded again.
TEST(FaultTest, LostStateDatabaseIsDetectedAndTheWholeCacheVerified) {
  ServiceHarness h;
  h.Start();
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(h.s3().PutObject(h.bucket(), Key("k", i), "good-" + Key("k", i)).ok());
  }
  ASSERT_TRUE(WaitFor([&] { return h.CacheContents().size() == 10u; })) << h.Log();
  EXPECT_EQ(h.Terminate(), 0);
  const std::string reserved = h.cache() + "/.delete-sync/";
  for (const char* f : {"state.db", "state.db-wal", "state.db-shm"}) {
    std::filesystem::remove(reserved + f);
  }
  std::ofstream(h.Path(Key("k", 3)), std::ios::trunc) << "BAD!-" << Key("k", 3);  // same size
  ASSERT_TRUE(h.s3().DeleteObject(h.bucket(), Key("k", 4)).ok());
  h.Restart();
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  const std::map<std::string, std::string> want = BucketContents(h);
  EXPECT_TRUE(WaitFor([&] { return h.CacheContents() == want; }, std::chrono::seconds(60)))
      << h.Log();
  EXPECT_NE(h.Log().find("has no record of this cache"), std::string::npos) << h.Log();
  h.Stop();
}

// Issue 16, item 7: with a few pages of state.db overwritten, serve started and logged
// "cannot claim a job ... malformed" many times a second. Now it refuses to start, naming the
// recovery command; `delete-sync state rebuild` keeps the damaged file and the next start
// verifies the cache.
TEST(FaultTest, DamagedStateDatabaseIsRefusedAndRebuilt) {
  ServiceHarness h;
  h.Start();
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(h.s3().PutObject(h.bucket(), Key("some/longer/folder/name/k", i), "v").ok());
  }
  ASSERT_TRUE(WaitFor([&] { return h.CacheContents().size() == 200u; })) << h.Log();
  EXPECT_EQ(h.Terminate(), 0);
  const std::string db = h.cache() + "/.delete-sync/state.db";
  ASSERT_FALSE(Exists(db + "-wal") && std::filesystem::file_size(db + "-wal") > 0)
      << "a clean stop checkpoints the WAL";
  const auto size = std::filesystem::file_size(db);
  ASSERT_GE(size, 4u * 4096u);
  {
    std::fstream f(db, std::ios::in | std::ios::out | std::ios::binary);
    for (uint64_t page = 1; page < 4; ++page) {  // pages 2 to 4 (page 1 holds the header)
      f.seekp(static_cast<std::streamoff>(page * 4096));
      std::string junk(4096, '\x5a');
      f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
    }
  }
  std::string out;
  const std::vector<std::string> serve = {
      DS_BINARY,         "serve",    "--cache",          h.cache(),
      "--bucket",        h.bucket(), "--webhook-listen", "127.0.0.1:" + std::to_string(FreePort()),
      "--webhook-token", "t"};
  int rc = RunCommand(serve, h.env(), &out);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("delete-sync state rebuild --state " + db), std::string::npos) << out;
  EXPECT_EQ(RunCommand({DS_BINARY, "state", "check", "--cache", h.cache()}, {}, &out), 1) << out;

  ASSERT_EQ(RunCommand({DS_BINARY, "state", "rebuild", "--cache", h.cache()}, {}, &out), 0) << out;
  EXPECT_NE(out.find("kept the damaged state database as " + db + ".damaged-"), std::string::npos)
      << out;
  EXPECT_EQ(RunCommand({DS_BINARY, "state", "check", "--cache", h.cache()}, {}, &out), 0) << out;
  ASSERT_TRUE(h.s3().DeleteObject(h.bucket(), Key("some/longer/folder/name/k", 7)).ok());
  h.Restart();
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  const std::map<std::string, std::string> want = BucketContents(h);
  EXPECT_TRUE(WaitFor([&] { return h.CacheContents() == want; }, std::chrono::seconds(60)))
      << h.Log();
  EXPECT_NE(h.Log().find("state rebuilt at"), std::string::npos) << h.Log();
  h.Stop();
}

}  // namespace
}  // namespace ds::itest
