#include "core/erase.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "fakes/fakes.h"
#include "fs/open_holders.h"
#include "state/sqlite_state.h"

namespace ds {
namespace {

using fakes::FakeCacheFs;
using fakes::FakeClock;
using fakes::FakeStateStore;
using fakes::RecordingAudit;
using nlohmann::json;

// A versioned bucket: key -> versions, newest last. Also answers HEAD and listings.
class FakeVersions : public VersionedStore, public ObjectStore {
 public:
  void Put(const std::string& key, bool marker = false,
           std::map<std::string, std::string> meta = {}) {
    versions_[key].push_back({key, "v" + std::to_string(next_++), marker, true});
    meta_[key] = std::move(meta);
  }
  size_t Count(const std::string& key) { return versions_.count(key) ? versions_[key].size() : 0; }

  Result<std::vector<VersionEntry>> ListVersions(const std::string&,
                                                 const std::string& prefix) override {
    if (!fail.ok()) return fail;
    std::vector<VersionEntry> out;
    for (const auto& [k, vs] : versions_) {
      if (k.compare(0, prefix.size(), prefix) == 0) out.insert(out.end(), vs.begin(), vs.end());
    }
    return out;
  }
  Result<std::vector<DeleteOutcome>> DeleteVersions(const std::string&,
                                                    const std::vector<ObjectId>& ids) override {
    if (!fail.ok()) return fail;
    std::vector<DeleteOutcome> out;
    for (const ObjectId& id : ids) {
      auto& vs = versions_[id.key];
      vs.erase(std::remove_if(vs.begin(), vs.end(),
                              [&](const VersionEntry& v) { return v.version_id == id.version_id; }),
               vs.end());
      if (vs.empty()) versions_.erase(id.key);
      out.push_back({id, true, "", ""});
    }
    return out;
  }
  Result<ObjectInfo> GetObject(const std::string&, const std::string& key, const std::string&,
                               const BodySink&) override {
    return Status::NotFound(key);
  }
  Result<ObjectInfo> HeadObject(const std::string&, const std::string& key,
                                const std::string&) override {
    if (!fail.ok()) return fail;
    auto it = versions_.find(key);
    if (it == versions_.end() || it->second.back().is_delete_marker) {
      return Status::NotFound(key + ": not found");
    }
    ObjectInfo info;
    info.key = key;
    info.metadata = meta_[key];
    return info;
  }
  Status ListObjects(const std::string&, const std::string& prefix,
                     const std::function<bool(const ObjectInfo&)>& visit) override {
    if (!fail.ok()) return fail;
    for (const auto& [k, vs] : versions_) {
      if (k.compare(0, prefix.size(), prefix) != 0 || vs.back().is_delete_marker) continue;
      ObjectInfo info;
      info.key = k;
      if (!visit(info)) break;
    }
    return Status::Ok();
  }
  Result<std::vector<DeleteOutcome>> DeleteObjects(const std::string& b,
                                                   const std::vector<ObjectId>& ids) override {
    return DeleteVersions(b, ids);
  }

  Status fail;

 private:
  std::map<std::string, std::vector<VersionEntry>> versions_;
  std::map<std::string, std::map<std::string, std::string>> meta_;
  int next_ = 1;
};

class EraseTest : public ::testing::Test {
 protected:
  EraseTest() {
    EngineOptions eo;
    eo.bucket = "b";
    engine_ = std::make_unique<Engine>(nullptr, cache_, state_, clock_, eo);
    engine_->set_audit(&removals_);
    deps_.versions = &store_;
    deps_.store = &store_;
    deps_.cache = &cache_;
    deps_.state = &state_;
    deps_.engine = engine_.get();
    deps_.clock = &clock_;
    deps_.cache_root = "/cache";
    deps_.audit = [this](const std::string& type, const json& fields) -> Result<AuditRef> {
      records_.push_back({type, fields});
      return AuditRef{static_cast<int64_t>(records_.size()), "h"};
    };
    deps_.scan_holders = [this](std::vector<OpenHolder>* h, bool* complete) {
      *h = holders_;
      *complete = true;
      return Status::Ok();
    };
  }
  EraseRequest Keys(std::vector<std::string> keys) {
    EraseRequest r;
    r.request_id = "r1";
    r.bucket = "b";
    r.keys = std::move(keys);
    return r;
  }

  FakeVersions store_;
  FakeCacheFs cache_;
  FakeStateStore state_;
  FakeClock clock_;
  RecordingAudit removals_;
  std::unique_ptr<Engine> engine_;
  EraseDeps deps_;
  std::vector<std::pair<std::string, json>> records_;
  std::vector<OpenHolder> holders_;
};

TEST_F(EraseTest, EveryVersionAndMarkerAndTheCopyGo) {
  store_.Put("a/k");
  store_.Put("a/k");
  store_.Put("a/k", /*marker=*/true);
  store_.Put("a/k2");
  cache_.PutFile("a/k", "data");
  Result<EraseOutcome> out = RunErase(Keys({"a/k"}), deps_);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_TRUE(out->ok());
  const json& r = out->receipt;
  EXPECT_EQ(r["keys"][0]["bucket"]["versions_removed"].size(), 3u);
  EXPECT_EQ(r["keys"][0]["cache"]["result"], "removed");
  EXPECT_EQ(r["keys"][0]["verification"]["verified"], true);
  EXPECT_EQ(store_.Count("a/k"), 0u);
  EXPECT_EQ(store_.Count("a/k2"), 1u);
  EXPECT_FALSE(cache_.Has("a/k"));
  ASSERT_EQ(records_.size(), 2u);
  EXPECT_EQ(records_[0].first, "erasure-request");
  EXPECT_EQ(records_[1].first, "verification");
  EXPECT_EQ(records_[1].second["verified"], true);
  EXPECT_EQ(r["audit"]["verification"]["seq"], 2);
  ASSERT_EQ(removals_.records.size(), 1u);
  EXPECT_EQ(removals_.records[0].cause, RemovalCause::kErase);
  EXPECT_EQ(removals_.records[0].event_id, "r1");
  EXPECT_TRUE(state_.Key("b", "a/k").tombstone);

  // Again: nothing left, and the receipt says so.
  out = RunErase(Keys({"a/k"}), deps_);
  ASSERT_TRUE(out.ok());
  EXPECT_TRUE(out->ok());
  EXPECT_EQ(out->receipt["summary"]["nothing_found"], true);
  EXPECT_EQ(out->receipt["keys"][0]["bucket"]["result"], "nothing-left");
}

TEST_F(EraseTest, KeyThatCannotBeAPathIsStillDeletedFromTheBucket) {
  store_.Put("a/../b");
  Result<EraseOutcome> out = RunErase(Keys({"a/../b"}), deps_);
  ASSERT_TRUE(out.ok());
  EXPECT_TRUE(out->ok());
  EXPECT_EQ(out->receipt["keys"][0]["cache"]["result"], "not-a-path");
  EXPECT_EQ(out->receipt["keys"][0]["verification"]["cache"], "not-a-path");
  EXPECT_EQ(store_.Count("a/../b"), 0u);
}

TEST_F(EraseTest, UnreachableStoreClaimsNothing) {
  store_.Put("k");
  store_.fail = Status::Unavailable("connection refused");
  Result<EraseOutcome> out = RunErase(Keys({"k"}), deps_);
  ASSERT_TRUE(out.ok());
  EXPECT_FALSE(out->verified);
  EXPECT_FALSE(out->ok());
  const json& k = out->receipt["keys"][0];
  EXPECT_EQ(k["bucket"]["result"], "failed");
  EXPECT_FALSE(k["bucket"].contains("versions_removed"));
  EXPECT_EQ(k["verification"]["verified"], false);
  EXPECT_EQ(out->receipt["summary"]["versions_removed"], 0);
  EXPECT_EQ(records_.back().second["verified"], false);
}

TEST_F(EraseTest, AuditFailureStopsBeforeAnythingIsTouched) {
  store_.Put("k");
  deps_.audit = [](const std::string&, const json&) -> Result<AuditRef> {
    return Status::Io("disk full");
  };
  EXPECT_FALSE(RunErase(Keys({"k"}), deps_).ok());
  EXPECT_EQ(store_.Count("k"), 1u);
}

TEST_F(EraseTest, OpenHoldersOfRemovedFilesAreNamed) {
  store_.Put("k");
  cache_.PutFile("k", "x");
  holders_ = {{42, "sleep", "/cache/k", true, 0}, {43, "cat", "/cache/other", false, 3}};
  Result<EraseOutcome> out = RunErase(Keys({"k"}), deps_);
  ASSERT_TRUE(out.ok());
  EXPECT_TRUE(out->verified);
  EXPECT_FALSE(out->data_released);
  ASSERT_EQ(out->receipt["open_holders"].size(), 1u);
  EXPECT_EQ(out->receipt["open_holders"][0]["pid"], 42);
  EXPECT_EQ(out->receipt["open_holders"][0]["command"], "sleep");
}

TEST_F(EraseTest, SubjectFromIndexAndScan) {
  store_.Put("x/1", false, {{"x-amz-meta-data-subject", "alice"}});
  store_.Put("y/2", false, {{"x-amz-meta-data-subject", "alice"}});
  store_.Put("z/3", false, {{"x-amz-meta-data-subject", "bob"}});
  ASSERT_TRUE(state_.IndexSubject("alice", "b", "x/1").ok());
  EraseRequest r;
  r.request_id = "r2";
  r.bucket = "b";
  r.subject = "alice";
  Result<EraseOutcome> out = RunErase(r, deps_);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(store_.Count("x/1"), 0u);
  EXPECT_EQ(store_.Count("y/2"), 1u);
  EXPECT_TRUE(state_.SubjectKeys("alice", "b")->empty());  // unindexed once verified gone
  r.scan = true;
  out = RunErase(r, deps_);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->receipt["resolution"]["scan_matches"], 1);
  EXPECT_EQ(store_.Count("y/2"), 0u);
  EXPECT_EQ(store_.Count("z/3"), 1u);
}

TEST_F(EraseTest, EngineIndexesSubjectsFromEventMetadata) {
  Event e;
  e.action = EventAction::kCreate;
  e.name = "ObjectCreated:Put";
  e.bucket = "b";
  e.key = "m/1";
  e.metadata = {{"X-Amz-Meta-Data-Subject", "carol"}};
  EXPECT_EQ(engine_->Apply(e).outcome, Outcome::kQueued);
  e.key = "m/2";
  e.metadata.clear();
  e.tags = {{"data-subject", "carol"}};
  EXPECT_EQ(engine_->Apply(e).outcome, Outcome::kQueued);
  EXPECT_EQ(*state_.SubjectKeys("carol", "b"), (std::vector<std::string>{"m/1", "m/2"}));
}

TEST(EraseRequestTest, JsonRoundTripAndValidation) {
  EraseRequest r;
  r.request_id = "id-1";
  r.bucket = "b";
  r.keys = {"a", "b"};
  Result<EraseRequest> back = EraseRequestFromJson(EraseRequestToJson(r));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->keys, r.keys);
  EXPECT_FALSE(EraseRequestFromJson(json{{"request_id", "x"}, {"bucket", "b"}}).ok());
  EXPECT_FALSE(EraseRequestFromJson(
                   json{{"request_id", "x"}, {"bucket", "b"}, {"keys", {"a"}}, {"prefix", "p"}})
                   .ok());
  EXPECT_FALSE(
      EraseRequestFromJson(json{{"request_id", "../x"}, {"bucket", "b"}, {"keys", {"a"}}}).ok());
  EXPECT_FALSE(EraseRequestFromJson(json{{"request_id", "x"}, {"keys", {"a"}}}).ok());
  EXPECT_FALSE(
      EraseRequestFromJson(json{{"request_id", "x"}, {"bucket", "b"}, {"prefix", "p"}, {"what", 1}})
          .ok());
  EXPECT_TRUE(ValidRequestId("erase-20240101T000000000Z-abcd"));
  EXPECT_FALSE(ValidRequestId(".hidden"));
  EXPECT_FALSE(ValidRequestId("a/b"));
}

TEST(OpenHoldersTest, FindsAnUnlinkedFileHeldByThisProcess) {
  std::string dir = std::filesystem::temp_directory_path() /
                    ("ds-holders-" + std::to_string(getpid()) + "-" + std::to_string(rand()));
  std::filesystem::create_directories(dir + "/sub");
  std::string path = dir + "/sub/f.txt";
  std::ofstream(path) << "x";
  int fd = open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(unlink(path.c_str()), 0);
  std::vector<OpenHolder> holders;
  bool complete = false;
  ASSERT_TRUE(ScanOpenHolders(dir, &holders, &complete).ok());
  bool found = false;
  for (const OpenHolder& h : holders) {
    if (h.pid == getpid() && h.fd == fd) {
      found = true;
      EXPECT_TRUE(h.deleted);
      EXPECT_EQ(h.path, std::filesystem::canonical(dir).string() + "/sub/f.txt");
      EXPECT_FALSE(h.command.empty());
    }
  }
  EXPECT_TRUE(found);
  close(fd);
  std::filesystem::remove_all(dir);
}

TEST(SubjectIndexTest, SqliteAddsListsAndDrops) {
  std::string dir = std::filesystem::temp_directory_path() /
                    ("ds-subj-" + std::to_string(getpid()) + "-" + std::to_string(rand()));
  std::filesystem::create_directories(dir);
  auto st = SqliteState::Open(dir + "/state.db");
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  SqliteState& s = **st;
  ASSERT_TRUE(s.IndexSubject("alice", "b", "k2").ok());
  ASSERT_TRUE(s.IndexSubject("alice", "b", "k1").ok());
  ASSERT_TRUE(s.IndexSubject("alice", "b", "k1").ok());  // idempotent
  ASSERT_TRUE(s.IndexSubject("alice", "other", "k3").ok());
  ASSERT_TRUE(s.IndexSubject("bob", "b", "k1").ok());
  EXPECT_EQ(*s.SubjectKeys("alice", "b"), (std::vector<std::string>{"k1", "k2"}));
  ASSERT_TRUE(s.UnindexKey("b", "k1").ok());
  EXPECT_EQ(*s.SubjectKeys("alice", "b"), (std::vector<std::string>{"k2"}));
  EXPECT_TRUE(s.SubjectKeys("bob", "b")->empty());
  st = Status::Internal("closed");  // closes the database before the folder goes
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ds
