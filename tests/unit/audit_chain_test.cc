// The audit log (src/audit/audit_log.h) against its spec, docs/AUDIT_FORMAT.md: appends, reopening,
// HMACs, every kind of tampering, rotation, concurrent appenders (threads and processes),
// keys that are not UTF-8, the crash/truncation policy and the spec's worked example.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "audit/audit_log.h"
#include "audit/hmac_key.h"
#include "fakes/fakes.h"

namespace ds {
namespace {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

const std::string kZeros(64, '0');
const std::string kDataDir = DS_TEST_DATA_DIR "/audit";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
}

// The lines of a file without their newlines (a last line without newline is kept).
std::vector<std::string> ReadLines(const std::string& path) {
  std::vector<std::string> lines;
  std::string content = ReadFile(path);
  size_t start = 0;
  while (start < content.size()) {
    size_t nl = content.find('\n', start);
    if (nl == std::string::npos) {
      lines.push_back(content.substr(start));
      break;
    }
    lines.push_back(content.substr(start, nl - start));
    start = nl + 1;
  }
  return lines;
}

void WriteLines(const std::string& path, const std::vector<std::string>& lines) {
  std::string content;
  for (const std::string& l : lines) content += l + "\n";
  WriteFile(path, content);
}

std::string Sha256Hex(const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), md, &n, EVP_sha256(), nullptr);
  std::string out;
  char buf[3];
  for (unsigned int i = 0; i < n; ++i) {
    std::snprintf(buf, sizeof buf, "%02x", md[i]);
    out += buf;
  }
  return out;
}

RemovalRecord Removal(int i) {
  RemovalRecord r;
  r.bucket = "training-data";
  r.key = "people/p" + std::to_string(i) + "/photo.jpg";
  r.version_id = i % 2 ? "v" + std::to_string(i) : "";
  r.etag = "\"etag" + std::to_string(i) + "\"";
  r.size = i % 3 ? 1000 + i : -1;
  r.cause = "event";
  r.event_id = "event-" + std::to_string(i);
  r.event_name = "ObjectRemoved:Delete";
  r.outcome = i % 4 ? "removed" : "absent";
  return r;
}

class AuditChainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/audit_chain_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/audit.log";
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::unique_ptr<AuditLog> OpenLog(const AuditOptions& opts = {}) {
    Result<std::unique_ptr<AuditLog>> log = AuditLog::Open(path_, opts, clock_);
    EXPECT_TRUE(log.ok()) << log.status().ToString();
    return log.ok() ? std::move(*log) : nullptr;
  }

  // Writes `n` removal records, advancing the clock by 10 ms each.
  void Fill(AuditLog& log, int n, int from = 1) {
    for (int i = from; i < from + n; ++i) {
      ASSERT_TRUE(log.RecordRemoval(Removal(i)).ok());
      clock_.Advance(10);
    }
  }

  // The report of a verification expected to fail.
  VerifyFailure ExpectBroken(const std::optional<std::string>& key = std::nullopt) {
    Result<VerifyReport> r = AuditLog::Inspect(path_, key);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return {};
    EXPECT_TRUE(r->failure.has_value()) << "verification passed but should have failed";
    Result<VerifyReport> v = AuditLog::Verify(path_, key);
    EXPECT_FALSE(v.ok());
    EXPECT_EQ(v.status().code(), Code::kInvalidArgument);
    if (!r->failure) return {};
    EXPECT_EQ(v.status().message(), r->failure->ToString());
    return *r->failure;
  }

  VerifyReport ExpectIntact(const std::optional<std::string>& key = std::nullopt) {
    Result<VerifyReport> r = AuditLog::Verify(path_, key);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : VerifyReport{};
  }

  std::vector<std::string> RotatedFiles() {
    std::vector<std::pair<long long, std::string>> files;
    for (const auto& e : fs::directory_iterator(dir_)) {
      std::string name = e.path().filename().string();
      if (name.rfind("audit.log.", 0) != 0 || name.size() <= 10 || !std::isdigit(name[10])) {
        continue;  // the log, its lock, torn-record evidence
      }
      files.emplace_back(std::stoll(name.substr(10)), e.path().string());
    }
    std::sort(files.begin(), files.end());
    std::vector<std::string> out;
    for (auto& f : files) out.push_back(f.second);
    return out;
  }

  fakes::FakeClock clock_;
  std::string dir_, path_;
  const std::string key_ = "0123456789abcdef0123456789abcdef";
};

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

TEST_F(AuditChainTest, GenericAppend) {
  auto log = OpenLog();
  ASSERT_TRUE(log);
  nlohmann::json fields = {{"subject", "alice"}, {"request_id", "er-1"}, {"n", 3},
                           {"ok", true},         {"none", nullptr},      {"keys", {"a", "b"}}};
  Result<AuditPosition> p = log->Append("erasure-request", fields);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->seq, 1);
  std::string line = ReadLines(path_)[0];
  EXPECT_EQ(p->hash, Sha256Hex(line));
  // Fields follow "type" in the byte order of their names.
  EXPECT_NE(line.find(R"("type":"erasure-request","keys":["a","b"],"n":3,"none":null,"ok":true,)"
                      R"("request_id":"er-1","subject":"alice"})"),
            std::string::npos)
      << line;
  EXPECT_TRUE(log->Append("verification", nlohmann::json::object()).ok());

  EXPECT_EQ(log->Append("Bad Type", fields).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(log->Append("", fields).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(log->Append("x", nlohmann::json::array()).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(log->Append("x", {{"seq", 1}}).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(log->Append("x", {{"hmac", "x"}}).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(log->Append("x", {{"ratio", 0.5}}).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(log->Append("x", {{"deep", {{"r", 1.5}}}}).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(log->Append("x", {{"bad", std::string("\xff")}}).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(log->Append("x", {{"big", std::string(2 << 20, 'a')}}).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(ExpectIntact().records, 2);
}

TEST_F(AuditChainTest, HmacRightWrongAndNoKey) {
  AuditOptions opts;
  opts.hmac_key = key_;
  auto log = OpenLog(opts);
  ASSERT_TRUE(log);
  Fill(*log, 4);
  for (const std::string& l : ReadLines(path_)) {
    ASSERT_GT(l.size(), 75u);
    EXPECT_EQ(l.substr(l.size() - 75, 9), ",\"hmac\":\"");
    EXPECT_EQ(l.substr(l.size() - 2), "\"}");
  }
  VerifyReport rep = ExpectIntact(key_);
  EXPECT_EQ(rep.records, 4);
  EXPECT_TRUE(rep.hmac_checked);
  EXPECT_EQ(rep.records_with_hmac, 4);

  VerifyFailure f = ExpectBroken(std::string("another key"));
  EXPECT_EQ(f.file, path_);
  EXPECT_EQ(f.line, 1);
  EXPECT_EQ(f.seq, 1);
  EXPECT_NE(f.reason.find("HMAC mismatch"), std::string::npos) << f.reason;

  // Without a key the chain is still checked; the HMACs are counted, not checked.
  rep = ExpectIntact();
  EXPECT_FALSE(rep.hmac_checked);
  EXPECT_EQ(rep.records_with_hmac, 4);
}

TEST_F(AuditChainTest, HmacMissingWhileKeyGiven) {
  auto log = OpenLog();
  ASSERT_TRUE(log);
  Fill(*log, 2);
  VerifyFailure f = ExpectBroken(key_);
  EXPECT_EQ(f.line, 1);
  EXPECT_NE(f.reason.find("HMAC missing"), std::string::npos) << f.reason;
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

// ---- tampering ----

class AuditTamperTest : public AuditChainTest, public ::testing::WithParamInterface<bool> {
 protected:
  std::optional<std::string> Key() const {
    return GetParam() ? std::optional<std::string>(key_) : std::nullopt;
  }
  // A log of 6 records; returns its lines.
  std::vector<std::string> Make() {
    AuditOptions opts;
    opts.hmac_key = Key();
    auto log = OpenLog(opts);
    EXPECT_TRUE(log);
    if (log) Fill(*log, 6);
    return ReadLines(path_);
  }
};

TEST_P(AuditTamperTest, EditedByte) {
  std::vector<std::string> lines = Make();
  size_t at = lines[2].find("people/p3");
  ASSERT_NE(at, std::string::npos);
  lines[2][at] = 'P';
  WriteLines(path_, lines);
  VerifyFailure f = ExpectBroken(Key());
  EXPECT_EQ(f.file, path_);
  if (Key()) {
    // The HMAC names the edited record itself.
    EXPECT_EQ(f.line, 3);
    EXPECT_EQ(f.seq, 3);
    EXPECT_NE(f.reason.find("HMAC mismatch"), std::string::npos) << f.reason;
  } else {
    // Without a key the next record's prev exposes it, and the message names the edited one.
    EXPECT_EQ(f.line, 4);
    EXPECT_EQ(f.seq, 4);
    EXPECT_NE(f.reason.find("prev hash mismatch"), std::string::npos) << f.reason;
    EXPECT_NE(f.reason.find(path_ + ":3, seq 3"), std::string::npos) << f.reason;
  }
}

TEST_P(AuditTamperTest, EditedSeqOrPrev) {
  std::vector<std::string> lines = Make();
  std::vector<std::string> edited = lines;
  size_t at = edited[3].find("\"seq\":4");
  ASSERT_NE(at, std::string::npos);
  edited[3][at + 6] = '9';
  WriteLines(path_, edited);
  VerifyFailure f = ExpectBroken(Key());
  EXPECT_EQ(f.line, 4);
  EXPECT_NE(f.reason.find("seq not consecutive"), std::string::npos) << f.reason;

  edited = lines;
  at = edited[3].find("\"prev\":\"");
  edited[3][at + 8] = edited[3][at + 8] == 'a' ? 'b' : 'a';
  WriteLines(path_, edited);
  f = ExpectBroken(Key());
  EXPECT_EQ(f.line, 4);
  EXPECT_EQ(f.seq, 4);
  EXPECT_NE(f.reason.find("prev hash mismatch"), std::string::npos) << f.reason;
}

TEST_P(AuditTamperTest, DroppedLine) {
  std::vector<std::string> lines = Make();
  lines.erase(lines.begin() + 2);
  WriteLines(path_, lines);
  VerifyFailure f = ExpectBroken(Key());
  EXPECT_EQ(f.line, 3);
  EXPECT_EQ(f.seq, 4);
  EXPECT_NE(f.reason.find("seq not consecutive: expected 3, found 4"), std::string::npos)
      << f.reason;
}

TEST_P(AuditTamperTest, DroppedFirstLine) {
  std::vector<std::string> lines = Make();
  lines.erase(lines.begin());
  WriteLines(path_, lines);
  VerifyFailure f = ExpectBroken(Key());
  EXPECT_EQ(f.line, 1);
  EXPECT_EQ(f.seq, 2);
  EXPECT_NE(f.reason.find("start at seq 1"), std::string::npos) << f.reason;
}

TEST_P(AuditTamperTest, SwappedLines) {
  std::vector<std::string> lines = Make();
  std::swap(lines[2], lines[3]);
  WriteLines(path_, lines);
  VerifyFailure f = ExpectBroken(Key());
  EXPECT_EQ(f.line, 3);
  EXPECT_EQ(f.seq, 4);
  EXPECT_NE(f.reason.find("seq not consecutive"), std::string::npos) << f.reason;
}

TEST_P(AuditTamperTest, TruncatedLastLine) {
  Make();
  std::string content = ReadFile(path_);
  WriteFile(path_, content.substr(0, content.size() - 30));
  VerifyFailure f = ExpectBroken(Key());
  EXPECT_EQ(f.line, 6);
  EXPECT_EQ(f.seq, 6);
  EXPECT_NE(f.reason.find("truncated record"), std::string::npos) << f.reason;
  // Only the newline missing is a truncated record too.
  WriteFile(path_, content.substr(0, content.size() - 1));
  f = ExpectBroken(Key());
  EXPECT_EQ(f.line, 6);
  EXPECT_NE(f.reason.find("truncated record"), std::string::npos) << f.reason;
}

TEST_P(AuditTamperTest, InsertedForgedLine) {
  std::vector<std::string> lines = Make();
  // A forger who can compute hashes: seq and prev are right, the rest is invented.
  ojson forged = ojson::parse(lines[2]);
  forged["key"] = "nothing/to/see";
  forged.erase("hmac");
  std::string line = forged.dump();
  if (Key()) line = line.substr(0, line.size() - 1) + ",\"hmac\":\"" + std::string(64, 'a') + "\"}";
  lines.insert(lines.begin() + 2, line);
  WriteLines(path_, lines);
  VerifyFailure f = ExpectBroken(Key());
  if (Key()) {
    EXPECT_EQ(f.line, 3);
    EXPECT_NE(f.reason.find("HMAC mismatch"), std::string::npos) << f.reason;
  } else {
    // The displaced original record no longer follows.
    EXPECT_EQ(f.line, 4);
    EXPECT_NE(f.reason.find("seq not consecutive"), std::string::npos) << f.reason;
  }
}

TEST_P(AuditTamperTest, HmacStrippedFromARecord) {
  std::vector<std::string> lines = Make();
  if (!Key()) return;  // nothing to strip
  ojson forged = ojson::parse(lines[2]);
  forged.erase("hmac");
  lines[2] = forged.dump();
  WriteLines(path_, lines);
  VerifyFailure f = ExpectBroken(Key());
  EXPECT_EQ(f.line, 3);
  EXPECT_NE(f.reason.find("HMAC missing"), std::string::npos) << f.reason;
}

TEST_P(AuditTamperTest, NotCanonicalOrNotJson) {
  std::vector<std::string> lines = Make();
  std::vector<std::string> edited = lines;
  edited[1].insert(1, " ");
  WriteLines(path_, edited);
  VerifyFailure f = ExpectBroken(Key());
  EXPECT_EQ(f.line, 2);
  EXPECT_NE(f.reason.find("canonical"), std::string::npos) << f.reason;

  edited = lines;
  edited[1] = "garbage";
  WriteLines(path_, edited);
  f = ExpectBroken(Key());
  EXPECT_EQ(f.line, 2);
  EXPECT_EQ(f.seq, 2);
  EXPECT_NE(f.reason.find("not valid JSON"), std::string::npos) << f.reason;

  edited = lines;
  edited.insert(edited.begin() + 1, "");
  WriteLines(path_, edited);
  f = ExpectBroken(Key());
  EXPECT_EQ(f.line, 2);
}

INSTANTIATE_TEST_SUITE_P(AuditTamper, AuditTamperTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& i) {
                           return i.param ? "Hmac" : "NoHmac";
                         });

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

class AuditRotationTamperTest : public AuditChainTest {
 protected:
  // 12 records in 3 or more files; returns the rotated files.
  std::vector<std::string> Make() {
    AuditOptions opts;
    opts.max_bytes = 1200;
    auto log = OpenLog(opts);
    EXPECT_TRUE(log);
    if (log) Fill(*log, 12);
    std::vector<std::string> rotated = RotatedFiles();
    EXPECT_GE(rotated.size(), 2u);
    ExpectIntact();
    return rotated;
  }
};

TEST_F(AuditRotationTamperTest, EditedByteInRotatedFile) {
  std::vector<std::string> rotated = Make();
  std::vector<std::string> lines = ReadLines(rotated[0]);
  size_t at = lines[1].find("people/");
  lines[1][at] = 'q';
  WriteLines(rotated[0], lines);
  VerifyFailure f = ExpectBroken();
  EXPECT_EQ(f.file, rotated[0]);
  EXPECT_EQ(f.line, 3);
  EXPECT_NE(f.reason.find("prev hash mismatch"), std::string::npos) << f.reason;
}

TEST_F(AuditRotationTamperTest, EditedLastRecordOfRotatedFile) {
  std::vector<std::string> rotated = Make();
  std::vector<std::string> lines = ReadLines(rotated[0]);
  size_t at = lines.back().find("people/");
  lines.back()[at] = 'q';
  WriteLines(rotated[0], lines);
  VerifyFailure f = ExpectBroken();
  EXPECT_EQ(f.file, rotated[1]);  // found by the next file's first record
  EXPECT_EQ(f.line, 1);
  EXPECT_NE(f.reason.find("prev hash mismatch"), std::string::npos) << f.reason;
  EXPECT_NE(f.reason.find(rotated[0] + ":" + std::to_string(lines.size())), std::string::npos)
      << f.reason;
}

TEST_F(AuditRotationTamperTest, DroppedLastLineOfRotatedFile) {
  std::vector<std::string> rotated = Make();
  std::vector<std::string> lines = ReadLines(rotated[0]);
  size_t n = lines.size();
  lines.pop_back();
  WriteLines(rotated[0], lines);
  VerifyFailure f = ExpectBroken();
  EXPECT_EQ(f.file, rotated[0]);
  EXPECT_EQ(f.line, static_cast<int64_t>(n));
  EXPECT_EQ(f.seq, static_cast<int64_t>(n));
  EXPECT_NE(f.reason.find("dropped"), std::string::npos) << f.reason;
}

TEST_F(AuditRotationTamperTest, SwappedLinesInRotatedFile) {
  std::vector<std::string> rotated = Make();
  std::vector<std::string> lines = ReadLines(rotated[1]);
  ASSERT_GE(lines.size(), 2u);
  std::swap(lines[0], lines[1]);
  WriteLines(rotated[1], lines);
  VerifyFailure f = ExpectBroken();
  EXPECT_EQ(f.file, rotated[1]);
  EXPECT_EQ(f.line, 1);
  EXPECT_NE(f.reason.find("seq not consecutive"), std::string::npos) << f.reason;
}

TEST_F(AuditRotationTamperTest, TruncatedRotatedFile) {
  std::vector<std::string> rotated = Make();
  std::string content = ReadFile(rotated[0]);
  WriteFile(rotated[0], content.substr(0, content.size() - 10));
  VerifyFailure f = ExpectBroken();
  EXPECT_EQ(f.file, rotated[0]);
  EXPECT_EQ(f.line, static_cast<int64_t>(ReadLines(rotated[0]).size()));
  EXPECT_NE(f.reason.find("truncated record"), std::string::npos) << f.reason;
}

TEST_F(AuditRotationTamperTest, DeletedRotatedFile) {
  std::vector<std::string> rotated = Make();
  ASSERT_EQ(::unlink(rotated[1].c_str()), 0);
  VerifyFailure f = ExpectBroken();
  const std::string next = rotated.size() > 2 ? rotated[2] : path_;
  EXPECT_EQ(f.file, next);
  EXPECT_EQ(f.line, 1);
  EXPECT_NE(f.reason.find("seq not consecutive"), std::string::npos) << f.reason;
  // And the oldest one.
  std::vector<std::string> all = RotatedFiles();
  ASSERT_EQ(::unlink(all[0].c_str()), 0);
  f = ExpectBroken();
  EXPECT_EQ(f.line, 1);
  EXPECT_NE(f.reason.find("start at seq 1"), std::string::npos) << f.reason;
}

TEST_F(AuditRotationTamperTest, RenamedRotatedFile) {
  std::vector<std::string> rotated = Make();
  // Claim the first file holds one record more than it does.
  std::string name = rotated[0];
  size_t dash = name.rfind('-');
  int64_t last = std::stoll(name.substr(dash + 1));
  std::string renamed = name.substr(0, dash + 1) + std::to_string(last + 1);
  ASSERT_EQ(::rename(name.c_str(), renamed.c_str()), 0);
  VerifyFailure f = ExpectBroken();
  EXPECT_EQ(f.file, renamed);
  EXPECT_NE(f.reason.find("name says"), std::string::npos) << f.reason;
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

// ---- keys ----

TEST_F(AuditChainTest, KeysThatAreNotUtf8Survive) {
  auto log = OpenLog();
  ASSERT_TRUE(log);
  RemovalRecord bad = Removal(1);
  bad.key = std::string("caf\xe9/\xff\xfe\x00x", 9);
  RemovalRecord surrogate = Removal(2);
  surrogate.key = "a/\xed\xa0\x80";  // an encoded surrogate is not UTF-8
  RemovalRecord good = Removal(3);
  good.key = "données/été \"q\" \\ \x01\t.txt";
  RemovalRecord odd_id = Removal(4);
  odd_id.event_id = "\x80";
  ASSERT_TRUE(log->RecordRemoval(bad).ok());
  ASSERT_TRUE(log->RecordRemoval(surrogate).ok());
  ASSERT_TRUE(log->RecordRemoval(good).ok());
  ASSERT_TRUE(log->RecordRemoval(odd_id).ok());
  std::vector<std::string> lines = ReadLines(path_);
  ASSERT_EQ(lines.size(), 4u);
  auto decode = [](const std::string& b64) {
    std::string out(b64.size(), '\0');
    int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(b64.data()),
                            static_cast<int>(b64.size()));
    out.resize(static_cast<size_t>(n) - (b64.size() - b64.find_last_not_of('=') - 1));
    return out;
  };
  ojson j0 = ojson::parse(lines[0]);
  EXPECT_FALSE(j0.contains("key"));
  EXPECT_EQ(decode(j0["key_b64"]), bad.key);
  EXPECT_EQ(decode(ojson::parse(lines[1])["key_b64"]), surrogate.key);
  ojson j2 = ojson::parse(lines[2]);
  EXPECT_EQ(j2["key"], good.key);
  // UTF-8 is written as is; only quote, backslash and control bytes are escaped.
  EXPECT_NE(lines[2].find(R"("key":"données/été \"q\" \\ \u0001\t.txt")"), std::string::npos)
      << lines[2];
  EXPECT_EQ(decode(ojson::parse(lines[3])["event_id_b64"]), odd_id.event_id);
  EXPECT_EQ(ExpectIntact().records, 4);
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

// ---- key files ----

TEST_F(AuditChainTest, LoadHmacKey) {
  std::string f = dir_ + "/key";
  WriteFile(f, "secret-key-0123456789\r\n");
  ::chmod(f.c_str(), 0600);
  Result<std::string> k = LoadHmacKey(f);
  ASSERT_TRUE(k.ok()) << k.status().ToString();
  EXPECT_EQ(*k, "secret-key-0123456789");
  WriteFile(f, "\n");
  EXPECT_EQ(LoadHmacKey(f).status().code(), Code::kInvalidArgument);
  WriteFile(f, "");
  EXPECT_EQ(LoadHmacKey(f).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(LoadHmacKey(dir_ + "/missing").status().code(), Code::kNotFound);
  EXPECT_EQ(LoadHmacKey(dir_).status().code(), Code::kInvalidArgument);
  // Binary keys are kept byte for byte (only trailing newlines go).
  WriteFile(f, std::string("\x00\x01\xff key\n", 8));
  k = LoadHmacKey(f);
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(*k, std::string("\x00\x01\xff key", 7));
}

// ---- an independent verifier ----

// Runs tests/data/audit/verify_reference.py (written from docs/AUDIT_FORMAT.md alone); returns
// its exit status, or -1 when python3 is not available.
int RunReferenceVerifier(const std::string& log, const std::string& key_file = "") {
  if (std::system("python3 -c '' >/dev/null 2>&1") != 0) return -1;
  std::string cmd = "python3 '" + kDataDir + "/verify_reference.py' '" + log + "'";
  if (!key_file.empty()) cmd += " '" + key_file + "'";
  int status = std::system((cmd + " >/dev/null 2>&1").c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : 99;
}

TEST_F(AuditChainTest, ReferenceVerifierAgrees) {
  if (RunReferenceVerifier(kDataDir + "/example.log", kDataDir + "/example.key") == -1) {
    GTEST_SKIP() << "python3 not available";
  }
  const std::string key_file = dir_ + "/key";
  WriteFile(key_file, std::string("k\x00\xff-key\n", 8));
  AuditOptions opts;
  opts.hmac_key = std::string("k\x00\xff-key", 7);
  opts.max_bytes = 2000;
  {
    auto log = OpenLog(opts);
    ASSERT_TRUE(log);
    const char* keys[] = {"plain",       "quo\"te\\",    "ctl\x01\x1f\x7f", "\xff\xfe",
                          "日本語/キー", "\xed\xa0\x80", "emoji/😀",         "tab\tnl\n"};
    int i = 0;
    for (const char* k : keys) {
      RemovalRecord r = Removal(i++);
      r.key = k;
      ASSERT_TRUE(log->RecordRemoval(r).ok());
      ASSERT_TRUE(log->Append("verification", {{"z", {{"b", 1}, {"a", {1, "x", nullptr, false}}}},
                                               {"A", -5},
                                               {"é", "ü\u2028"}})
                      .ok());
    }
  }
  ASSERT_GE(RotatedFiles().size(), 2u);
  ExpectIntact(opts.hmac_key);
  EXPECT_EQ(RunReferenceVerifier(path_, key_file), 0);
  EXPECT_EQ(RunReferenceVerifier(path_), 0);
  EXPECT_EQ(RunReferenceVerifier(path_, kDataDir + "/example.key"), 1);
  std::vector<std::string> lines = ReadLines(path_);
  lines.back()[lines.back().find("\"seq\":")] = ' ';
  WriteLines(path_, lines);
  EXPECT_EQ(RunReferenceVerifier(path_, key_file), 1);
  EXPECT_EQ(RunReferenceVerifier(kDataDir + "/example.log", kDataDir + "/example.key"), 0);
}

// ---- the worked example of docs/AUDIT_FORMAT.md ----

const char kExampleHead[] = "f89ad4bb934fc86845fded7ba0be550d390a9d55824aeee6262ef930bf4f92e6";

TEST(AuditFormatExample, VerifiesAsDocumented) {
  Result<std::string> key = LoadHmacKey(kDataDir + "/example.key");
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  EXPECT_EQ(*key, "example-key-do-not-use");
  const std::string log = kDataDir + "/example.log";
  Result<VerifyReport> r = AuditLog::Verify(log, *key);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->records, 3);
  EXPECT_EQ(r->head_seq, 3);
  EXPECT_EQ(r->head_hash, kExampleHead);
  EXPECT_EQ(r->files, (std::vector<std::string>{log + ".1-2", log}));
  EXPECT_TRUE(r->hmac_checked);
  EXPECT_FALSE(AuditLog::Verify(log, std::string("wrong")).ok());
  Result<VerifyReport> nokey = AuditLog::Verify(log, std::nullopt);
  ASSERT_TRUE(nokey.ok());
  EXPECT_EQ(nokey->records_with_hmac, 3);
  // The hashes the document quotes.
  std::vector<std::string> lines = ReadLines(log + ".1-2");
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(Sha256Hex(lines[0]),
            "7027348b95a048c39e8edbc5ebb6c0c2a2b28881933f8e4548ff0aefeb3288af");
  EXPECT_EQ(Sha256Hex(lines[1]),
            "a2d5322f20a50c85a309d6e6f9f52461c0c03d2cce7dda7d7300d255dba6cd45");
}

// The writer reproduces the example byte for byte from the same records, clock and options.
TEST(AuditFormatExample, WriterProducesTheExample) {
  char tmpl[] = "/tmp/audit_example_test.XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  fakes::FakeClock clock;  // 2023-11-14T22:13:20.000Z
  AuditOptions opts;
  opts.hmac_key = "example-key-do-not-use";
  opts.max_bytes = 1024;
  {
    Result<std::unique_ptr<AuditLog>> log = AuditLog::Open(dir + "/example.log", opts, clock);
    ASSERT_TRUE(log.ok()) << log.status().ToString();
    RemovalRecord r1{"training-data",
                     "people/alice/photo 1.jpg",
                     "",
                     "\"9b2cf535f27731c974343645a3985328\"",
                     102400,
                     "event",
                     "26a7d1d3-8b0e-4f4e-b7a1-3c1d2c7e9f01",
                     "ObjectRemoved:Delete",
                     "removed"};
    ASSERT_TRUE((*log)->RecordRemoval(r1).ok());
    clock.Advance(1234);
    Result<AuditPosition> p = (*log)->Append(
        "erasure-request",
        {{"request_id", "er-0001"}, {"subject", "alice"}, {"prefixes", {"people/alice/"}}});
    ASSERT_TRUE(p.ok());
    clock.Advance(56);
    RemovalRecord r3{"training-data",
                     "people/alice/caf\xe9.txt",
                     "3HL4kqtJvjVBH40Nrjfkd",
                     "",
                     -1,
                     "erase",
                     "er-0001",
                     "",
                     "absent"};
    Result<AuditPosition> last = (*log)->AppendRemoval(r3);
    ASSERT_TRUE(last.ok());
    EXPECT_EQ(last->seq, 3);
    EXPECT_EQ(last->hash, kExampleHead);
  }
  EXPECT_EQ(ReadFile(dir + "/example.log.1-2"), ReadFile(kDataDir + "/example.log.1-2"));
  EXPECT_EQ(ReadFile(dir + "/example.log"), ReadFile(kDataDir + "/example.log"));
  std::error_code ec;
  fs::remove_all(dir, ec);
}

}  // namespace
}  // namespace ds
