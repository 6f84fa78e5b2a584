// The audit log's appender (src/audit/audit_log.h) against its spec, docs/AUDIT_FORMAT.md:
// appends, reopening, a key that does not match the log, rotation, concurrent appenders
// (threads and processes) and the crash/truncation policy.
#include "audit/audit_log.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "audit_fixture.h"
#include "fakes/fakes.h"

namespace ds::audit_test {
namespace {

TEST_F(AuditChainTest, AppendAndVerify) {
  auto log = OpenLog();
  ASSERT_TRUE(log);
  EXPECT_EQ(log->last_position().seq, 0);
  EXPECT_EQ(log->last_position().hash, kZeros);
  std::vector<AuditPosition> positions;
  for (int i = 1; i <= 5; ++i) {
    Result<AuditPosition> p = log->AppendRemoval(Removal(i));
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    positions.push_back(*p);
    clock_.Advance(1500);
  }
  std::vector<std::string> lines = ReadLines(path_);
  ASSERT_EQ(lines.size(), 5u);
  std::string prev = kZeros;
  for (size_t i = 0; i < lines.size(); ++i) {
    ojson j = ojson::parse(lines[i]);
    std::vector<std::string> names;
    for (auto it = j.begin(); it != j.end(); ++it) names.push_back(it.key());
    EXPECT_EQ(names, (std::vector<std::string>{"seq", "time", "prev", "type", "bucket", "key",
                                               "version_id", "etag", "size", "cause", "event_id",
                                               "event_name", "outcome"}));
    EXPECT_EQ(j["seq"], static_cast<int64_t>(i + 1));
    EXPECT_EQ(j["prev"], prev);
    EXPECT_EQ(j["type"], "removal");
    EXPECT_EQ(positions[i].seq, static_cast<int64_t>(i + 1));
    EXPECT_EQ(positions[i].hash, Sha256Hex(lines[i]));
    prev = Sha256Hex(lines[i]);
  }
  EXPECT_EQ(ojson::parse(lines[0])["time"], "2023-11-14T22:13:20.000Z");
  EXPECT_EQ(ojson::parse(lines[1])["time"], "2023-11-14T22:13:21.500Z");
  EXPECT_EQ(ojson::parse(lines[2])["size"], -1);
  EXPECT_EQ(ojson::parse(lines[2])["etag"], "\"etag3\"");
  EXPECT_NE(lines[2].find(R"("etag":"\"etag3\"")"), std::string::npos);
  EXPECT_EQ(log->last_position().seq, 5);
  EXPECT_EQ(log->last_position().hash, prev);

  VerifyReport rep = ExpectIntact();
  EXPECT_EQ(rep.records, 5);
  EXPECT_EQ(rep.head_seq, 5);
  EXPECT_EQ(rep.head_hash, prev);
  EXPECT_EQ(rep.files, std::vector<std::string>{path_});
  EXPECT_FALSE(rep.hmac_checked);
  EXPECT_EQ(rep.records_with_hmac, 0);
  // The file is private to its owner.
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 077, 0u);
}

// Issue 17: the log's lock held by another process (here another open file description of
// "<path>.lock", as another process or host would hold it): an append waits for it, is not
// written while it is held, and the wait is counted (delete_sync_audit_lock_wait_seconds_total).
TEST_F(AuditChainTest, AppendWaitsForALockHeldElsewhereAndCountsTheWait) {
  auto log = OpenLog();
  ASSERT_TRUE(log);
  EXPECT_EQ(log->lock_wait_ms(), 0);
  Fill(*log, 1);
  EXPECT_EQ(log->lock_wait_ms(), 0) << "an append with nobody else holding the lock waits not";
  int other = ::open((path_ + ".lock").c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(other, 0);
  ASSERT_EQ(::flock(other, LOCK_EX), 0);
  std::atomic<bool> done{false};
  std::thread appender([&] {
    EXPECT_TRUE(log->RecordRemoval(Removal(2)).ok());
    done = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_FALSE(done.load()) << "appended while another holder had the lock";
  ASSERT_EQ(::flock(other, LOCK_UN), 0);
  appender.join();
  ::close(other);
  EXPECT_TRUE(done.load());
  EXPECT_GT(log->lock_wait_ms(), 0);
  EXPECT_EQ(log->last_position().seq, 2);
  ExpectIntact();
}

TEST_F(AuditChainTest, EmptyAndMissingLogs) {
  Result<VerifyReport> missing = AuditLog::Verify(path_, std::nullopt);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
  auto log = OpenLog();
  ASSERT_TRUE(log);
  VerifyReport rep = ExpectIntact();
  EXPECT_EQ(rep.records, 0);
  EXPECT_EQ(rep.head_seq, 0);
  EXPECT_EQ(rep.head_hash, kZeros);
  Result<std::unique_ptr<AuditLog>> nodir =
      AuditLog::Open(dir_ + "/no/such/dir/audit.log", {}, clock_);
  EXPECT_FALSE(nodir.ok());
}

TEST_F(AuditChainTest, ReopenContinuesChain) {
  {
    auto log = OpenLog();
    ASSERT_TRUE(log);
    Fill(*log, 3);
  }
  std::string third = ReadLines(path_)[2];
  {
    auto log = OpenLog();
    ASSERT_TRUE(log);
    EXPECT_EQ(log->last_position().seq, 3);
    EXPECT_EQ(log->last_position().hash, Sha256Hex(third));
    Fill(*log, 2, 4);
  }
  std::vector<std::string> lines = ReadLines(path_);
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_EQ(ojson::parse(lines[3])["seq"], 4);
  EXPECT_EQ(ojson::parse(lines[3])["prev"], Sha256Hex(third));
  EXPECT_EQ(ExpectIntact().records, 5);
}

TEST_F(AuditChainTest, OpenRefusesAKeyThatDoesNotMatchTheLog) {
  AuditOptions keyed;
  keyed.hmac_key = key_;
  {
    auto log = OpenLog(keyed);
    ASSERT_TRUE(log);
    Fill(*log, 2);
  }
  Result<std::unique_ptr<AuditLog>> nokey = AuditLog::Open(path_, {}, clock_);
  ASSERT_FALSE(nokey.ok());
  EXPECT_NE(nokey.status().message().find("carries HMACs"), std::string::npos);
  AuditOptions wrong;
  wrong.hmac_key = "not the key";
  Result<std::unique_ptr<AuditLog>> bad = AuditLog::Open(path_, wrong, clock_);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("does not match"), std::string::npos);

  std::string other = dir_ + "/plain.log";
  {
    Result<std::unique_ptr<AuditLog>> plain = AuditLog::Open(other, {}, clock_);
    ASSERT_TRUE(plain.ok());
    ASSERT_TRUE((*plain)->RecordRemoval(Removal(1)).ok());
  }
  Result<std::unique_ptr<AuditLog>> late_key = AuditLog::Open(other, keyed, clock_);
  ASSERT_FALSE(late_key.ok());
  EXPECT_NE(late_key.status().message().find("without an HMAC key"), std::string::npos);
}

// ---- rotation ----

TEST_F(AuditChainTest, GroupAppendChainsEveryRecordAndRotatesBetweenThem) {
  AuditOptions opts;
  opts.hmac_key = key_;
  opts.max_bytes = 1200;  // 2 records per file with HMACs: the group spans several files
  auto log = OpenLog(opts);
  ASSERT_TRUE(log);
  Fill(*log, 1);
  std::vector<RemovalRecord> group;
  for (int i = 2; i <= 12; ++i) group.push_back(Removal(i));
  ASSERT_TRUE(log->RecordRemovals(group).ok());
  EXPECT_EQ(log->last_position().seq, 12);
  ASSERT_TRUE(log->RecordRemovals({}).ok());  // an empty group appends nothing
  EXPECT_EQ(log->last_position().seq, 12);
  Fill(*log, 1, 13);
  EXPECT_EQ(ExpectIntact(key_).records, 13);
  std::vector<std::string> rotated = RotatedFiles();
  EXPECT_GE(rotated.size(), 5u);
  for (const std::string& f : rotated) EXPECT_LE(ReadFile(f).size(), 1200u);
  // Records keep the group's order.
  std::vector<std::string> keys;
  for (const std::string& f : rotated) {
    for (const std::string& line : ReadLines(f)) keys.push_back(ojson::parse(line)["key"]);
  }
  for (const std::string& line : ReadLines(path_)) keys.push_back(ojson::parse(line)["key"]);
  ASSERT_EQ(keys.size(), 13u);
  for (int i = 1; i <= 13; ++i) EXPECT_EQ(keys[i - 1], Removal(i).key);
}

TEST_F(AuditChainTest, RotationKeepsTheChainAcrossFiles) {
  AuditOptions opts;
  opts.hmac_key = key_;
  opts.max_bytes = 1200;  // 2 records per file with HMACs
  {
    auto log = OpenLog(opts);
    ASSERT_TRUE(log);
    Fill(*log, 8);
  }
  {
    auto log = OpenLog(opts);  // reopening knows the current file's first seq
    ASSERT_TRUE(log);
    EXPECT_EQ(log->last_position().seq, 8);
    Fill(*log, 2, 9);
  }
  std::vector<std::string> rotated = RotatedFiles();
  ASSERT_GE(rotated.size(), 2u);
  std::vector<std::string> all;
  int64_t next = 1;
  for (const std::string& f : rotated) {
    std::vector<std::string> lines = ReadLines(f);
    ASSERT_FALSE(lines.empty());
    EXPECT_LE(ReadFile(f).size(), 1200u);
    int64_t last = next + static_cast<int64_t>(lines.size()) - 1;
    EXPECT_EQ(f, path_ + "." + std::to_string(next) + "-" + std::to_string(last));
    next = last + 1;
    all.insert(all.end(), lines.begin(), lines.end());
  }
  std::vector<std::string> current = ReadLines(path_);
  ASSERT_FALSE(current.empty());
  EXPECT_EQ(ojson::parse(current[0])["seq"], next);
  // The first record of each file chains to the last one of the file before.
  EXPECT_EQ(ojson::parse(current[0])["prev"], Sha256Hex(all.back()));
  all.insert(all.end(), current.begin(), current.end());
  ASSERT_EQ(all.size(), 10u);

  VerifyReport rep = ExpectIntact(key_);
  EXPECT_EQ(rep.records, 10);
  EXPECT_EQ(rep.head_seq, 10);
  EXPECT_EQ(rep.head_hash, Sha256Hex(all.back()));
  std::vector<std::string> files = rotated;
  files.push_back(path_);
  EXPECT_EQ(rep.files, files);
}

TEST_F(AuditChainTest, CrashDuringRotationLeavesAVerifiableLog) {
  AuditOptions opts;
  opts.max_bytes = 1200;
  {
    auto log = OpenLog(opts);
    ASSERT_TRUE(log);
    Fill(*log, 5);
  }
  // A crash after the rename and before the new file was made: no current file.
  std::vector<std::string> lines = ReadLines(path_);
  int64_t first = ojson::parse(lines.front())["seq"];
  int64_t last = ojson::parse(lines.back())["seq"];
  ASSERT_EQ(::rename(path_.c_str(),
                     (path_ + "." + std::to_string(first) + "-" + std::to_string(last)).c_str()),
            0);
  EXPECT_EQ(ExpectIntact().records, 5);
  {
    auto log = OpenLog(opts);
    ASSERT_TRUE(log);
    EXPECT_EQ(log->last_position().seq, 5);
    Fill(*log, 1, 6);
  }
  EXPECT_EQ(ExpectIntact().records, 6);
}

// ---- concurrency ----

TEST_F(AuditChainTest, ConcurrentThreads) {
  AuditOptions opts;
  opts.max_bytes = 8 * 1024;
  auto log = OpenLog(opts);
  ASSERT_TRUE(log);
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        if (!log->RecordRemoval(Removal(t * 1000 + i)).ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  VerifyReport rep = ExpectIntact();
  EXPECT_EQ(rep.records, 200);
  EXPECT_EQ(log->last_position().seq, 200);
  EXPECT_GE(rep.files.size(), 3u);
}

TEST_F(AuditChainTest, TwoInstancesInOneProcessInterleave) {
  auto a = OpenLog();
  auto b = OpenLog();
  ASSERT_TRUE(a && b);
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(a->RecordRemoval(Removal(i)).ok());
    ASSERT_TRUE(b->RecordRemoval(Removal(100 + i)).ok());
  }
  EXPECT_EQ(b->last_position().seq, 10);
  EXPECT_EQ(ExpectIntact().records, 10);
}

TEST_F(AuditChainTest, ConcurrentProcesses) {
  AuditOptions opts;
  opts.max_bytes = 16 * 1024;
  constexpr int kPerProcess = 100;
  std::vector<pid_t> children;
  for (int c = 0; c < 2; ++c) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      int code = 0;
      {
        fakes::FakeClock clock;
        Result<std::unique_ptr<AuditLog>> log = AuditLog::Open(path_, opts, clock);
        if (!log.ok()) code = 3;
        for (int i = 0; code == 0 && i < kPerProcess; ++i) {
          if (!(*log)->RecordRemoval(Removal(c * 1000 + i)).ok()) code = 4;
        }
      }
      ::_exit(code);
    }
    children.push_back(pid);
  }
  {
    auto log = OpenLog(opts);
    ASSERT_TRUE(log);
    for (int i = 0; i < kPerProcess; ++i) ASSERT_TRUE(log->RecordRemoval(Removal(5000 + i)).ok());
  }
  for (pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
  }
  VerifyReport rep = ExpectIntact();
  EXPECT_EQ(rep.records, 3 * kPerProcess);
  EXPECT_GE(rep.files.size(), 3u);
}

TEST_F(AuditChainTest, AppendRefusesALogThatWentBackwards) {
  auto log = OpenLog();
  ASSERT_TRUE(log);
  Fill(*log, 4);
  std::vector<std::string> lines = ReadLines(path_);
  lines.resize(2);
  WriteLines(path_, lines);
  Status s = log->RecordRemoval(Removal(9));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("went backwards"), std::string::npos) << s.message();
}

// ---- crash policy ----

TEST_F(AuditChainTest, OpenCutsATornTailKeepsItAsEvidenceAndNotesItInTheChain) {
  AuditOptions opts;
  opts.hmac_key = key_;
  {
    auto log = OpenLog(opts);
    ASSERT_TRUE(log);
    Fill(*log, 3);
  }
  const std::string content = ReadFile(path_);
  const std::string kept = content.substr(0, content.size() - 40);  // record 3 torn
  const size_t start = kept.rfind('\n') + 1;
  WriteFile(path_, kept);
  {
    auto log = OpenLog(opts);
    ASSERT_TRUE(log);
    EXPECT_EQ(log->last_position().seq, 3);  // 1, 2 and the torn-tail note
    Fill(*log, 1, 4);
  }
  const std::string evidence = path_ + ".torn-" + std::to_string(start);
  EXPECT_EQ(ReadFile(evidence), kept.substr(start));
  std::vector<std::string> lines = ReadLines(path_);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0] + "\n" + lines[1] + "\n", kept.substr(0, start));
  ojson note = ojson::parse(lines[2]);
  EXPECT_EQ(note["type"], "torn-tail");
  EXPECT_EQ(note["offset"], start);
  EXPECT_EQ(note["bytes"], kept.size() - start);
  EXPECT_EQ(note["sha256"], Sha256Hex(kept.substr(start)));
  EXPECT_EQ(note["evidence"], "audit.log.torn-" + std::to_string(start));
  EXPECT_EQ(ojson::parse(lines[3])["key"], Removal(4).key);
  EXPECT_EQ(ExpectIntact(key_).records, 4);
  EXPECT_EQ(RotatedFiles(), std::vector<std::string>{});  // the evidence is not a rotated file
}

TEST_F(AuditChainTest, OpenStillRefusesATailThatIsNotATornAppend) {
  {
    auto log = OpenLog();
    ASSERT_TRUE(log);
    Fill(*log, 3);
  }
  const std::string content = ReadFile(path_);
  // A tail that is a whole line but not a record.
  WriteFile(path_, content + "{\"seq\":4}\n");
  Result<std::unique_ptr<AuditLog>> log = AuditLog::Open(path_, {}, clock_);
  ASSERT_FALSE(log.ok());
  EXPECT_NE(log.status().message().find("not valid"), std::string::npos);
  EXPECT_NE(log.status().message().find("audit verify"), std::string::npos);
  EXPECT_EQ(ReadFile(path_), content + "{\"seq\":4}\n");  // nothing was repaired

  // A last record that does not chain to the one before it.
  std::vector<std::string> lines = ReadLines(path_);
  lines.pop_back();
  std::swap(lines[1], lines[2]);
  WriteLines(path_, lines);
  log = AuditLog::Open(path_, {}, clock_);
  ASSERT_FALSE(log.ok());
  EXPECT_NE(log.status().message().find("does not chain"), std::string::npos);

  // A torn line after a tail that does not chain: cut (it is kept), but the log is refused.
  WriteFile(path_, ReadFile(path_) + "{\"seq\":4,\"ti");
  log = AuditLog::Open(path_, {}, clock_);
  ASSERT_FALSE(log.ok());
  EXPECT_NE(log.status().message().find("does not chain"), std::string::npos);
}

TEST_F(AuditChainTest, AppendCutsATornTailLeftByAnotherProcess) {
  auto log = OpenLog();
  ASSERT_TRUE(log);
  Fill(*log, 2);
  // Another appender was killed mid-line.
  std::ofstream(path_, std::ios::app | std::ios::binary) << "{\"seq\":3,\"ti";
  ASSERT_TRUE(log->RecordRemoval(Removal(3)).ok());
  std::vector<std::string> lines = ReadLines(path_);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(ojson::parse(lines[2])["type"], "torn-tail");
  EXPECT_EQ(ojson::parse(lines[3])["key"], Removal(3).key);
  EXPECT_EQ(ExpectIntact().records, 4);
}

}  // namespace
}  // namespace ds::audit_test
