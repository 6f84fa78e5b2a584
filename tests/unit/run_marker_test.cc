#include "fs/run_marker.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "fs/posix_cache.h"

namespace ds {
namespace {

class RunMarkerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("ds-run-marker-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // A pid of this host that is not running any more: a child that exited and was reaped.
  static pid_t DeadPid() {
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    int status = 0;
    waitpid(pid, &status, 0);
    return pid;
  }

  void Plant(const std::string& name, const std::string& body) {
    std::filesystem::create_directories(dir_);
    std::ofstream(dir_ + "/" + name) << body;
  }

  std::string dir_;
};

TEST_F(RunMarkerTest, FirstRunFindsNothingAndACleanStopRemovesTheMarker) {
  std::vector<UncleanRun> unclean;
  Result<std::unique_ptr<RunMarker>> m = RunMarker::Create(dir_, "serve", &unclean);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_TRUE(unclean.empty());
  EXPECT_TRUE(std::filesystem::exists((*m)->path()));
  ASSERT_TRUE((*m)->Release().ok());
  EXPECT_TRUE(std::filesystem::is_empty(dir_));
  // A second start after the clean stop finds nothing either.
  {
    Result<std::unique_ptr<RunMarker>> again = RunMarker::Create(dir_, "serve", &unclean);
    ASSERT_TRUE(again.ok());
    EXPECT_TRUE(unclean.empty());
  }
  // A process that returns (also after an error at start) leaves no marker.
  EXPECT_TRUE(std::filesystem::is_empty(dir_));
}

TEST_F(RunMarkerTest, MarkerOfADeadProcessOrOfOurOwnPidIsAnUncleanStop) {
  const std::string host = HostToken();
  Plant(host + "-" + std::to_string(DeadPid()), "serve pid 1 on h, started yesterday\n");
  // A restarted container's process has the pid its predecessor had.
  Plant(host + "-" + std::to_string(getpid()), "serve, the same pid\n");
  std::vector<UncleanRun> unclean;
  Result<std::unique_ptr<RunMarker>> m = RunMarker::Create(dir_, "serve", &unclean);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  ASSERT_EQ(unclean.size(), 2u);
  // Reported once: the next start does not report them again.
  ASSERT_TRUE((*m)->Release().ok());
  std::vector<UncleanRun> next;
  ASSERT_TRUE(RunMarker::Create(dir_, "serve", &next).ok());
  EXPECT_TRUE(next.empty());
}

TEST_F(RunMarkerTest, LiveProcessesAndOtherHostsAreNotJudged) {
  const std::string host = HostToken();
  pid_t child = fork();
  if (child == 0) {
    pause();
    _exit(0);
  }
  Plant(host + "-" + std::to_string(child), "a serve that is still running\n");
  Plant("another-host.4026531836-1", "a serve of another host\n");
  Plant("not-a-marker", "x");
  std::vector<UncleanRun> unclean;
  Result<std::unique_ptr<RunMarker>> m = RunMarker::Create(dir_, "serve", &unclean);
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_TRUE(unclean.empty());
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/another-host.4026531836-1"));
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/" + host + "-" + std::to_string(child)));
}

}  // namespace
}  // namespace ds
