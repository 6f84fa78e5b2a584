// The credential chain (aws/credentials.h): precedence of the real sources, the error that
// names every source tried, expiry and refresh of short-lived credentials (a refresh before
// expiry that callers do not wait for; a wait only once they expired), and the S3 client
// signing each request with the chain's current credentials. The sources are the real
// providers against loopback protocol servers (tests/fakes/aws_protocol_servers.h).
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "aws/credentials.h"
#include "aws/providers.h"
#include "fakes/aws_protocol_servers.h"
#include "s3/client.h"

namespace ds::aws {
namespace {

using testing_aws::ContainerCredentialsServer;
using testing_aws::ImdsServer;
using testing_aws::StsServer;

class ChainDir {
 public:
  ChainDir() {
    std::mt19937_64 rng(std::random_device{}());
    path_ = std::filesystem::temp_directory_path() /
            ("ds-chain-" + std::to_string(::getpid()) + "-" + std::to_string(rng()));
    std::filesystem::create_directories(path_);
  }
  ~ChainDir() { std::filesystem::remove_all(path_); }
  std::string Write(const std::string& name, const std::string& text) {
    std::filesystem::path p = path_ / name;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << text;
    return p.string();
  }
  std::string path() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

// Routes spdlog's default logger into a string while alive.
class CredentialLogCapture {
 public:
  CredentialLogCapture() : saved_(spdlog::default_logger()) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out_);
    auto logger = std::make_shared<spdlog::logger>("capture", sink);
    logger->set_level(spdlog::level::debug);
    logger->set_pattern("%l %v");
    spdlog::set_default_logger(logger);
  }
  ~CredentialLogCapture() { spdlog::set_default_logger(saved_); }
  std::string text() const { return out_.str(); }

 private:
  std::shared_ptr<spdlog::logger> saved_;
  std::ostringstream out_;
};

// Variables that keep the chain away from this machine's ~/.aws and IMDS.
Variables Hermetic(const ChainDir& dir) {
  return {{"HOME", dir.path()}, {"AWS_EC2_METADATA_DISABLED", "true"}};
}

TEST(CredentialChainTest, Iso8601) {
  Result<std::chrono::system_clock::time_point> t = ParseIso8601("2026-12-08T03:04:05Z", "x");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(FormatIso8601(*t), "2026-12-08T03:04:05Z");
  EXPECT_EQ(std::chrono::system_clock::to_time_t(*t), 1796699045);
  t = ParseIso8601("2026-12-08T03:04:05.123Z", "x");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(FormatIso8601(*t), "2026-12-08T03:04:05Z");
  EXPECT_TRUE(ParseIso8601("2026-12-08T03:04:05+00:00", "x").ok());
  EXPECT_FALSE(ParseIso8601("2026-12-08 03:04:05", "x").ok());
  EXPECT_FALSE(ParseIso8601("2026-12-08T03:04:05+02:00", "x").ok());
  EXPECT_FALSE(ParseIso8601("tomorrow", "Expiration").ok());
  EXPECT_NE(ParseIso8601("tomorrow", "Expiration").status().message().find("Expiration"),
            std::string::npos);
}

TEST(CredentialChainTest, OrderEnvironmentWebIdentityProfileContainerImds) {
  ChainDir dir;
  ImdsServer imds;
  imds.SetFixed({"AKIAIMDS", "imds-secret", "imds-token", ""});
  ContainerCredentialsServer container("/creds", "");
  container.SetFixed({"AKIACONTAINER", "container-secret", "container-token", ""});
  StsServer sts("jwt");
  sts.SetFixed({"AKIASTS", "sts-secret", "sts-token", "2099-01-01T00:00:00Z"});
  dir.Write(".aws/credentials",
            "[default]\naws_access_key_id = AKIAPROFILE\n"
            "aws_secret_access_key = profile-secret\n");
  std::string jwt = dir.Write("jwt", "jwt");

  Variables vars = {{"HOME", dir.path()},
                    {"AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.url()},
                    {"AWS_CONTAINER_CREDENTIALS_FULL_URI", container.url() + "/creds"},
                    {"AWS_WEB_IDENTITY_TOKEN_FILE", jwt},
                    {"AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/ds"},
                    {"AWS_ENDPOINT_URL_STS", sts.url()},
                    {"AWS_ACCESS_KEY_ID", "AKIAENV"},
                    {"AWS_SECRET_ACCESS_KEY", "env-secret"}};
  auto first_key = [&]() -> std::string {
    Result<std::shared_ptr<RefreshingCredentials>> r =
        ResolveCredentials(DefaultCredentialsChain(vars));
    if (!r.ok()) return "error: " + r.status().ToString();
    Result<Credentials> c = (*r)->Get();
    return c.ok() ? c->access_key_id + " from " + (*r)->SourceName() : c.status().ToString();
  };
  EXPECT_EQ(first_key(), "AKIAENV from environment");
  vars.erase("AWS_ACCESS_KEY_ID");
  vars.erase("AWS_SECRET_ACCESS_KEY");
  EXPECT_EQ(first_key(), "AKIASTS from web identity");
  vars.erase("AWS_ROLE_ARN");
  vars.erase("AWS_WEB_IDENTITY_TOKEN_FILE");
  EXPECT_EQ(first_key(), "AKIAPROFILE from profile 'default'");
  std::filesystem::remove(dir.path() + "/.aws/credentials");
  EXPECT_EQ(first_key(), "AKIACONTAINER from container credentials");
  vars.erase("AWS_CONTAINER_CREDENTIALS_FULL_URI");
  EXPECT_EQ(first_key(), "AKIAIMDS from EC2 instance metadata");
  EXPECT_EQ(imds.issued(), 1);  // asked only once nothing before it had credentials
  EXPECT_EQ(container.issued(), 1);
  EXPECT_EQ(sts.issued(), 1);
}

TEST(CredentialChainTest, NoSourceNamesEverySourceAndWhy) {
  ChainDir dir;
  Result<std::shared_ptr<RefreshingCredentials>> r =
      ResolveCredentials(DefaultCredentialsChain(Hermetic(dir)));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kNotFound);
  const std::string& m = r.status().message();
  for (const char* expected :
       {"no AWS credentials found", "environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
        "web identity (AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN are not set)",
        "profile 'default' (no shared config or credentials file",
        "container credentials (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "EC2 instance metadata (AWS_EC2_METADATA_DISABLED=true)"}) {
    EXPECT_NE(m.find(expected), std::string::npos) << expected << "\n in: " << m;
  }

  // Through S3Config: a usage error with the same list.
  std::map<std::string, std::string> vars = Hermetic(dir);
  Result<S3Config> c = S3Config::FromVariables(vars);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Code::kInvalidArgument);
  EXPECT_NE(c.status().message().find("EC2 instance metadata"), std::string::npos);
}

TEST(CredentialChainTest, AConfiguredSourceThatFailsStopsTheChain) {
  ChainDir dir;
  ImdsServer imds;
  StsServer sts("the-right-jwt");
  std::string jwt = dir.Write("jwt", "a-wrong-jwt-secret");
  Variables vars = {{"HOME", dir.path()},
                    {"AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.url()},
                    {"AWS_WEB_IDENTITY_TOKEN_FILE", jwt},
                    {"AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/ds"},
                    {"AWS_ENDPOINT_URL_STS", sts.url()}};
  Result<std::shared_ptr<RefreshingCredentials>> r =
      ResolveCredentials(DefaultCredentialsChain(vars));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kPermissionDenied);
  EXPECT_NE(r.status().message().find("AWS credentials from web identity"), std::string::npos);
  EXPECT_NE(r.status().message().find("skipped before it: environment"), std::string::npos)
      << r.status().message();
  EXPECT_EQ(r.status().message().find("a-wrong-jwt-secret"), std::string::npos);
  EXPECT_EQ(imds.issued(), 0);  // never fell back to the instance's role
}

TEST(CredentialChainTest, UnreachableConfiguredSourceIsKept) {
  ChainDir dir;
  int dead_port = 0;  // a port nobody listens on any more
  {
    ContainerCredentialsServer gone("/creds", "");
    dead_port = gone.port();
  }
  Variables vars = Hermetic(dir);
  vars["AWS_CONTAINER_CREDENTIALS_FULL_URI"] =
      "http://127.0.0.1:" + std::to_string(dead_port) + "/creds";
  RefreshOptions fast;
  fast.retry_every = std::chrono::milliseconds(200);
  Result<std::shared_ptr<RefreshingCredentials>> r =
      ResolveCredentials(DefaultCredentialsChain(vars), fast);
  ASSERT_TRUE(r.ok()) << r.status().ToString();  // kept: the service can start and retry
  EXPECT_EQ((*r)->SourceName(), "container credentials");
  Result<Credentials> c = (*r)->Get();
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Code::kUnavailable);
  EXPECT_NE(c.status().message().find("AWS credentials from container credentials"),
            std::string::npos)
      << c.status().message();
  // Retried in the background (every 200 ms here, each retry up to 3 attempts, ~0.6 s).
  for (int i = 0; i < 100 && (*r)->fetches() < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_GE((*r)->fetches(), 2);
}

// Short-lived credentials from the container endpoint: 6 s each (5 to 6 s: the expiry has whole
// seconds), refreshed from half their lifetime on, expired a quarter before expiry (the
// defaults for lifetimes under 10 minutes).
TEST(RefreshingCredentialsTest, RefreshesBeforeExpiryWithoutMakingCallersWait) {
  CredentialLogCapture log;
  ContainerCredentialsServer server("/creds", "auth-token-secret");
  server.set_lifetime(std::chrono::seconds(6));
  ChainDir dir;
  Variables vars = Hermetic(dir);
  vars["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = server.url() + "/creds";
  vars["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = "auth-token-secret";
  Result<std::shared_ptr<RefreshingCredentials>> r =
      ResolveCredentials(DefaultCredentialsChain(vars));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  RefreshingCredentials& creds = **r;
  EXPECT_EQ(server.issued(), 1);

  // The refresh answer takes 800 ms; callers during that time get the old credentials at once.
  server.set_delay(std::chrono::milliseconds(800));
  const auto start = std::chrono::steady_clock::now();
  std::chrono::steady_clock::duration slowest{};
  std::vector<std::string> keys;
  while (std::chrono::steady_clock::now() - start < std::chrono::milliseconds(4200)) {
    auto t0 = std::chrono::steady_clock::now();
    Result<Credentials> c = creds.Get();
    slowest = std::max(slowest, std::chrono::steady_clock::now() - t0);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    if (keys.empty() || keys.back() != c->access_key_id) keys.push_back(c->access_key_id);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(keys, (std::vector<std::string>{"ASIATEST0001", "ASIATEST0002"}));
  EXPECT_LT(slowest, std::chrono::milliseconds(200)) << "a caller waited for the refresh";
  EXPECT_EQ(server.issued(), 2);

  const std::string text = log.text();
  EXPECT_NE(text.find("AWS credentials from container credentials: key ASIA…"), std::string::npos)
      << text;
  EXPECT_NE(text.find("AWS credentials refreshed from container credentials"), std::string::npos)
      << text;
  for (const char* secret : {"secret-1-never-logged", "token-1-never-logged",
                             "secret-2-never-logged", "auth-token-secret", "ASIATEST0001"}) {
    EXPECT_EQ(text.find(secret), std::string::npos) << secret << " logged:\n" << text;
  }
}

TEST(RefreshingCredentialsTest, ExpiredCredentialsMakeCallersWaitForOneRefresh) {
  ContainerCredentialsServer server("/creds", "");
  server.set_lifetime(std::chrono::seconds(4));
  ChainDir dir;
  Variables vars = Hermetic(dir);
  vars["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = server.url() + "/creds";
  auto provider = std::make_unique<ContainerCredentials>(vars);
  Result<Credentials> first = provider->Fetch();
  ASSERT_TRUE(first.ok());
  // They expire in 100 ms, and nothing refreshes them before expiry.
  first->expiration = std::chrono::system_clock::now() + std::chrono::milliseconds(100);
  RefreshOptions opts;
  opts.refresh_before = std::chrono::milliseconds(0);
  opts.expired_margin = std::chrono::milliseconds(0);
  server.set_delay(std::chrono::milliseconds(500));  // each answer takes 500 ms
  RefreshingCredentials creds(std::move(provider), first, opts);
  std::this_thread::sleep_for(std::chrono::milliseconds(150));  // expired now

  std::vector<std::thread> callers;
  std::vector<std::string> got(4);
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 4; ++i) {
    callers.emplace_back([&, i] {
      Result<Credentials> c = creds.Get();
      got[i] = c.ok() ? c->access_key_id : c.status().ToString();
    });
  }
  for (std::thread& t : callers) t.join();
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(took, std::chrono::milliseconds(300));  // they waited for the refresh
  for (const std::string& k : got) EXPECT_EQ(k, "ASIATEST0002");
  EXPECT_EQ(server.issued(), 2);  // one refresh for all four callers
}

TEST(RefreshingCredentialsTest, FailedRefreshKeepsValidCredentialsThenReportsExpiry) {
  ContainerCredentialsServer server("/creds", "right");
  server.set_lifetime(std::chrono::milliseconds(4000));  // 3 to 4 s
  ChainDir dir;
  std::string token_file = dir.Write("token", "right");
  Variables vars = Hermetic(dir);
  vars["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = server.url() + "/creds";
  vars["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] = token_file;
  RefreshOptions opts;  // refresh from 1.5-2 s on, expired from 2.8-3.8 s on
  opts.refresh_before = std::chrono::seconds(3);
  opts.expired_margin = std::chrono::milliseconds(200);
  opts.retry_every = std::chrono::milliseconds(100);
  Result<std::shared_ptr<RefreshingCredentials>> r =
      ResolveCredentials(DefaultCredentialsChain(vars), opts);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  dir.Write("token", "wrong");  // every refresh is refused from now on
  std::this_thread::sleep_for(std::chrono::milliseconds(2300));  // past the refresh point
  Result<Credentials> still = (*r)->Get();
  ASSERT_TRUE(still.ok()) << still.status().ToString();
  EXPECT_EQ(still->access_key_id, "ASIATEST0001");
  EXPECT_GE(server.requests().size(), 2u);                       // background refreshes were tried
  std::this_thread::sleep_for(std::chrono::milliseconds(1800));  // expired now
  Result<Credentials> expired = (*r)->Get();
  ASSERT_FALSE(expired.ok());
  EXPECT_EQ(expired.status().code(), Code::kPermissionDenied);
  EXPECT_NE(expired.status().message().find("HTTP 401"), std::string::npos)
      << expired.status().message();
  EXPECT_EQ(expired.status().message().find("wrong"), std::string::npos);
}

// The S3 client asks for credentials per request: after a refresh, requests carry the new key
// and session token.
TEST(RefreshingCredentialsTest, S3RequestsAreSignedWithTheCurrentCredentials) {
  ImdsServer imds;
  imds.set_lifetime(std::chrono::seconds(4));  // 3 to 4 s: refreshed at 1.5 to 2 s
  ChainDir dir;
  std::map<std::string, std::string> vars = {{"HOME", dir.path()},
                                             {"AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.url()}};

  httplib::Server s3;
  std::mutex mu;
  std::vector<std::pair<std::string, std::string>> seen;  // Authorization, token
  s3.Get(".*", [&](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard<std::mutex> lock(mu);
    seen.emplace_back(req.get_header_value("Authorization"),
                      req.get_header_value("x-amz-security-token"));
    res.set_header("Content-Length", "3");
    res.set_content("abc", "application/octet-stream");
  });
  int port = s3.bind_to_any_port("127.0.0.1");
  std::thread t([&] { s3.listen_after_bind(); });
  while (!s3.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  vars["AWS_ENDPOINT_URL_S3"] = "http://127.0.0.1:" + std::to_string(port);

  Result<S3Config> cfg = S3Config::FromVariables(vars);
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  ASSERT_NE(cfg->credentials, nullptr);
  EXPECT_TRUE(cfg->access_key_id.empty());
  EXPECT_NE(cfg->Describe().find("credentials from EC2 instance metadata, key ASIA…"),
            std::string::npos)
      << cfg->Describe();
  EXPECT_EQ(cfg->Describe().find("ASIATEST0001"), std::string::npos);
  auto client = std::make_unique<S3Client>(*cfg);
  std::string body;
  auto sink = [&](const char* d, size_t n) {
    body.append(d, n);
    return Status::Ok();
  };
  EXPECT_TRUE(client->GetObject("b", "k", "", sink).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));  // refreshed once
  EXPECT_TRUE(client->GetObject("b", "k", "", sink).ok());
  client.reset();  // its kept-alive connection closed, so that the server stops at once
  s3.stop();
  t.join();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_NE(seen[0].first.find("Credential=ASIATEST0001/"), std::string::npos) << seen[0].first;
  EXPECT_EQ(seen[0].second, "token-1-never-logged");
  EXPECT_NE(seen[1].first.find("Credential=ASIATEST0002/"), std::string::npos) << seen[1].first;
  EXPECT_EQ(seen[1].second, "token-2-never-logged");
}

}  // namespace
}  // namespace ds::aws
