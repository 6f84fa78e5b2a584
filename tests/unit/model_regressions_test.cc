// Regression tests for the bugs the model-based history tests (model_history_test.cc) found,
// reduced to their smallest schedule.
#include <gtest/gtest.h>

#include "core/engine.h"
#include "fakes/fakes.h"

namespace ds {
namespace {

using fakes::FakeCacheFs;
using fakes::FakeClock;
using fakes::FakeObjectStore;
using fakes::FakeStateStore;

Event Versioned(EventAction action, const std::string& version) {
  Event e;
  e.action = action;
  e.name = action == EventAction::kCreate ? "ObjectCreated:Put" : "ObjectRemoved:Delete";
  e.source = "ceph:s3";
  e.bucket = "b";
  e.key = "k";
  e.version_id = version;
  e.event_id = "ev-" + version;
  return e;
}

class ModelRegressionTest : public ::testing::Test {
 protected:
  ModelRegressionTest() {
    EngineOptions o;
    o.bucket = "b";
    o.retry_base_ms = 10;
    o.retry_max_ms = 10;
    engine_ = std::make_unique<Engine>(&store_, cache_, state_, clock_, o);
    // ver-1 is cached and known as such.
    store_.Put("b", "k", "body-1", "ver-1");
    engine_->Apply(Versioned(EventAction::kCreate, "ver-1"));
    engine_->DrainJobs();
  }
  FakeObjectStore store_;
  FakeCacheFs cache_;
  FakeStateStore state_;
  FakeClock clock_;
  std::unique_ptr<Engine> engine_;
};

// Seed 1060 (rgw, versioned): ver-2 is being downloaded when it is permanently deleted
// (ver-1 current again). The removal used to be "another version than the cached one" and
// left the download free to publish the deleted ver-2.
TEST_F(ModelRegressionTest, RemovalOfTheVersionBeingDownloadedIsNotPublished) {
  ASSERT_EQ(cache_.Read("k"), "body-1");
  store_.Put("b", "k", "body-2", "ver-2");
  ASSERT_EQ(engine_->Apply(Versioned(EventAction::kCreate, "ver-2")).outcome, Outcome::kQueued);
  Outcome during = Outcome::kFailed;
  store_.after_get = [&](const std::string&) {
    store_.after_get = nullptr;
    store_.Put("b", "k", "body-1", "ver-1");  // ver-2 deleted for good
    during = engine_->Apply(Versioned(EventAction::kRemove, "ver-2")).outcome;
  };
  engine_->DrainJobs(1);
  EXPECT_EQ(during, Outcome::kRemoved);
  EXPECT_NE(cache_.Read("k"), "body-2");
  engine_->DrainJobs();
  EXPECT_EQ(cache_.Read("k"), "body-1");
}

// Seed 5037 (aws, versioned, two workers): the process dies after renaming ver-2 into place but
// before the state commit, so the state still names ver-1. The removal of ver-2 used to be
// "another version" and left the deleted ver-2 in the cache.
TEST_F(ModelRegressionTest, RemovalAfterACrashBetweenRenameAndCommitRemovesTheFile) {
  store_.Put("b", "k", "body-2", "ver-2");
  engine_->Apply(Versioned(EventAction::kCreate, "ver-2"));
  cache_.fail_after_publish = Status::Io("killed after the rename");
  engine_->DrainJobs(1);
  cache_.fail_after_publish = Status::Ok();
  ASSERT_EQ(cache_.Read("k"), "body-2");
  ASSERT_EQ(state_.Key("b", "k").version_id, "ver-1");  // the commit never happened
  store_.Put("b", "k", "body-1", "ver-1");              // ver-2 deleted for good
  EXPECT_EQ(engine_->Apply(Versioned(EventAction::kRemove, "ver-2")).outcome, Outcome::kRemoved);
  EXPECT_FALSE(cache_.Has("k"));
  clock_.Advance(1000);
  engine_->DrainJobs();
  EXPECT_EQ(cache_.Read("k"), "body-1");
}

}  // namespace
}  // namespace ds
