// The bytes of an audit record (src/audit/record.h) against its spec, docs/AUDIT_FORMAT.md:
// fields of generic records and what they may hold, keys that are not UTF-8, and the spec's
// worked example verified and written again byte for byte.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <system_error>
#include <vector>

#include "audit/audit_log.h"
#include "audit/hmac_key.h"
#include "audit_fixture.h"
#include "fakes/fakes.h"

namespace ds::audit_test {
namespace {

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
                     RemovalCause::kEvent,
                     "26a7d1d3-8b0e-4f4e-b7a1-3c1d2c7e9f01",
                     "ObjectRemoved:Delete",
                     RemovalOutcome::kRemoved};
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
                     RemovalCause::kErase,
                     "er-0001",
                     "",
                     RemovalOutcome::kAbsent};
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
}  // namespace ds::audit_test
