// Reading an audit log's HMAC key file (src/audit/hmac_key.h): trailing newlines removed, binary
// keys kept byte for byte, empty, missing and non-regular files refused.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <string>

#include "audit/hmac_key.h"
#include "audit_fixture.h"
#include "common/status.h"

namespace ds::audit_test {
namespace {

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

}  // namespace
}  // namespace ds::audit_test
