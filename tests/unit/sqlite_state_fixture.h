// Shared by SqliteState's tests (sqlite_state_test.cc, sqlite_jobs_test.cc): the SqliteStateTest
// fixture (a database path in a fresh temporary folder, OpenDb) and Job, a builder of jobs of
// bucket "b". In a named namespace, not an anonymous one: every test of the suite
// SqliteStateTest must share one fixture class.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>
#include <utility>

#include "core/state_store.h"
#include "state/sqlite_state.h"

namespace ds::sqlite_state_test {

class SqliteStateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ds-state-XXXXXX";
    dir_ = mkdtemp(tmpl);
    path_ = dir_ + "/sub/state.db";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::unique_ptr<SqliteState> OpenDb() {
    auto s = SqliteState::Open(path_);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(s).value() : nullptr;
  }
  std::string dir_, path_;
};

inline FetchJob Job(const std::string& key, const std::string& seq = "", bool ordered = false) {
  FetchJob j;
  j.bucket = "b";
  j.key = key;
  j.seq = seq;
  j.ordered = ordered;
  j.reason = JobReason::kEvent;
  j.event_name = "test";
  return j;
}

}  // namespace ds::sqlite_state_test
