// `delete-sync reconcile` against the real local Ceph RGW: events lost on purpose (the bucket
// has no notifications), then one pass heals the cache.
#include <gtest/gtest.h>
#include <sys/file.h>

#include <nlohmann/json.hpp>

#include "service_harness.h"

namespace ds::itest {
namespace {

class ReconcileIT : public ::testing::Test {
 protected:
  void SetUp() override {
    rgw_.Create("ds-rec-" + RandomSuffix());
    ASSERT_FALSE(HasFatalFailure());
    env_ = rgw_.env();
    s3_ = &rgw_.s3();
    bucket_ = rgw_.name();
    dir_ = std::filesystem::temp_directory_path() / ("ds-rec-" + RandomSuffix());
    cache_ = dir_ + "/cache";
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void Put(const std::string& k, const std::string& v) {
    ASSERT_TRUE(s3_->PutObject(bucket_, k, v).ok()) << k;
  }
  // Runs reconcile --json with extra args; returns the exit code and the parsed report.
  int Reconcile(const std::vector<std::string>& extra, nlohmann::json* report,
                std::map<std::string, std::string> env_override = {}) {
    std::vector<std::string> argv = {DS_BINARY, "reconcile", "--cache",     cache_, "--bucket",
                                     bucket_,   "--json",    "--log-level", "warn"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    std::map<std::string, std::string> env = env_;
    for (const auto& [k, v] : env_override) env[k] = v;
    std::string out;
    int rc = RunCommand(argv, env, &out);
    // The JSON report is the last line of output; logs (stderr) come before it.
    size_t start = out.rfind("\n{");
    std::string text = start == std::string::npos ? out : out.substr(start + 1);
    try {
      *report = nlohmann::json::parse(text);
    } catch (const std::exception&) {
      ADD_FAILURE() << "no JSON report in:\n" << out;
    }
    last_output_ = out;
    return rc;
  }
  std::string Path(const std::string& k) { return cache_ + "/" + k; }

  RgwBucket rgw_;
  std::map<std::string, std::string> env_;
  S3Client* s3_ = nullptr;
  std::string bucket_, dir_, cache_, last_output_;
};

TEST_F(ReconcileIT, HealsMissingOrphanedAndStaleInByteOrder) {
  // Keys whose byte order differs from a naive path sort: "a-b" < "a/b" < "a/c/d" < "a0".
  for (const char* k : {"a-b", "a/b", "a/c/d", "a0", "match.txt", "stale.txt", "gone.txt",
                        "deep/x/y/z.txt", "sp ace/ü.txt"}) {
    Put(k, std::string("v1 of ") + k);
  }
  nlohmann::json r;
  ASSERT_EQ(Reconcile({}, &r), 0) << last_output_;
  EXPECT_EQ(r["missing"], 9);
  EXPECT_EQ(r["downloaded"], 9);
  EXPECT_EQ(ReadFile(Path("a/c/d")), "v1 of a/c/d");
  EXPECT_EQ(ReadFile(Path("sp ace/ü.txt")), "v1 of sp ace/ü.txt");

  // Lost events: a deletion, an overwrite, a creation; and a file nobody made.
  ASSERT_TRUE(s3_->DeleteObject(bucket_, "gone.txt").ok());
  ASSERT_TRUE(s3_->DeleteObject(bucket_, "deep/x/y/z.txt").ok());
  Put("stale.txt", "v2, a different size");
  Put("a/new.txt", "new");
  std::ofstream(Path("a/stray.txt")) << "not from the bucket";

  // A dry run reports and changes nothing.
  ASSERT_EQ(Reconcile({"--dry-run"}, &r), 0) << last_output_;
  EXPECT_EQ(r["orphans"], 2);
  EXPECT_EQ(r["untracked_orphans"], 1);
  EXPECT_EQ(r["missing"], 1);
  EXPECT_EQ(r["stale"], 1);
  EXPECT_EQ(r["matching"], 6);
  EXPECT_EQ(r["removed"], 0);
  EXPECT_EQ(r["orphan_keys"], nlohmann::json::array({"a/stray.txt", "deep/x/y/z.txt", "gone.txt"}));
  EXPECT_TRUE(Exists(Path("gone.txt")));
  EXPECT_TRUE(Exists(Path("a/stray.txt")));
  EXPECT_FALSE(Exists(Path("a/new.txt")));
  EXPECT_EQ(ReadFile(Path("stale.txt")), "v1 of stale.txt");

  // The real pass.
  ASSERT_EQ(Reconcile({}, &r), 0) << last_output_;
  EXPECT_EQ(r["removed"], 3);
  EXPECT_EQ(r["removed_keys"],
            nlohmann::json::array({"a/stray.txt", "deep/x/y/z.txt", "gone.txt"}));
  EXPECT_EQ(r["downloaded"], 2);
  EXPECT_FALSE(Exists(Path("gone.txt")));
  EXPECT_FALSE(Exists(Path("deep")));  // emptied folders pruned
  EXPECT_FALSE(Exists(Path("a/stray.txt")));
  EXPECT_EQ(ReadFile(Path("stale.txt")), "v2, a different size");
  EXPECT_EQ(ReadFile(Path("a/new.txt")), "new");

  // Now equal: nothing to do.
  ASSERT_EQ(Reconcile({}, &r), 0) << last_output_;
  EXPECT_EQ(r["matching"], 8);
  EXPECT_EQ(r["removed"], 0);
  EXPECT_EQ(r["queued"], 0);
}

TEST_F(ReconcileIT, DeleteOnlyRemovesOrphansAndDownloadsNothing) {
  Put("keep", "k");
  Put("drop", "d");
  nlohmann::json r;
  ASSERT_EQ(Reconcile({}, &r), 0) << last_output_;
  ASSERT_TRUE(s3_->DeleteObject(bucket_, "drop").ok());
  Put("later", "l");
  ASSERT_EQ(Reconcile({"--delete-only"}, &r), 0) << last_output_;
  EXPECT_EQ(r["removed"], 1);
  EXPECT_EQ(r["queued"], 0);
  EXPECT_FALSE(Exists(Path("drop")));
  EXPECT_FALSE(Exists(Path("later")));
}

TEST_F(ReconcileIT, MaxDeleteRefusesAndRemovesNothing) {
  for (int i = 0; i < 3; ++i) Put("k" + std::to_string(i), "v");
  nlohmann::json r;
  ASSERT_EQ(Reconcile({}, &r), 0) << last_output_;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(s3_->DeleteObject(bucket_, "k" + std::to_string(i)).ok());
  EXPECT_EQ(Reconcile({"--max-delete", "2"}, &r), 1) << last_output_;
  EXPECT_EQ(r["max_delete_refused"], true);
  EXPECT_EQ(r["orphans"], 3);
  EXPECT_EQ(r["removed"], 0);
  EXPECT_NE(r["error"].get<std::string>().find("refusing to remove 3"), std::string::npos);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(Exists(Path("k" + std::to_string(i))));
}

TEST_F(ReconcileIT, WrongBucketRemovesNothingAndSaysWhy) {
  Put("k", "v");
  nlohmann::json r;
  ASSERT_EQ(Reconcile({}, &r), 0) << last_output_;
  std::vector<std::string> argv = {DS_BINARY, "reconcile", "--cache",
                                   cache_,    "--bucket",  "ds-no-such-bucket-" + RandomSuffix()};
  std::string out;
  EXPECT_EQ(RunCommand(argv, env_, &out), 1);
  EXPECT_NE(out.find("does not exist"), std::string::npos) << out;
  EXPECT_NE(out.find("FAILED"), std::string::npos) << out;
  EXPECT_TRUE(Exists(Path("k")));
}

TEST_F(ReconcileIT, PassesNeverOverlap) {
  Put("k", "v");
  nlohmann::json r;
  ASSERT_EQ(Reconcile({}, &r), 0) << last_output_;
  ASSERT_TRUE(s3_->DeleteObject(bucket_, "k").ok());
  // Another pass holds the lock.
  int fd = open((cache_ + "/.delete-sync/reconcile.lock").c_str(), O_RDWR | O_CREAT, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(flock(fd, LOCK_EX | LOCK_NB), 0);
  std::vector<std::string> argv = {DS_BINARY, "reconcile", "--cache", cache_, "--bucket", bucket_};
  std::string out;
  EXPECT_EQ(RunCommand(argv, env_, &out), 1);
  EXPECT_NE(out.find("another reconcile pass"), std::string::npos) << out;
  EXPECT_TRUE(Exists(Path("k")));
  close(fd);
  EXPECT_EQ(Reconcile({}, &r), 0) << last_output_;
  EXPECT_EQ(r["removed"], 1);
}

TEST_F(ReconcileIT, UnreachableServerRemovesNothing) {
  Put("k", "v");
  nlohmann::json r;
  ASSERT_EQ(Reconcile({}, &r), 0) << last_output_;
  // A port nothing listens on stands for a stopped server.
  int rc = Reconcile({}, &r,
                     {{"AWS_ENDPOINT_URL_S3", "http://127.0.0.1:" + std::to_string(FreePort())},
                      {"AWS_MAX_ATTEMPTS", "2"}});
  EXPECT_EQ(rc, 1) << last_output_;
  EXPECT_EQ(r["ok"], false);
  EXPECT_EQ(r["removed"], 0);
  EXPECT_TRUE(Exists(Path("k")));
}

}  // namespace
}  // namespace ds::itest
