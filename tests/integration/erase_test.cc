// `delete-sync erase` against the real local Ceph RGW with a versioned bucket: every version
// and delete marker goes, the cache copy goes, the receipt says so and names open holders.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "service_harness.h"

namespace ds::itest {
namespace {

class EraseIT : public ::testing::Test {
 protected:
  void SetUp() override {
    rgw_.Create("ds-erase-" + RandomSuffix(), /*versioned=*/true);
    ASSERT_FALSE(HasFatalFailure());
    env_ = rgw_.env();
    s3_ = &rgw_.s3();
    bucket_ = rgw_.name();
    dir_ = std::filesystem::temp_directory_path() / ("ds-erase-" + RandomSuffix());
    cache_ = dir_ + "/cache";
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    holder_.Kill();
    std::filesystem::remove_all(dir_);
  }

  void Put(const std::string& k, const std::string& v,
           const std::map<std::string, std::string>& meta = {}) {
    ASSERT_TRUE(s3_->PutObject(bucket_, k, v, meta).ok()) << k;
  }
  // Materialises the bucket into the cache.
  void Reconcile() {
    std::string out;
    ASSERT_EQ(RunCommand({DS_BINARY, "reconcile", "--cache", cache_, "--bucket", bucket_,
                          "--log-level", "warn"},
                         env_, &out),
              0)
        << out;
  }
  // Runs erase with `args`; returns the exit code and the receipt (the last output line).
  int Erase(const std::vector<std::string>& args, nlohmann::json* receipt,
            std::map<std::string, std::string> env_override = {}) {
    std::vector<std::string> argv = {DS_BINARY,  "erase", "--cache",     cache_,
                                     "--bucket", bucket_, "--log-level", "warn"};
    argv.insert(argv.end(), args.begin(), args.end());
    std::map<std::string, std::string> env = env_;
    for (const auto& [k, v] : env_override) env[k] = v;
    std::string out;
    int rc = RunCommand(argv, env, &out);
    last_output_ = out;
    size_t start = out.rfind("\n{");
    std::string text = start == std::string::npos ? out : out.substr(start + 1);
    try {
      *receipt = nlohmann::json::parse(text);
    } catch (const std::exception&) {
      ADD_FAILURE() << "no JSON receipt in:\n" << out;
    }
    return rc;
  }
  size_t VersionsLeft(const std::string& key) {
    auto v = s3_->ListObjectVersions(bucket_, key);
    EXPECT_TRUE(v.ok());
    size_t n = 0;
    for (const auto& e : *v) n += e.key == key;
    return n;
  }
  std::string Path(const std::string& k) { return cache_ + "/" + k; }
  std::vector<std::string> Receipts() {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(cache_ + "/.delete-sync/receipts")) {
      names.push_back(e.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }
  std::vector<nlohmann::json> AuditRecords() {
    std::vector<nlohmann::json> recs;
    std::istringstream in(ReadFile(cache_ + "/.delete-sync/audit.log"));
    std::string line;
    while (std::getline(in, line)) recs.push_back(nlohmann::json::parse(line));
    return recs;
  }

  RgwBucket rgw_;
  std::map<std::string, std::string> env_;
  S3Client* s3_ = nullptr;
  std::string bucket_, dir_, cache_, last_output_;
  ChildProcess holder_;
};

TEST_F(EraseIT, EveryVersionAndDeleteMarkerIsErased) {
  Put("docs/cv.txt", "v1");
  Put("docs/cv.txt", "v2");
  Put("docs/cv.txt.bak", "another key sharing the prefix");
  Put("keep.txt", "keep");
  Reconcile();
  ASSERT_EQ(ReadFile(Path("docs/cv.txt")), "v2");
  Put("docs/cv.txt", "v3");
  ASSERT_TRUE(s3_->DeleteObject(bucket_, "docs/cv.txt").ok());  // a delete marker
  ASSERT_EQ(VersionsLeft("docs/cv.txt"), 4u);

  nlohmann::json r;
  ASSERT_EQ(Erase({"--key", "docs/cv.txt", "--request-id", "req-1"}, &r), 0) << last_output_;
  EXPECT_EQ(r["request_id"], "req-1");
  EXPECT_EQ(r["request"]["keys"], nlohmann::json::array({"docs/cv.txt"}));
  ASSERT_EQ(r["keys"].size(), 1u);
  const auto& k = r["keys"][0];
  EXPECT_EQ(k["bucket"]["result"], "deleted");
  EXPECT_EQ(k["bucket"]["versions_removed"].size(), 4u);
  int markers = 0;
  for (const auto& v : k["bucket"]["versions_removed"]) markers += v["delete_marker"].get<bool>();
  EXPECT_EQ(markers, 1);
  EXPECT_EQ(k["cache"]["result"], "removed");
  EXPECT_EQ(k["verification"]["bucket_listing"], "gone");
  EXPECT_EQ(k["verification"]["head"], "not-found");
  EXPECT_EQ(k["verification"]["cache"], "absent");
  EXPECT_EQ(r["verification"]["verified"], true);
  EXPECT_EQ(r["ok"], true);
  EXPECT_TRUE(r["audit"]["verification"]["seq"].is_number());

  EXPECT_EQ(VersionsLeft("docs/cv.txt"), 0u);
  EXPECT_FALSE(Exists(Path("docs/cv.txt")));
  EXPECT_TRUE(Exists(Path("docs/cv.txt.bak")));  // a longer key is not the same key
  EXPECT_EQ(VersionsLeft("docs/cv.txt.bak"), 1u);
  EXPECT_EQ(ReadFile(Path("keep.txt")), "keep");

  // The audit log: the request, the removal (cause erase), the verification, chained.
  std::vector<std::string> types;
  for (const auto& rec : AuditRecords()) {
    types.push_back(rec["type"]);
    if (rec["type"] == "removal") {
      EXPECT_EQ(rec["cause"], "erase");
      EXPECT_EQ(rec["event_id"], "req-1");
    }
  }
  EXPECT_EQ(types, (std::vector<std::string>{"erasure-request", "removal", "verification"}));
  EXPECT_EQ(AuditRecords().back()["seq"], r["audit"]["verification"]["seq"]);

  // Idempotent: the same request again finds nothing and says so, in a new receipt.
  ASSERT_EQ(Erase({"--key", "docs/cv.txt", "--request-id", "req-1"}, &r), 0) << last_output_;
  EXPECT_EQ(r["keys"][0]["bucket"]["result"], "nothing-left");
  EXPECT_EQ(r["keys"][0]["cache"]["result"], "absent");
  EXPECT_EQ(r["summary"]["nothing_found"], true);
  EXPECT_EQ(Receipts(), (std::vector<std::string>{"req-1.2.json", "req-1.json"}));
  auto kept = nlohmann::json::parse(ReadFile(cache_ + "/.delete-sync/receipts/req-1.json"));
  EXPECT_EQ(kept["summary"]["versions_removed"], 4);
}

TEST_F(EraseIT, SubjectsObjectsUnderSeveralPrefixesAreFoundAndErased) {
  Put("invoices/2024/a.pdf", "alice 1", {{"data-subject", "alice"}});
  Put("photos/alice.jpg", "alice 2", {{"data-subject", "alice"}});
  Put("photos/bob.jpg", "bob", {{"data-subject", "bob"}});
  Reconcile();  // materialisation fills the subject index from the GET answers
  Put("late/alice.txt", "alice 3", {{"data-subject", "alice"}});  // not materialised

  nlohmann::json r;
  ASSERT_EQ(Erase({"--subject", "alice"}, &r), 0) << last_output_;
  EXPECT_EQ(r["summary"]["keys"], 2);
  EXPECT_EQ(VersionsLeft("invoices/2024/a.pdf"), 0u);
  EXPECT_EQ(VersionsLeft("photos/alice.jpg"), 0u);
  EXPECT_FALSE(Exists(Path("invoices/2024/a.pdf")));
  EXPECT_FALSE(Exists(Path("photos/alice.jpg")));
  EXPECT_TRUE(Exists(Path("photos/bob.jpg")));
  EXPECT_EQ(VersionsLeft("photos/bob.jpg"), 1u);
  EXPECT_EQ(VersionsLeft("late/alice.txt"), 1u);  // not indexed: only --scan finds it

  ASSERT_EQ(Erase({"--subject", "alice", "--scan"}, &r), 0) << last_output_;
  EXPECT_EQ(r["resolution"]["scan_matches"], 1);
  EXPECT_EQ(r["summary"]["keys"], 1);
  EXPECT_EQ(VersionsLeft("late/alice.txt"), 0u);
  EXPECT_EQ(VersionsLeft("photos/bob.jpg"), 1u);
}

TEST_F(EraseIT, PrefixErasesEveryKeyUnderIt) {
  Put("user/42/a", "a");
  Put("user/42/b", "b");
  Put("user/420", "not under user/42/");
  Reconcile();
  nlohmann::json r;
  ASSERT_EQ(Erase({"--prefix", "user/42/"}, &r), 0) << last_output_;
  EXPECT_EQ(r["summary"]["keys"], 2);
  EXPECT_FALSE(Exists(Path("user/42")));
  EXPECT_TRUE(Exists(Path("user/420")));
  EXPECT_EQ(VersionsLeft("user/420"), 1u);
}

TEST_F(EraseIT, ProcessHoldingTheRemovedFileIsNamed) {
  Put("held.txt", "secret");
  Reconcile();
  ASSERT_TRUE(Exists(Path("held.txt")));
  std::string path = Path("held.txt");
  holder_.Start({"sleep", "60"}, ChildOptions().Program("/bin/sleep").Stdin(path));
  // Wait until the child holds the file.
  ASSERT_TRUE(WaitFor([&] {
    char buf[4096];
    ssize_t n =
        readlink(("/proc/" + std::to_string(holder_.pid()) + "/fd/0").c_str(), buf, sizeof buf);
    return n > 0 && std::string(buf, static_cast<size_t>(n)).find("held.txt") != std::string::npos;
  }));

  nlohmann::json r;
  EXPECT_EQ(Erase({"--key", "held.txt"}, &r), 1) << last_output_;
  EXPECT_EQ(r["verification"]["verified"], true);        // gone from the bucket and the cache ...
  EXPECT_EQ(r["verification"]["data_released"], false);  // ... but still readable
  ASSERT_EQ(r["open_holders"].size(), 1u) << r.dump(2);
  EXPECT_EQ(r["open_holders"][0]["pid"], holder_.pid());
  EXPECT_EQ(r["open_holders"][0]["command"], "sleep");
  EXPECT_EQ(r["open_holders"][0]["key"], "held.txt");
  EXPECT_EQ(r["open_holders"][0]["unlinked"], true);
  EXPECT_FALSE(Exists(Path("held.txt")));

  holder_.Kill();
  ASSERT_EQ(Erase({"--key", "held.txt"}, &r), 0) << last_output_;
  EXPECT_TRUE(r["open_holders"].empty());
}

TEST_F(EraseIT, UnreachableBucketReportsFailureAndClaimsNothing) {
  Put("k.txt", "v");
  Reconcile();
  nlohmann::json r;
  int rc = Erase({"--key", "k.txt"}, &r,
                 {{"AWS_ENDPOINT_URL_S3", "http://127.0.0.1:" + std::to_string(FreePort())},
                  {"AWS_MAX_ATTEMPTS", "2"}});
  EXPECT_EQ(rc, 1) << last_output_;
  EXPECT_EQ(r["ok"], false);
  EXPECT_EQ(r["verification"]["verified"], false);
  EXPECT_EQ(r["summary"]["versions_removed"], 0);
  const auto& k = r["keys"][0];
  EXPECT_EQ(k["bucket"]["result"], "failed");
  EXPECT_FALSE(k["bucket"].contains("versions_removed"));
  EXPECT_EQ(k["verification"]["verified"], false);
  EXPECT_NE(k["verification"]["bucket_listing"].get<std::string>().find("unverified"),
            std::string::npos);
  EXPECT_EQ(VersionsLeft("k.txt"), 1u);
}

TEST_F(EraseIT, UsageErrors) {
  nlohmann::json r;
  std::string out;
  EXPECT_EQ(RunCommand({DS_BINARY, "erase", "--cache", cache_, "--key", "k"}, env_, &out), 2)
      << out;
  EXPECT_EQ(RunCommand({DS_BINARY, "erase", "--cache", cache_, "--bucket", bucket_}, env_, &out), 2)
      << out;
  EXPECT_EQ(RunCommand({DS_BINARY, "erase", "--cache", cache_, "--bucket", bucket_, "--key", "k",
                        "--request-id", "../x"},
                       env_, &out),
            2)
      << out;
}

}  // namespace
}  // namespace ds::itest
