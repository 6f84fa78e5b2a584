// app/reconcile_pass.h: the one way serve, Lambda mode and `delete-sync reconcile` run a pass
// (issue 18, "app/ as a library": reachable from the unit tests).
#include "reconcile_pass.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>

#include "core/reconcile.h"
#include "fakes/engine_on_fakes.h"

namespace ds::app {
namespace {

class ReconcilePassTest : public fakes::EngineOnFakesTest {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ds-pass-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    std::filesystem::create_directories(root_ + "/.delete-sync");
    options_.bucket = "b";
    store_.Put("b", "k", "body");  // the bucket exists, with one object the cache lacks
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  std::string root_;
  ReconcileOptions options_;
};

// While another pass holds the cache's pass lock, a pass does not run (nothing looked at, the
// `started` hook not called) and says why; once it is released, the next pass runs under a
// request id of its own.
TEST_F(ReconcilePassTest, APassWaitsForNoOtherAndRunsUnderAFreshRequestId) {
  Reconciler reconciler(store_, cache_, state_, *engine_, clock_);
  int started = 0;
  std::string started_id;
  auto hook = [&](const std::string& id) {
    ++started;
    started_id = id;
  };
  {
    Result<std::unique_ptr<PassLock>> other = PassLock::TryAcquire(root_);
    ASSERT_TRUE(other.ok()) << other.status().ToString();
    PassRun blocked = RunReconcilePass(root_, reconciler, options_, hook);
    EXPECT_EQ(blocked.lock_status.code(), Code::kConflict) << blocked.lock_status.ToString();
    EXPECT_NE(blocked.lock_status.message().find("another reconcile pass"), std::string::npos);
    EXPECT_EQ(blocked.lock, nullptr);
    EXPECT_EQ(started, 0);
    EXPECT_EQ(blocked.report.compared, 0);
  }
  PassRun run = RunReconcilePass(root_, reconciler, options_, hook);
  ASSERT_TRUE(run.lock_status.ok()) << run.lock_status.ToString();
  EXPECT_TRUE(run.status.ok()) << run.status.ToString();
  EXPECT_NE(run.lock, nullptr);
  EXPECT_EQ(started, 1);
  EXPECT_EQ(run.request_id.rfind("reconcile-", 0), 0u) << run.request_id;
  EXPECT_EQ(started_id, run.request_id);
  EXPECT_EQ(run.report.missing, 1);
  // The lock stays held for as long as the caller keeps it.
  EXPECT_EQ(PassLock::TryAcquire(root_).status().code(), Code::kConflict);
  run.lock.reset();
  EXPECT_TRUE(PassLock::TryAcquire(root_).ok());

  // A request id given by the caller is kept.
  options_.request_id = "reconcile-by-hand";
  PassRun named = RunReconcilePass(root_, reconciler, options_);
  EXPECT_EQ(named.request_id, "reconcile-by-hand");
}

}  // namespace
}  // namespace ds::app
