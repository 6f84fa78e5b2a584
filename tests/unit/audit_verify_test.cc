// Verification of the audit log (src/audit/verify.h, AuditLog::Verify and Inspect) against its
// spec, docs/AUDIT_FORMAT.md: HMACs checked with the right key, a wrong one or none, every kind
// of tampering within a file and across rotated files, and an independent verifier written
// from the spec alone that agrees.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "audit/audit_log.h"
#include "audit_fixture.h"

namespace ds::audit_test {
namespace {

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

}  // namespace
}  // namespace ds::audit_test
