// Credentials obtained through the standard chain (aws/credentials.h), used against the real
// local Ceph RGW (scripts/rgw-local.sh start): the lab's keys handed out by a loopback IMDSv2
// server and by a credential_process script, then a bucket created, an object PUT, read back
// and listed through S3Config::FromVariables, as `serve` builds its store. And what RGW does
// with a session token it did not issue: it ignores it (see the last test).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>

#include "fakes/aws_protocol_servers.h"
#include "integration/rgw_env.h"
#include "s3/client.h"

namespace ds {
namespace {

using testing_aws::ImdsServer;

class ChainAgainstRgwTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ifstream in(testenv::RgwEnvFile());
    ASSERT_TRUE(in) << "RGW env file " << testenv::RgwEnvFile()
                    << " not found: run `scripts/rgw-local.sh start` first";
    std::stringstream text;
    text << in.rdbuf();
    lab_ = testenv::ParseEnvExports(text.str());
    ASSERT_FALSE(lab_["AWS_ACCESS_KEY_ID"].empty());
    ASSERT_FALSE(lab_["AWS_SECRET_ACCESS_KEY"].empty());
    std::mt19937_64 rng(std::random_device{}());
    dir_ = std::filesystem::temp_directory_path() /
           ("ds-chain-rgw-" + std::to_string(::getpid()) + "-" + std::to_string(rng()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // The lab's settings without its keys, and nothing of this machine's chain: the keys must
  // come from the source under test.
  std::map<std::string, std::string> ChainVars() const {
    std::map<std::string, std::string> vars = lab_;
    vars.erase("AWS_ACCESS_KEY_ID");
    vars.erase("AWS_SECRET_ACCESS_KEY");
    vars.erase("AWS_SESSION_TOKEN");
    vars["HOME"] = dir_.string();
    vars["AWS_EC2_METADATA_DISABLED"] = "true";
    return vars;
  }

  // PUT, GET, LIST in a new bucket with `client`; "" when all worked, else what failed.
  static std::string PutGetList(S3Client& client) {
    Result<std::string> bucket = testenv::CreateUniqueBucket(client, "chain");
    if (!bucket.ok()) return "CreateBucket: " + bucket.status().ToString();
    std::string failure;
    Status put = client.PutObject(*bucket, "dir/obj.txt", "through the chain");
    if (!put.ok()) failure = "PutObject: " + put.ToString();
    std::string body;
    if (failure.empty()) {
      Result<ObjectInfo> got =
          client.GetObject(*bucket, "dir/obj.txt", "", [&](const char* d, size_t n) {
            body.append(d, n);
            return Status::Ok();
          });
      if (!got.ok()) failure = "GetObject: " + got.status().ToString();
      if (failure.empty() && body != "through the chain") failure = "GetObject body: " + body;
    }
    if (failure.empty()) {
      std::vector<std::string> keys;
      Status list = client.ListObjects(*bucket, "", [&](const ObjectInfo& o) {
        keys.push_back(o.key);
        return true;
      });
      if (!list.ok()) failure = "ListObjects: " + list.ToString();
      if (failure.empty() && keys != std::vector<std::string>{"dir/obj.txt"}) {
        failure = "ListObjects: " + std::to_string(keys.size()) + " keys";
      }
    }
    Status cleanup = testenv::EmptyAndDeleteBucket(client, *bucket);
    if (failure.empty() && !cleanup.ok()) failure = "cleanup: " + cleanup.ToString();
    return failure;
  }

  std::map<std::string, std::string> lab_;
  std::filesystem::path dir_;
};

TEST_F(ChainAgainstRgwTest, KeysFromImdsV2PutGetList) {
  ImdsServer imds("rgw-lab-role");
  imds.SetFixed({lab_["AWS_ACCESS_KEY_ID"], lab_["AWS_SECRET_ACCESS_KEY"], "",
                 testing_aws::Iso8601(std::chrono::system_clock::now() + std::chrono::hours(6))});
  std::map<std::string, std::string> vars = ChainVars();
  vars.erase("AWS_EC2_METADATA_DISABLED");
  vars["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = imds.url();
  Result<S3Config> cfg = S3Config::FromVariables(vars);
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  ASSERT_NE(cfg->credentials, nullptr);
  EXPECT_EQ(cfg->credentials->SourceName(), "EC2 instance metadata");
  S3Client client(*cfg);
  EXPECT_EQ(PutGetList(client), "");
  EXPECT_EQ(imds.issued(), 1);  // one fetch, reused by every request
}

TEST_F(ChainAgainstRgwTest, KeysFromCredentialProcessPutGetList) {
  std::string script = (dir_ / "rgw-creds.sh").string();
  std::ofstream(script) << "#!/bin/sh\nprintf '{\"Version\": 1, \"AccessKeyId\": \"%s\", "
                           "\"SecretAccessKey\": \"%s\"}' \"$1\" \"$2\"\n";
  std::filesystem::permissions(script, std::filesystem::perms::owner_all);
  std::string config = (dir_ / "config").string();
  std::ofstream(config) << "[profile rgw]\ncredential_process = " << script << " "
                        << lab_["AWS_ACCESS_KEY_ID"] << " " << lab_["AWS_SECRET_ACCESS_KEY"]
                        << "\n";
  std::map<std::string, std::string> vars = ChainVars();
  vars["AWS_CONFIG_FILE"] = config;
  vars["AWS_PROFILE"] = "rgw";
  Result<S3Config> cfg = S3Config::FromVariables(vars);
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  ASSERT_NE(cfg->credentials, nullptr);
  EXPECT_EQ(cfg->credentials->SourceName(), "profile 'rgw'");
  S3Client client(*cfg);
  EXPECT_EQ(PutGetList(client), "");
}

// RGW and a session token it did not issue: the lab's long-term keys, plus an
// x-amz-security-token that no STS of this RGW made (what IMDS or a container endpoint adds on
// AWS). Ceph 16.2 (pacific) ignores it: the access key is a local user's, RGW's local
// authentication accepts the signature (the token header is signed like any other) and never
// looks at the token, so the requests succeed. (An access key RGW does not know is refused
// with InvalidAccessKeyId, token or not.) So against RGW the chain's temporary credentials work
// only when their key is an RGW user's, or when RGW's own STS issued them.
TEST_F(ChainAgainstRgwTest, RgwIgnoresASessionTokenItDidNotIssue) {
  ImdsServer imds("rgw-lab-role");
  imds.SetFixed({lab_["AWS_ACCESS_KEY_ID"], lab_["AWS_SECRET_ACCESS_KEY"],
                 "FwoGZXIvYXdzEForeignSessionTokenNotIssuedByThisRgw",
                 testing_aws::Iso8601(std::chrono::system_clock::now() + std::chrono::hours(6))});
  std::map<std::string, std::string> vars = ChainVars();
  vars.erase("AWS_EC2_METADATA_DISABLED");
  vars["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = imds.url();
  Result<S3Config> cfg = S3Config::FromVariables(vars);
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  S3Client client(*cfg);
  EXPECT_EQ(PutGetList(client), "");

  // The same token with a key RGW does not know: refused, and the message holds no secret.
  imds.SetFixed({"AKIANOTANRGWUSER0000", lab_["AWS_SECRET_ACCESS_KEY"],
                 "FwoGZXIvYXdzEForeignSessionTokenNotIssuedByThisRgw",
                 testing_aws::Iso8601(std::chrono::system_clock::now() + std::chrono::hours(6))});
  vars["AWS_MAX_ATTEMPTS"] = "1";
  Result<S3Config> unknown = S3Config::FromVariables(vars);
  ASSERT_TRUE(unknown.ok()) << unknown.status().ToString();
  S3Client refused(*unknown);
  Status s = refused.CreateBucket(testenv::UniqueBucketName("foreign-token"));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Code::kPermissionDenied) << s.ToString();
  EXPECT_NE(s.message().find("InvalidAccessKeyId"), std::string::npos) << s.message();
  EXPECT_EQ(s.message().find("ForeignSessionToken"), std::string::npos) << s.message();
  EXPECT_EQ(s.message().find(lab_["AWS_SECRET_ACCESS_KEY"]), std::string::npos);
}

}  // namespace
}  // namespace ds
