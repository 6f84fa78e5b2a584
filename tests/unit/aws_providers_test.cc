// The credential sources of aws/providers.h, each against what it reads: loopback servers
// speaking IMDSv2, the container credentials endpoint and STS AssumeRoleWithWebIdentity
// (tests/fakes/aws_protocol_servers.h), shared config/credentials files with profiles, and
// credential_process scripts. Errors are checked for a clear cause and for no secret.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "aws/credentials.h"
#include "aws/providers.h"
#include "fakes/aws_protocol_servers.h"

namespace ds::aws {
namespace {

using testing_aws::ContainerCredentialsServer;
using testing_aws::ImdsServer;
using testing_aws::StsServer;

// A folder removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::mt19937_64 rng(std::random_device{}());
    path_ = std::filesystem::temp_directory_path() /
            ("ds-aws-" + std::to_string(::getpid()) + "-" + std::to_string(rng()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string Write(const std::string& name, const std::string& text, bool executable = false) {
    std::filesystem::path p = path_ / name;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << text;
    if (executable) {
      std::filesystem::permissions(p, std::filesystem::perms::owner_all);
    }
    return p.string();
  }
  std::string path() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

void ExpectNoSecret(const Status& s, const std::string& secret) {
  EXPECT_EQ(s.message().find(secret), std::string::npos) << s.message();
}

// ---- Environment ---------------------------------------------------------------------------

TEST(EnvironmentCredentialsTest, KeysTokenAndWhatIsMissing) {
  EnvironmentCredentials none(Variables{});
  EXPECT_EQ(none.Fetch().status().code(), Code::kNotFound);

  EnvironmentCredentials full(Variables{{"AWS_ACCESS_KEY_ID", "AKIAENV"},
                                        {"AWS_SECRET_ACCESS_KEY", "env-secret"},
                                        {"AWS_SESSION_TOKEN", "env-token"}});
  Result<Credentials> c = full.Fetch();
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->access_key_id, "AKIAENV");
  EXPECT_EQ(c->secret_access_key, "env-secret");
  EXPECT_EQ(c->session_token, "env-token");
  EXPECT_FALSE(c->expiration.has_value());

  EnvironmentCredentials half(Variables{{"AWS_SECRET_ACCESS_KEY", "env-secret"}});
  Status s = half.Fetch().status();
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("AWS_ACCESS_KEY_ID"), std::string::npos) << s.message();
  ExpectNoSecret(s, "env-secret");
}

// ---- IMDSv2 ----------------------------------------------------------------------------------

TEST(InstanceMetadataCredentialsTest, TokenFirstThenRoleThenCredentials) {
  ImdsServer imds("node-role");
  InstanceMetadataCredentials p(Variables{{"AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.url() + "/"}});
  Result<Credentials> c = p.Fetch();
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->access_key_id, "ASIATEST0001");
  EXPECT_EQ(c->secret_access_key, "secret-1-never-logged");
  EXPECT_EQ(c->session_token, "token-1-never-logged");
  ASSERT_TRUE(c->expiration.has_value());
  EXPECT_GT(*c->expiration, std::chrono::system_clock::now() + std::chrono::minutes(50));

  std::vector<httplib::Request> reqs = imds.requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[0].method, "PUT");
  EXPECT_EQ(reqs[0].path, "/latest/api/token");
  EXPECT_EQ(reqs[0].get_header_value("X-aws-ec2-metadata-token-ttl-seconds"), "21600");
  EXPECT_EQ(reqs[1].path, "/latest/meta-data/iam/security-credentials/");
  EXPECT_EQ(reqs[2].path, "/latest/meta-data/iam/security-credentials/node-role");
  for (size_t i = 1; i < reqs.size(); ++i) {
    EXPECT_EQ(reqs[i].get_header_value("X-aws-ec2-metadata-token"), ImdsServer::kToken);
  }
}

TEST(InstanceMetadataCredentialsTest, DisabledNoRoleAndNoServerAreNotFoundAndFast) {
  InstanceMetadataCredentials disabled(
      {{"AWS_EC2_METADATA_DISABLED", "TRUE"}, {"AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://x"}});
  Status s = disabled.Fetch().status();
  EXPECT_EQ(s.code(), Code::kNotFound);
  EXPECT_NE(s.message().find("AWS_EC2_METADATA_DISABLED"), std::string::npos);

  ImdsServer no_role("");
  InstanceMetadataCredentials p(Variables{{"AWS_EC2_METADATA_SERVICE_ENDPOINT", no_role.url()}});
  s = p.Fetch().status();
  EXPECT_EQ(s.code(), Code::kNotFound);
  EXPECT_NE(s.message().find("no IAM role"), std::string::npos) << s.message();

  // Nothing listens there: connection refused, at once.
  int port = 0;
  {
    ImdsServer gone;
    port = gone.port();
  }
  InstanceMetadataCredentials nobody(
      {{"AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:" + std::to_string(port)}});
  auto start = std::chrono::steady_clock::now();
  s = nobody.Fetch().status();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
  EXPECT_EQ(s.code(), Code::kNotFound);
  EXPECT_NE(s.message().find("no instance metadata service answered"), std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("hop limit"), std::string::npos) << s.message();
}

TEST(InstanceMetadataCredentialsTest, SilentEndpointTimesOutInAboutASecond) {
  // A server that answers the token PUT after 1.5 s: the request gives up at its 1 s timeout.
  httplib::Server silent;
  silent.Put("/latest/api/token", [](const httplib::Request&, httplib::Response& res) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    res.set_content("late", "text/plain");
  });
  int port = silent.bind_to_any_port("127.0.0.1");
  std::thread t([&] { silent.listen_after_bind(); });
  while (!silent.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  InstanceMetadataCredentials p(
      {{"AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:" + std::to_string(port)}});
  auto start = std::chrono::steady_clock::now();
  Status s = p.Fetch().status();
  auto took = std::chrono::steady_clock::now() - start;
  silent.stop();
  t.join();
  EXPECT_EQ(s.code(), Code::kNotFound);
  EXPECT_LT(took, std::chrono::milliseconds(2500));
  EXPECT_NE(s.message().find("imed"), std::string::npos) << s.message();  // "Timeout"/"timed"
}

// ---- Container credentials -----------------------------------------------------------------

TEST(ContainerCredentialsTest, FullUriWithAuthorizationFromTheTokenFile) {
  TempDir dir;
  ContainerCredentialsServer server("/v1/credentials", "eks-pod-identity-token");
  // The file wins over the variable; trailing white space is dropped.
  std::string token_file = dir.Write("token", "eks-pod-identity-token\n");
  ContainerCredentials p(
      Variables{{"AWS_CONTAINER_CREDENTIALS_FULL_URI", server.url() + "/v1/credentials"},
                {"AWS_CONTAINER_AUTHORIZATION_TOKEN", "stale-token"},
                {"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", token_file}});
  Result<Credentials> c = p.Fetch();
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->access_key_id, "ASIATEST0001");
  EXPECT_EQ(c->session_token, "token-1-never-logged");
  EXPECT_TRUE(c->expiration.has_value());
  ASSERT_EQ(server.requests().size(), 1u);
  EXPECT_EQ(server.requests()[0].get_header_value("Authorization"), "eks-pod-identity-token");

  // The file is read again at each fetch (EKS rotates it).
  dir.Write("token", "rotated");
  Status s = p.Fetch().status();
  EXPECT_EQ(s.code(), Code::kPermissionDenied);
  EXPECT_NE(s.message().find("HTTP 401"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("Authorization token is invalid"), std::string::npos);
  ExpectNoSecret(s, "rotated");
}

TEST(ContainerCredentialsTest, RelativeUriAndTokenVariable) {
  ContainerCredentialsServer server("/v2/credentials/abc", "ecs-token");
  ContainerCredentials p(
      Variables{{"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/abc"},
                {"AWS_CONTAINER_AUTHORIZATION_TOKEN", "ecs-token"}},
      server.url());
  Result<Credentials> c = p.Fetch();
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->secret_access_key, "secret-1-never-logged");

  EXPECT_EQ(ContainerCredentials(Variables{}).Fetch().status().code(), Code::kNotFound);
}

TEST(ContainerCredentialsTest, FullUriRestrictedAsTheSdksDo) {
  std::string why;
  EXPECT_TRUE(ContainerUriAllowed("http://127.0.0.1:8080/creds", &why)) << why;
  EXPECT_TRUE(ContainerUriAllowed("http://127.5.6.7/creds", &why)) << why;
  EXPECT_TRUE(ContainerUriAllowed("http://[::1]:80/creds", &why)) << why;
  EXPECT_TRUE(ContainerUriAllowed("http://localhost/creds", &why)) << why;
  EXPECT_TRUE(ContainerUriAllowed("http://169.254.170.2/v2/creds", &why)) << why;
  EXPECT_TRUE(ContainerUriAllowed("http://169.254.170.23/v1/credentials", &why)) << why;
  EXPECT_TRUE(ContainerUriAllowed("http://[fd00:ec2::23]/v1/credentials", &why)) << why;
  EXPECT_TRUE(ContainerUriAllowed("https://creds.example.com/x", &why)) << why;
  EXPECT_FALSE(ContainerUriAllowed("http://10.0.0.5/creds", &why));
  EXPECT_NE(why.find("https"), std::string::npos) << why;
  EXPECT_FALSE(ContainerUriAllowed("http://169.254.169.254/creds", &why));
  EXPECT_FALSE(ContainerUriAllowed("ftp://127.0.0.1/creds", &why));
  EXPECT_FALSE(ContainerUriAllowed("http://user:pw@127.0.0.1/creds", &why));

  ContainerCredentials p(
      Variables{{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://10.0.0.5/creds"}});
  Status s = p.Fetch().status();
  EXPECT_EQ(s.code(), Code::kInvalidArgument);  // configured, refused: the chain stops
}

// ---- Web identity (STS) ----------------------------------------------------------------------

constexpr char kJwt[] = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW0ifQ.c2lnbmF0dXJl";

TEST(WebIdentityCredentialsTest, AssumeRoleWithWebIdentityForm) {
  TempDir dir;
  StsServer sts(kJwt);
  std::string token_file = dir.Write("token", std::string(kJwt) + "\n");
  WebIdentityCredentials p(Variables{{"AWS_WEB_IDENTITY_TOKEN_FILE", token_file},
                                     {"AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/ds"},
                                     {"AWS_ROLE_SESSION_NAME", "node-7"},
                                     {"AWS_ENDPOINT_URL_STS", sts.url()}});
  Result<Credentials> c = p.Fetch();
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->access_key_id, "ASIATEST0001");
  EXPECT_EQ(c->secret_access_key, "secret-1-never-logged");
  EXPECT_EQ(c->session_token, "token-1-never-logged");
  ASSERT_TRUE(c->expiration.has_value());

  std::vector<httplib::Request> reqs = sts.requests();
  ASSERT_EQ(reqs.size(), 1u);
  const httplib::Request& r = reqs[0];
  EXPECT_EQ(r.method, "POST");
  EXPECT_NE(r.get_header_value("Content-Type").find("application/x-www-form-urlencoded"),
            std::string::npos);
  EXPECT_EQ(testing_aws::StsField(r, "RoleArn"), "arn:aws:iam::123456789012:role/ds");
  EXPECT_EQ(testing_aws::StsField(r, "RoleSessionName"), "node-7");
  EXPECT_EQ(testing_aws::StsField(r, "WebIdentityToken"), kJwt);
  EXPECT_FALSE(r.has_header("Authorization"));  // unsigned call
}

TEST(WebIdentityCredentialsTest, StsErrorAnswerAndDefaultSessionName) {
  TempDir dir;
  StsServer sts("another-token");
  std::string token_file = dir.Write("token", kJwt);
  WebIdentityCredentials p(Variables{{"AWS_WEB_IDENTITY_TOKEN_FILE", token_file},
                                     {"AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/ds"},
                                     {"AWS_ENDPOINT_URL_STS", sts.url()}});
  Status s = p.Fetch().status();
  EXPECT_EQ(s.code(), Code::kPermissionDenied);
  EXPECT_NE(s.message().find("InvalidIdentityToken"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("Couldn't retrieve verification key"), std::string::npos);
  EXPECT_NE(s.message().find("role/ds"), std::string::npos);
  ExpectNoSecret(s, kJwt);
  ASSERT_EQ(sts.requests().size(), 1u);  // a refusal is not retried
  EXPECT_EQ(testing_aws::StsField(sts.requests()[0], "RoleSessionName").rfind("delete-sync-", 0),
            0u);

  sts.ForceStatus(503);  // retried, then kUnavailable
  s = p.Fetch().status();
  EXPECT_EQ(s.code(), Code::kUnavailable);
  EXPECT_NE(s.message().find("after 3 attempts"), std::string::npos) << s.message();
  EXPECT_EQ(sts.requests().size(), 4u);
}

TEST(WebIdentityCredentialsTest, SettingsAndEndpoints) {
  EXPECT_EQ(WebIdentityCredentials(Variables{}).Fetch().status().code(), Code::kNotFound);
  EXPECT_EQ(WebIdentityCredentials(Variables{{"AWS_ROLE_ARN", "arn:aws:iam::1:role/x"}})
                .Fetch()
                .status()
                .code(),
            Code::kInvalidArgument);
  Status missing =
      WebIdentityCredentials(Variables{{"AWS_ROLE_ARN", "arn:aws:iam::1:role/x"},
                                       {"AWS_WEB_IDENTITY_TOKEN_FILE", "/nonexistent/token"}})
          .Fetch()
          .status();
  EXPECT_EQ(missing.code(), Code::kInvalidArgument);
  EXPECT_NE(missing.message().find("/nonexistent/token"), std::string::npos);

  EXPECT_EQ(WebIdentityCredentials(Variables{{"AWS_REGION", "eu-west-3"}}).endpoint(),
            "https://sts.eu-west-3.amazonaws.com");
  EXPECT_EQ(WebIdentityCredentials(Variables{{"AWS_DEFAULT_REGION", "cn-north-1"}}).endpoint(),
            "https://sts.cn-north-1.amazonaws.com.cn");
  EXPECT_EQ(WebIdentityCredentials(Variables{}).endpoint(), "https://sts.amazonaws.com");
  EXPECT_EQ(WebIdentityCredentials(Variables{{"AWS_REGION", "eu-west-3"},
                                             {"AWS_ENDPOINT_URL_STS", "http://127.0.0.1:1/"}})
                .endpoint(),
            "http://127.0.0.1:1");
}

TEST(WebIdentityCredentialsTest, ParsesTheDocumentedAnswers) {
  Result<Credentials> bad = ParseAssumeRoleWithWebIdentity(200, "<x><Credentials/></x>");
  EXPECT_EQ(bad.status().code(), Code::kInvalidArgument);
  Result<Credentials> throttled = ParseAssumeRoleWithWebIdentity(
      400, StsServer::ErrorXml("IDPCommunicationError", "the IdP did not answer"));
  EXPECT_EQ(throttled.status().code(), Code::kUnavailable);
  Result<Credentials> garbage = ParseAssumeRoleWithWebIdentity(500, "<html>oops");
  EXPECT_EQ(garbage.status().code(), Code::kUnavailable);
  EXPECT_NE(garbage.status().message().find("HTTP 500"), std::string::npos);
}

// ---- Shared files and credential_process -----------------------------------------------------

TEST(ProfileCredentialsTest, ProfilesOfBothFilesCredentialsFileWins) {
  TempDir dir;
  dir.Write(".aws/config",
            "# comment\n[default]\nregion = eu-west-3\n"
            "[profile train]\naws_access_key_id = AKIACONFIG\naws_secret_access_key = cfg-secret\n"
            "s3 =\n  max_concurrent_requests = 20\n"
            "[sso-session corp]\nsso_region = eu-west-1\n");
  dir.Write(".aws/credentials",
            "[train]\naws_secret_access_key = cred-secret\naws_session_token = cred-token\n"
            "; comment\n[other]\naws_access_key_id=AKIAOTHER\naws_secret_access_key=o\n");
  Variables vars = {{"HOME", dir.path()}, {"AWS_PROFILE", "train"}};
  Result<Credentials> c = ProfileCredentials(vars).Fetch();
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->access_key_id, "AKIACONFIG");
  EXPECT_EQ(c->secret_access_key, "cred-secret");
  EXPECT_EQ(c->session_token, "cred-token");
  EXPECT_EQ(ProfileCredentials(vars).Name(), "profile 'train'");

  vars["AWS_PROFILE"] = "other";
  c = ProfileCredentials(vars).Fetch();
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->access_key_id, "AKIAOTHER");

  // The default profile has only a region: not a source, the chain moves on.
  vars.erase("AWS_PROFILE");
  Status s = ProfileCredentials(vars).Fetch().status();
  EXPECT_EQ(s.code(), Code::kNotFound);
  EXPECT_NE(s.message().find("has no credentials"), std::string::npos) << s.message();

  // A profile named by AWS_PROFILE must exist.
  vars["AWS_PROFILE"] = "missing";
  s = ProfileCredentials(vars).Fetch().status();
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("no profile 'missing'"), std::string::npos) << s.message();
}

TEST(ProfileCredentialsTest, ExplicitFilesNoFilesAndUnsupportedSettings) {
  TempDir dir;
  std::string creds = dir.Write("c.ini",
                                "[default]\naws_access_key_id = AKIAFILE\n"
                                "aws_secret_access_key = file-secret\n");
  Result<Credentials> c = ProfileCredentials(Variables{{"AWS_SHARED_CREDENTIALS_FILE", creds},
                                                       {"AWS_CONFIG_FILE", dir.path() + "/none"}})
                              .Fetch();
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->access_key_id, "AKIAFILE");

  Status none = ProfileCredentials(Variables{{"HOME", dir.path()}}).Fetch().status();
  EXPECT_EQ(none.code(), Code::kNotFound);
  EXPECT_NE(none.message().find("no shared config or credentials file"), std::string::npos)
      << none.message();

  std::string cfg = dir.Write("cfg",
                              "[profile assume]\nrole_arn = arn:aws:iam::1:role/r\n"
                              "source_profile = default\n");
  Status assume =
      ProfileCredentials(
          Variables{{"AWS_CONFIG_FILE", cfg}, {"AWS_PROFILE", "assume"}, {"HOME", "/x"}})
          .Fetch()
          .status();
  EXPECT_EQ(assume.code(), Code::kInvalidArgument);
  EXPECT_NE(assume.message().find("role_arn"), std::string::npos) << assume.message();
  EXPECT_NE(assume.message().find("credential_process"), std::string::npos) << assume.message();
}

TEST(ProfileCredentialsTest, CredentialProcessScript) {
  TempDir dir;
  std::string script = dir.Write("creds.sh",
                                 "#!/bin/sh\n"
                                 "echo '{\"Version\": 1, \"AccessKeyId\": \"ASIAPROC\", "
                                 "\"SecretAccessKey\": \"proc-secret\", \"SessionToken\": "
                                 "\"proc-token\", \"Expiration\": \"2099-01-02T03:04:05Z\"}'\n",
                                 true);
  std::string cfg =
      dir.Write("config", "[profile proc]\ncredential_process = " + script + " --role 'a b'\n");
  ProfileCredentials p(
      Variables{{"AWS_CONFIG_FILE", cfg}, {"AWS_PROFILE", "proc"}, {"HOME", dir.path()}});
  Result<Credentials> c = p.Fetch();
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->access_key_id, "ASIAPROC");
  EXPECT_EQ(c->secret_access_key, "proc-secret");
  EXPECT_EQ(c->session_token, "proc-token");
  ASSERT_TRUE(c->expiration.has_value());
  EXPECT_EQ(FormatIso8601(*c->expiration), "2099-01-02T03:04:05Z");
}

TEST(ProfileCredentialsTest, CredentialProcessFailures) {
  TempDir dir;
  std::string failing = dir.Write(
      "fail.sh", "#!/bin/sh\necho 'token expired, run aws sso login' >&2\nexit 3\n", true);
  Status s =
      RunCredentialProcess(failing + " --secret-arg hunter2", std::chrono::seconds(5)).status();
  EXPECT_EQ(s.code(), Code::kUnavailable);
  EXPECT_NE(s.message().find("exited with status 3"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("run aws sso login"), std::string::npos) << s.message();
  ExpectNoSecret(s, "hunter2");  // the program is named, not its arguments

  std::string v2 = dir.Write(
      "v2.sh",
      "#!/bin/sh\necho '{\"Version\": 2, \"AccessKeyId\": \"A\", \"SecretAccessKey\": \"S\"}'\n",
      true);
  s = RunCredentialProcess(v2, std::chrono::seconds(5)).status();
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("Version"), std::string::npos) << s.message();

  std::string notjson = dir.Write("nj.sh", "#!/bin/sh\necho hello\n", true);
  EXPECT_EQ(RunCredentialProcess(notjson, std::chrono::seconds(5)).status().code(),
            Code::kInvalidArgument);

  std::string slow = dir.Write("slow.sh", "#!/bin/sh\nsleep 30\n", true);
  auto start = std::chrono::steady_clock::now();
  s = RunCredentialProcess(slow, std::chrono::milliseconds(300)).status();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(s.code(), Code::kUnavailable);
  EXPECT_NE(s.message().find("timed out"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace ds::aws
