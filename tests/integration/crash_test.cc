// Crash points (docs/RELIABILITY.md): the real `serve` binary is killed with SIGKILL at a chosen
// point of a download, a removal or an audit append (DELETE_SYNC_CRASH_AT), then started again.
// After the restart: no temp file is left, every acknowledged event takes effect without being
// sent again, every unacknowledged one takes effect when it is sent again (as a sender retries),
// the cache equals the bucket, and `audit verify` passes with every removal recorded.
//
// This test plays the notification sender itself (AWS-format documents POSTed to the webhook)
// so that it knows exactly which events were acknowledged; the objects live in the real local
// Ceph RGW, from which serve downloads.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/cache_fs.h"
#include "service_harness.h"

namespace ds::itest {
namespace {

using nlohmann::json;

struct Point {
  const char* name;
  bool on_removal;  // the crash happens while applying removals (else while downloading)
};

class CrashPointTest : public ::testing::TestWithParam<Point> {
 protected:
  void SetUp() override {
    rgw_.Create("ds-crash-" + RandomSuffix());
    ASSERT_FALSE(HasFatalFailure());
    env_ = rgw_.env();
    s3_ = &rgw_.s3();
    bucket_ = rgw_.name();
    dir_ = std::filesystem::temp_directory_path() / ("ds-crash-" + RandomSuffix());
    std::filesystem::create_directories(dir_);
    cache_ = dir_ + "/cache";
    token_ = "tok-" + RandomSuffix();
  }

  void TearDown() override {
    StopServe();
    if (!HasFailure()) {
      std::filesystem::remove_all(dir_);
    } else {
      for (const std::string& log : logs_) {
        std::fprintf(stderr, "---- %s ----\n%s\n", log.c_str(), ReadFile(log).c_str());
      }
    }
  }

  // Starts serve; `crash_at` empty: no crash point.
  void StartServe(const std::string& crash_at) {
    port_ = FreePort();
    const std::string log = dir_ + "/serve-" + std::to_string(logs_.size()) + ".log";
    logs_.push_back(log);
    ChildOptions options = ChildOptions().Env(env_).Log(log).TruncateLog();
    if (!crash_at.empty()) options.SetEnv("DELETE_SYNC_CRASH_AT", crash_at);
    std::vector<std::string> argv = {
        DS_BINARY,         "serve", "--cache",          cache_,
        "--bucket",        bucket_, "--webhook-listen", "127.0.0.1:" + std::to_string(port_),
        "--webhook-token", token_,  "--log-level",      "debug"};
    // The crash points are reached by the events this test sends, not by a start pass (an
    // unclean stop still gets one: the restart after the crash runs it).
    argv.insert(argv.end(), {"--reconcile-at-start", "off"});
    serve_.Start(argv, options);
    httplib::Client c("127.0.0.1", port_);
    ASSERT_TRUE(WaitFor([&] {
      auto r = c.Get("/healthz");
      return r && r->status == 200;
    })) << "serve did not come up";
  }

  void StopServe() { serve_.Terminate(); }

  // Waits for serve to die; true when it was killed by SIGKILL (the crash point).
  bool WaitKilled() {
    if (!serve_.Wait(std::chrono::seconds(60))) return false;
    const int status = serve_.wait_status();
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
  }

  // An AWS-format document with one record per (name, key), sequencers increasing.
  std::string Doc(const std::vector<std::pair<std::string, std::string>>& events) {
    json records = json::array();
    for (const auto& [name, key] : events) {
      char seq[32];
      std::snprintf(seq, sizeof seq, "%018llX", static_cast<unsigned long long>(++seq_));
      json object = {{"key", key}, {"sequencer", seq}};
      if (name.rfind("ObjectCreated", 0) == 0) object["size"] = 2;
      records.push_back({{"eventVersion", "2.1"},
                         {"eventSource", "aws:s3"},
                         {"awsRegion", "us-east-1"},
                         {"eventTime", "2026-12-02T00:00:00.000Z"},
                         {"eventName", name},
                         {"s3",
                          {{"s3SchemaVersion", "1.0"},
                           {"bucket", {{"name", bucket_}, {"arn", "arn:aws:s3:::" + bucket_}}},
                           {"object", object}}}});
    }
    return json{{"Records", records}}.dump();
  }

  // POSTs a document; the HTTP status, or -1 when no answer came (the service died).
  int Post(const std::string& doc) {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(30, 0);
    auto r = c.Post("/?token=" + token_, doc, "application/json");
    return r ? r->status : -1;
  }

  std::vector<std::string> TempFiles() const {
    std::vector<std::string> out;
    const std::string tmp = cache_ + "/" + kReservedDir + "/tmp";
    if (!Exists(tmp)) return out;
    for (const auto& e : std::filesystem::directory_iterator(tmp)) out.push_back(e.path());
    return out;
  }

  std::string AuditPath() const { return cache_ + "/" + kReservedDir + "/audit.log"; }

  // The audit records of the current file (no rotation at these sizes).
  std::vector<json> AuditRecords() const {
    std::vector<json> out;
    std::istringstream in(ReadFile(AuditPath()));
    std::string line;
    while (std::getline(in, line)) out.push_back(json::parse(line));
    return out;
  }

  bool PutObject(const std::string& key, const std::string& body) {
    return s3_->PutObject(bucket_, key, body).ok();
  }

  RgwBucket rgw_;
  std::map<std::string, std::string> env_;
  S3Client* s3_ = nullptr;
  std::string bucket_, dir_, cache_, token_;
  std::vector<std::string> logs_;
  int port_ = 0;
  ChildProcess serve_;
  uint64_t seq_ = 0;
};

TEST_P(CrashPointTest, RestartLeavesNoTempNoLostEventAndAnIntactAuditChain) {
  const Point point = GetParam();
  const std::vector<std::string> keys = {"dir/sub/a", "dir/b", "c"};
  for (const std::string& k : keys) ASSERT_TRUE(PutObject(k, "v1-" + k));
  std::vector<std::pair<std::string, std::string>> creations;
  for (const std::string& k : keys) creations.emplace_back("ObjectCreated:Put", k);

  const std::vector<std::string> removed = {"dir/sub/a", "c"};
  std::string unacknowledged;  // a document the crashed service never answered
  if (!point.on_removal) {
    // The creations are acknowledged (journaled); the download of the first one crashes.
    ASSERT_NO_FATAL_FAILURE(StartServe(point.name));
    ASSERT_EQ(Post(Doc(creations)), 200);
    ASSERT_TRUE(WaitKilled()) << "serve did not reach crash point " << point.name;
  } else {
    // The copies exist; the removal of two of them (one group) crashes.
    ASSERT_NO_FATAL_FAILURE(StartServe(""));
    ASSERT_EQ(Post(Doc(creations)), 200);
    for (const std::string& k : keys) {
      ASSERT_TRUE(WaitFor([&] { return ReadFile(cache_ + "/" + k) == "v1-" + k; })) << k;
    }
    StopServe();
    for (const std::string& k : removed) ASSERT_TRUE(s3_->DeleteObject(bucket_, k).ok());
    ASSERT_NO_FATAL_FAILURE(StartServe(point.name));
    unacknowledged =
        Doc({{"ObjectRemoved:Delete", removed[0]}, {"ObjectRemoved:Delete", removed[1]}});
    ASSERT_EQ(Post(unacknowledged), -1) << "the crashed removal was acknowledged";
    ASSERT_TRUE(WaitKilled()) << "serve did not reach crash point " << point.name;
  }

  // Restart without the crash point; the sender retries what was not acknowledged.
  ASSERT_NO_FATAL_FAILURE(StartServe(""));
  if (!unacknowledged.empty()) {
    ASSERT_EQ(Post(unacknowledged), 200);
  }

  for (const std::string& k : keys) {
    const bool gone = point.on_removal && (k == removed[0] || k == removed[1]);
    const std::string path = cache_ + "/" + k;
    if (gone) {
      EXPECT_FALSE(Exists(path)) << k << " came back after the crash";
    } else {
      EXPECT_TRUE(WaitFor([&] { return ReadFile(path) == "v1-" + k; }))
          << k << ": the acknowledged creation was lost";
    }
  }
  EXPECT_TRUE(WaitFor([&] { return TempFiles().empty(); }))
      << "temp files left: " << (TempFiles().empty() ? "" : TempFiles().front());
  StopServe();

  std::string out;
  EXPECT_EQ(RunCommand({DS_BINARY, "audit", "verify", "--log", AuditPath()}, {}, &out), 0) << out;
  if (point.on_removal) {
    // Every removal is in the chain (as "removed", or "absent" when the file went with the
    // crashed, unacknowledged attempt).
    for (const std::string& k : removed) {
      bool found = false;
      for (const json& r : AuditRecords()) {
        found = found || (r["type"] == "removal" && r.value("key", "") == k);
      }
      EXPECT_TRUE(found) << "no audit record for the removal of " << k;
    }
  }
  if (std::string(point.name) == "audit-partial-write") {
    bool noted = false;
    for (const json& r : AuditRecords()) noted = noted || r["type"] == "torn-tail";
    EXPECT_TRUE(noted) << "the torn record was cut without a torn-tail record";
    bool evidence = false;
    for (const auto& e : std::filesystem::directory_iterator(cache_ + "/" + kReservedDir)) {
      evidence = evidence || e.path().filename().string().rfind("audit.log.torn-", 0) == 0;
    }
    EXPECT_TRUE(evidence) << "the torn record's bytes were not kept";
  }
  // A reconcile pass finds the cache equal to the bucket.
  std::map<std::string, std::string> env = env_;
  int rc = RunCommand({DS_BINARY, "reconcile", "--cache", cache_, "--bucket", bucket_, "--dry-run",
                       "--json", "--log-level", "error"},
                      env, &out);
  EXPECT_EQ(rc, 0) << out;
  json report = json::parse(out.substr(out.find('{')), nullptr, false);
  ASSERT_TRUE(report.is_object()) << out;
  EXPECT_EQ(report.value("missing", -1), 0) << out;
  EXPECT_EQ(report.value("orphans", -1), 0) << out;
  EXPECT_EQ(report.value("stale", -1), 0) << out;
}

INSTANTIATE_TEST_SUITE_P(
    Points, CrashPointTest,
    ::testing::Values(Point{"download-written", false}, Point{"publish-before-rename", false},
                      Point{"publish-after-rename", false}, Point{"removal-recorded", true},
                      Point{"removal-unlinked", true}, Point{"removal-before-prune", true},
                      Point{"audit-partial-write", true}, Point{"audit-before-sync", true},
                      Point{"removal-before-commit", true}),
    [](const ::testing::TestParamInfo<Point>& p) {
      std::string n = p.param.name;
      for (char& ch : n) ch = ch == '-' ? '_' : ch;
      return n;
    });

}  // namespace
}  // namespace ds::itest
