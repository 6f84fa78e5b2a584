// S3Config from the environment, Describe(), and request URLs (no network).
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <optional>
#include <string>

#include "s3/client.h"

namespace ds {
namespace {

constexpr const char* kVars[] = {
    "AWS_ACCESS_KEY_ID",  "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION",
    "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL_S3",   "AWS_ENDPOINT_URL",  "AWS_S3_ADDRESSING_STYLE",
    "AWS_CA_BUNDLE",      "AWS_MAX_ATTEMPTS",
};

// Clears the AWS variables for the test and restores them afterwards.
class ScopedAwsEnv {
 public:
  ScopedAwsEnv() {
    for (const char* name : kVars) {
      if (const char* v = std::getenv(name)) saved_[name] = v;
      unsetenv(name);
    }
  }
  ~ScopedAwsEnv() {
    for (const char* name : kVars) {
      auto it = saved_.find(name);
      if (it == saved_.end()) {
        unsetenv(name);
      } else {
        setenv(name, it->second.c_str(), 1);
      }
    }
  }
  void Set(const char* name, const char* value) { setenv(name, value, 1); }

 private:
  std::map<std::string, std::string> saved_;
};

constexpr char kKeyId[] = "AKIAEXAMPLEKEYID1234";
constexpr char kSecret[] = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY";
constexpr char kToken[] = "FwoGZXIvYXdzEXAMPLETOKENvalue+/==";

TEST(S3ConfigTest, MissingAccessKeyNamesTheVariable) {
  ScopedAwsEnv env;
  env.Set("AWS_SECRET_ACCESS_KEY", kSecret);
  Result<S3Config> c = S3Config::FromEnvironment();
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Code::kInvalidArgument);
  EXPECT_NE(c.status().message().find("AWS_ACCESS_KEY_ID"), std::string::npos);
  EXPECT_EQ(c.status().message().find(kSecret), std::string::npos);
}

TEST(S3ConfigTest, MissingSecretNamesTheVariable) {
  ScopedAwsEnv env;
  env.Set("AWS_ACCESS_KEY_ID", kKeyId);
  env.Set("AWS_SECRET_ACCESS_KEY", "");  // empty counts as unset
  Result<S3Config> c = S3Config::FromEnvironment();
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Code::kInvalidArgument);
  EXPECT_NE(c.status().message().find("AWS_SECRET_ACCESS_KEY"), std::string::npos);
}

TEST(S3ConfigTest, DefaultsToAwsInUsEast1) {
  ScopedAwsEnv env;
  env.Set("AWS_ACCESS_KEY_ID", kKeyId);
  env.Set("AWS_SECRET_ACCESS_KEY", kSecret);
  Result<S3Config> c = S3Config::FromEnvironment();
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->access_key_id, kKeyId);
  EXPECT_EQ(c->secret_access_key, kSecret);
  EXPECT_EQ(c->session_token, "");
  EXPECT_EQ(c->region, "us-east-1");
  EXPECT_EQ(c->endpoint, "https://s3.us-east-1.amazonaws.com");
  EXPECT_EQ(c->addressing, S3Config::Addressing::kAuto);
  EXPECT_EQ(c->max_attempts, 5);
  EXPECT_FALSE(c->UsesPathStyle("my-bucket"));          // virtual-hosted on AWS
  EXPECT_TRUE(c->UsesPathStyle("My_Bucket"));           // not a DNS label
  EXPECT_TRUE(c->UsesPathStyle("dotted.bucket.name"));  // wildcard certificate
}

TEST(S3ConfigTest, RegionFallbacks) {
  ScopedAwsEnv env;
  env.Set("AWS_ACCESS_KEY_ID", kKeyId);
  env.Set("AWS_SECRET_ACCESS_KEY", kSecret);
  env.Set("AWS_DEFAULT_REGION", "eu-west-3");
  Result<S3Config> c = S3Config::FromEnvironment();
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->region, "eu-west-3");
  EXPECT_EQ(c->endpoint, "https://s3.eu-west-3.amazonaws.com");
  env.Set("AWS_REGION", "ap-south-1");
  c = S3Config::FromEnvironment();
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->region, "ap-south-1");
}

TEST(S3ConfigTest, EndpointPrecedence) {
  ScopedAwsEnv env;
  env.Set("AWS_ACCESS_KEY_ID", kKeyId);
  env.Set("AWS_SECRET_ACCESS_KEY", kSecret);
  env.Set("AWS_ENDPOINT_URL", "http://generic.example:9000");
  Result<S3Config> c = S3Config::FromEnvironment();
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->endpoint, "http://generic.example:9000");

  env.Set("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:17480/");
  c = S3Config::FromEnvironment();
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->endpoint, "http://127.0.0.1:17480");  // S3-specific wins, trailing '/' dropped
  EXPECT_TRUE(c->UsesPathStyle("my-bucket"));        // auto: path-style off AWS
}

TEST(S3ConfigTest, AddressingStyleAndOtherKnobs) {
  ScopedAwsEnv env;
  env.Set("AWS_ACCESS_KEY_ID", kKeyId);
  env.Set("AWS_SECRET_ACCESS_KEY", kSecret);
  env.Set("AWS_S3_ADDRESSING_STYLE", "path");
  env.Set("AWS_MAX_ATTEMPTS", "3");
  env.Set("AWS_CA_BUNDLE", "/etc/ssl/my-ca.pem");
  env.Set("AWS_SESSION_TOKEN", kToken);
  Result<S3Config> c = S3Config::FromEnvironment();
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->addressing, S3Config::Addressing::kPath);
  EXPECT_TRUE(c->UsesPathStyle("my-bucket"));
  EXPECT_EQ(c->max_attempts, 3);
  EXPECT_EQ(c->ca_bundle, "/etc/ssl/my-ca.pem");
  EXPECT_EQ(c->session_token, kToken);

  env.Set("AWS_S3_ADDRESSING_STYLE", "Virtual");
  env.Set("AWS_ENDPOINT_URL_S3", "http://minio.local:9000");
  c = S3Config::FromEnvironment();
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->addressing, S3Config::Addressing::kVirtual);
  EXPECT_FALSE(c->UsesPathStyle("my-bucket"));

  env.Set("AWS_S3_ADDRESSING_STYLE", "dns");
  c = S3Config::FromEnvironment();
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("AWS_S3_ADDRESSING_STYLE"), std::string::npos);

  env.Set("AWS_S3_ADDRESSING_STYLE", "auto");
  env.Set("AWS_MAX_ATTEMPTS", "zero");
  c = S3Config::FromEnvironment();
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("AWS_MAX_ATTEMPTS"), std::string::npos);
}

TEST(S3ConfigTest, BadEndpoints) {
  std::map<std::string, std::string> vars = {{"AWS_ACCESS_KEY_ID", kKeyId},
                                             {"AWS_SECRET_ACCESS_KEY", kSecret}};
  vars["AWS_ENDPOINT_URL_S3"] = "127.0.0.1:17480";
  EXPECT_EQ(S3Config::FromVariables(vars).status().code(), Code::kInvalidArgument);
  vars["AWS_ENDPOINT_URL_S3"] = "ftp://host";
  EXPECT_EQ(S3Config::FromVariables(vars).status().code(), Code::kInvalidArgument);
  vars["AWS_ENDPOINT_URL_S3"] = "http://host:9000/some/path";
  EXPECT_EQ(S3Config::FromVariables(vars).status().code(), Code::kInvalidArgument);
  vars["AWS_ENDPOINT_URL_S3"] = "http://admin:hunter2@host:9000";
  Result<S3Config> c = S3Config::FromVariables(vars);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message().find("hunter2"), std::string::npos) << c.status().message();
  vars["AWS_ENDPOINT_URL_S3"] = "HTTPS://[::1]:8443";
  EXPECT_TRUE(S3Config::FromVariables(vars).ok());
}

TEST(S3ConfigTest, DescribeNeverShowsSecrets) {
  std::map<std::string, std::string> vars = {{"AWS_ACCESS_KEY_ID", kKeyId},
                                             {"AWS_SECRET_ACCESS_KEY", kSecret},
                                             {"AWS_SESSION_TOKEN", kToken},
                                             {"AWS_ENDPOINT_URL_S3", "http://127.0.0.1:17480"},
                                             {"AWS_REGION", "us-east-1"}};
  Result<S3Config> c = S3Config::FromVariables(vars);
  ASSERT_TRUE(c.ok());
  std::string d = c->Describe();
  EXPECT_EQ(d.find(kSecret), std::string::npos) << d;
  EXPECT_EQ(d.find(kToken), std::string::npos) << d;
  EXPECT_EQ(d.find(kKeyId), std::string::npos) << d;  // masked
  EXPECT_NE(d.find("AKIA\u2026"), std::string::npos) << d;
  EXPECT_NE(d.find("http://127.0.0.1:17480"), std::string::npos) << d;
  EXPECT_NE(d.find("us-east-1"), std::string::npos) << d;
  EXPECT_NE(d.find("path"), std::string::npos) << d;
  EXPECT_NE(d.find("session_token=set"), std::string::npos) << d;

  S3Config with_password = *c;
  with_password.endpoint = "http://admin:hunter2@127.0.0.1:17480";
  EXPECT_EQ(with_password.Describe().find("hunter2"), std::string::npos);
  EXPECT_NE(with_password.Describe().find("http://***@127.0.0.1:17480"), std::string::npos)
      << with_password.Describe();
  EXPECT_EQ(with_password.Validate().message().find("hunter2"), std::string::npos);
  with_password.endpoint = "admin:hunter2@127.0.0.1:17480";
  EXPECT_EQ(with_password.Validate().message().find("hunter2"), std::string::npos);

  S3Config shortkey = *c;
  shortkey.access_key_id = "abc";
  EXPECT_EQ(shortkey.Describe().find("abc"), std::string::npos);
}

TEST(S3RequestUrlTest, PathStyleEncodesKeys) {
  S3Config c;
  c.endpoint = "http://127.0.0.1:17480";
  c.access_key_id = kKeyId;
  c.secret_access_key = kSecret;
  EXPECT_EQ(BuildRequestUrl(c, "bkt", "dir/a b+c%d?e#f&g=h \xC3\xA9", ""),
            "http://127.0.0.1:17480/bkt/dir/a%20b%2Bc%25d%3Fe%23f%26g%3Dh%20%C3%A9");
  EXPECT_EQ(BuildRequestUrl(c, "bkt", "", "delete="), "http://127.0.0.1:17480/bkt?delete=");
  EXPECT_EQ(BuildRequestUrl(c, "bkt", "/lead//x/", "versionId=v%2B1"),
            "http://127.0.0.1:17480/bkt//lead//x/?versionId=v%2B1");
}

TEST(S3RequestUrlTest, VirtualHostedOnAws) {
  S3Config c;
  c.endpoint = "https://s3.eu-west-3.amazonaws.com";
  c.region = "eu-west-3";
  c.access_key_id = kKeyId;
  c.secret_access_key = kSecret;
  EXPECT_EQ(BuildRequestUrl(c, "my-bucket", "a b", ""),
            "https://my-bucket.s3.eu-west-3.amazonaws.com/a%20b");
  EXPECT_EQ(BuildRequestUrl(c, "my-bucket", "", "list-type=2"),
            "https://my-bucket.s3.eu-west-3.amazonaws.com/?list-type=2");
  EXPECT_EQ(BuildRequestUrl(c, "my.dotted.bucket", "k", ""),
            "https://s3.eu-west-3.amazonaws.com/my.dotted.bucket/k");
  c.addressing = S3Config::Addressing::kPath;
  EXPECT_EQ(BuildRequestUrl(c, "my-bucket", "k", ""),
            "https://s3.eu-west-3.amazonaws.com/my-bucket/k");
}

TEST(S3ClientTest, InvalidConfigFailsEveryCallWithoutNetwork) {
  S3Config c;  // no endpoint, no credentials
  S3Client client(c);
  Result<ObjectInfo> r = client.HeadObject("b", "k", "");
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(client.ListObjects("b", "", [](const ObjectInfo&) { return true; }).code(),
            Code::kInvalidArgument);
}

TEST(S3ClientTest, RejectsEmptyNames) {
  S3Config c;
  c.endpoint = "http://127.0.0.1:1";
  c.access_key_id = kKeyId;
  c.secret_access_key = kSecret;
  S3Client client(c);
  EXPECT_EQ(client.HeadObject("b", "", "").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(client.HeadObject("", "k", "").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(client.PutObject("b/c", "k", "x").code(), Code::kInvalidArgument);
  // curl signs headers sorted by "name:value", SigV4 by name: such a pair cannot be signed.
  Status clash = client.PutObject("b", "k", "x", {{"a", "1"}, {"a-b", "2"}});
  EXPECT_EQ(clash.code(), Code::kInvalidArgument) << clash.ToString();
  EXPECT_TRUE(client.PutObject("b", "k", "x", {{"x-amz-meta-a\r\nInjected: yes", "1"}}).code() ==
              Code::kInvalidArgument);
  Result<std::vector<DeleteOutcome>> none = client.DeleteObjects("b", {});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

}  // namespace
}  // namespace ds
