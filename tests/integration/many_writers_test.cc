// Many writers on one cache (issue 17): several real `delete-sync apply` processes share one
// cache folder, state database and audit log, each given part of one AWS-format event stream
// (ordered by sequencers) against the real local Ceph RGW. Checked without any reconcile: the
// cache equals the bucket, the state database is intact, and the audit chain verifies.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <random>

#include "core/cache_fs.h"
#include "service_harness.h"

namespace ds::itest {
namespace {

using nlohmann::json;

class ManyWritersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    rgw_.Create("ds-many-" + RandomSuffix());
    ASSERT_FALSE(HasFatalFailure());
    env_ = rgw_.env();
    s3_ = &rgw_.s3();
    bucket_ = rgw_.name();
    dir_ = std::filesystem::temp_directory_path() / ("ds-many-" + RandomSuffix());
    std::filesystem::create_directories(dir_);
    cache_ = dir_ + "/cache";
  }

  void TearDown() override {
    if (!HasFailure()) {
      std::filesystem::remove_all(dir_);
    } else {
      for (const std::string& log : logs_) {
        std::fprintf(stderr, "---- %s ----\n%s\n", log.c_str(), ReadFile(log).c_str());
      }
    }
  }

  // One AWS-format document with one record.
  std::string Doc(const std::string& name, const std::string& key, const std::string& seq) {
    json object = {{"key", key}, {"sequencer", seq}};
    if (name.rfind("ObjectCreated", 0) == 0) object["size"] = 8;
    json record = {{"eventVersion", "2.1"},
                   {"eventSource", "aws:s3"},
                   {"awsRegion", "us-east-1"},
                   {"eventTime", "2026-12-06T00:00:00.000Z"},
                   {"eventName", name},
                   {"s3",
                    {{"s3SchemaVersion", "1.0"},
                     {"bucket", {{"name", bucket_}, {"arn", "arn:aws:s3:::" + bucket_}}},
                     {"object", object}}}};
    return json{{"Records", json::array({record})}}.dump();
  }

  std::string WriteEvents(const std::string& name, std::vector<std::string> docs,
                          std::mt19937_64& rng) {
    std::shuffle(docs.begin(), docs.end(), rng);
    const std::string path = dir_ + "/" + name + ".jsonl";
    std::ofstream out(path);
    for (const std::string& d : docs) out << d << "\n";
    return path;
  }

  // Starts `delete-sync apply` on the shared cache; its output goes to a log of its own. The
  // process is killed at the end of the test unless it was waited for.
  ChildProcess& StartApply(const std::string& events, const std::vector<std::string>& extra) {
    const std::string log = dir_ + "/apply-" + std::to_string(logs_.size()) + ".log";
    logs_.push_back(log);
    std::vector<std::string> argv = {DS_BINARY, "apply",    "--cache", cache_,        "--bucket",
                                     bucket_,   "--events", events,    "--log-level", "debug"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    procs_.push_back(std::make_unique<ChildProcess>());
    procs_.back()->Start(argv, ChildOptions().Env(env_).Log(log).TruncateLog());
    return *procs_.back();
  }

  std::string IntegrityCheck() {
    sqlite3* db = nullptr;
    std::string path = cache_ + "/" + kReservedDir + "/state.db";
    if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
      sqlite3_close(db);
      return "cannot open " + path;
    }
    std::string result;
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, nullptr);
    while (sqlite3_step(st) == SQLITE_ROW) {
      result += reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return result;
  }

  RgwBucket rgw_;
  std::map<std::string, std::string> env_;
  S3Client* s3_ = nullptr;
  std::string bucket_, dir_, cache_;
  std::vector<std::string> logs_;
  std::vector<std::unique_ptr<ChildProcess>> procs_;
};

// The history of issue 17, per key: Put 0x32, Delete 0x62, Put 0x83 twice, Put 0xA8; the object
// exists in the bucket. The removals go to process A, the creations to process B, each shuffled.
// A starts once B is downloading, and applies each removal on its own (--batch 1), so that
// removals land while B's downloads are in flight. Before the fix, an older removal applied
// during a newer creation's download cancelled it: the key was missing from the cache for good,
// its state a tombstone at 0x62.
TEST_F(ManyWritersTest, OlderRemovalInAnotherProcessNeverCancelsANewerCreation) {
  const int keys = 300;
  std::random_device rd;
  const uint64_t seed = rd();
  std::printf("seed %llu\n", static_cast<unsigned long long>(seed));
  std::mt19937_64 rng(seed);
  std::vector<std::string> creations, removals;
  for (int i = 0; i < keys; ++i) {
    char key[32];
    std::snprintf(key, sizeof key, "d%02d/k%04d", i % 10, i);
    ASSERT_TRUE(s3_->PutObject(bucket_, key, std::string("final-") + key).ok());
    creations.push_back(Doc("ObjectCreated:Put", key, "0000000000000032"));
    removals.push_back(Doc("ObjectRemoved:Delete", key, "0000000000000062"));
    creations.push_back(Doc("ObjectCreated:Put", key, "0000000000000083"));
    creations.push_back(Doc("ObjectCreated:Put", key, "0000000000000083"));
    creations.push_back(Doc("ObjectCreated:Put", key, "00000000000000A8"));
  }
  const std::string b_events = WriteEvents("creations", creations, rng);
  const std::string a_events = WriteEvents("removals", removals, rng);

  ChildProcess& b = StartApply(b_events, {"--fetch-concurrency", "2"});
  // A starts when B's first download is published.
  ASSERT_TRUE(WaitFor([&] { return ReadFile(logs_[0]).find("materialised") != std::string::npos; },
                      std::chrono::seconds(60)))
      << "B never downloaded";
  ChildProcess& a = StartApply(a_events, {"--batch", "1"});
  EXPECT_EQ(a.Wait(), 0);
  EXPECT_EQ(b.Wait(), 0);

  // No reconcile: the cache must equal the bucket now.
  int missing = 0;
  for (int i = 0; i < keys; ++i) {
    char key[32];
    std::snprintf(key, sizeof key, "d%02d/k%04d", i % 10, i);
    const std::string path = cache_ + "/" + key;
    if (!Exists(path) || ReadFile(path) != std::string("final-") + key) {
      if (++missing <= 5) ADD_FAILURE() << key << " is missing from the cache";
    }
  }
  EXPECT_EQ(missing, 0) << "keys missing out of " << keys;
  EXPECT_EQ(IntegrityCheck(), "ok");
  std::string out;
  int rc = RunCommand({DS_BINARY, "audit", "verify", "--cache", cache_}, env_, &out);
  EXPECT_EQ(rc, 0) << out;
}

}  // namespace
}  // namespace ds::itest
