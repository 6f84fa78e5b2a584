// Shared by the audit log's tests (audit_*_test.cc): the AuditChainTest fixture (a log in a
// fresh temporary folder, a fake clock, verification expected to pass or to fail) and helpers
// that read and rewrite the log's files behind its back. In a named namespace, not an anonymous
// one: every test of the suite AuditChainTest must share one fixture class.
#pragma once

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "audit/audit_log.h"
#include "fakes/fakes.h"
#include "fakes/test_files.h"

namespace ds::audit_test {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

inline const std::string kZeros(64, '0');
inline const std::string kDataDir = DS_TEST_DATA_DIR "/audit";

using testfiles::ReadFile;
using testfiles::WriteFile;

// The lines of a file without their newlines (a last line without newline is kept).
inline std::vector<std::string> ReadLines(const std::string& path) {
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

inline void WriteLines(const std::string& path, const std::vector<std::string>& lines) {
  std::string content;
  for (const std::string& l : lines) content += l + "\n";
  WriteFile(path, content);
}

inline std::string Sha256Hex(const std::string& data) {
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

inline RemovalRecord Removal(int i) {
  RemovalRecord r;
  r.bucket = "training-data";
  r.key = "people/p" + std::to_string(i) + "/photo.jpg";
  r.version_id = i % 2 ? "v" + std::to_string(i) : "";
  r.etag = "\"etag" + std::to_string(i) + "\"";
  r.size = i % 3 ? 1000 + i : -1;
  r.cause = RemovalCause::kEvent;
  r.event_id = "event-" + std::to_string(i);
  r.event_name = "ObjectRemoved:Delete";
  r.outcome = i % 4 ? RemovalOutcome::kRemoved : RemovalOutcome::kAbsent;
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

}  // namespace ds::audit_test
