// The binary as a user drives it: settings precedence, help, errors, and `apply` against the
// real local RGW.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "service_harness.h"

namespace ds::itest {
namespace {

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("ds-cli-" + RandomSuffix());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  int Run(const std::vector<std::string>& args, const std::map<std::string, std::string>& env,
          std::string* out) {
    std::vector<std::string> argv = {DS_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    // Unless a test passes the lab's credentials, run without any (empty counts as unset).
    std::map<std::string, std::string> e = env;
    e.emplace("AWS_ACCESS_KEY_ID", "");
    e.emplace("AWS_SECRET_ACCESS_KEY", "");
    // Nor any other source of the credential chain of this machine (IMDS, ~/.aws).
    e.emplace("AWS_EC2_METADATA_DISABLED", "true");
    e.emplace("AWS_PROFILE", "");
    e.emplace("AWS_CONFIG_FILE", "/nonexistent/aws-config");
    e.emplace("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials");
    e.emplace("DELETE_SYNC_CACHE", "");
    return RunCommand(argv, e, out);
  }
  std::string Write(const std::string& name, const std::string& content) {
    std::string p = dir_ + "/" + name;
    std::ofstream(p, std::ios::binary) << content;
    return p;
  }
  static std::string RgwRemoval(const std::string& bucket, const std::string& key) {
    return R"({"Records":[{"eventVersion":"2.2","eventSource":"ceph:s3","eventName":)"
           R"("ObjectRemoved:Delete","s3":{"bucket":{"name":")" +
           bucket + R"("},"object":{"key":")" + key +
           R"(","size":0,"eTag":"","versionId":"",)"
           R"("sequencer":"0011223344556677"}}}]})";
  }
  std::string dir_;
};

TEST_F(CliTest, EverySubcommandHasHelp) {
  for (const char* sub : {"serve", "apply", "status"}) {
    std::string out;
    EXPECT_EQ(Run({sub, "--help"}, {}, &out), 0) << sub;
    EXPECT_NE(out.find("--cache"), std::string::npos) << out;
  }
  std::string out;
  EXPECT_EQ(Run({"--help"}, {}, &out), 0);
  EXPECT_NE(out.find("serve"), std::string::npos);
  EXPECT_EQ(Run({"--version"}, {}, &out), 0);
  EXPECT_NE(out.find("delete-sync"), std::string::npos);
}

TEST_F(CliTest, FlagBeatsEnvironmentBeatsFile) {
  std::string events = Write("ev.json", RgwRemoval("b", "x.txt"));
  std::string file_cache = dir_ + "/from-file", env_cache = dir_ + "/from-env",
              flag_cache = dir_ + "/from-flag";
  std::string config = Write("c.toml", "cache = \"" + file_cache + "\"\nbucket = \"b\"\n");
  std::string out;
  ASSERT_EQ(Run({"apply", "--config", config, "--events", events}, {}, &out), 0) << out;
  EXPECT_TRUE(Exists(file_cache + "/.delete-sync"));
  ASSERT_EQ(Run({"apply", "--config", config, "--events", events},
                {{"DELETE_SYNC_CACHE", env_cache}}, &out),
            0)
      << out;
  EXPECT_TRUE(Exists(env_cache + "/.delete-sync"));
  ASSERT_EQ(Run({"apply", "--config", config, "--events", events, "--cache", flag_cache},
                {{"DELETE_SYNC_CACHE", env_cache}}, &out),
            0)
      << out;
  EXPECT_TRUE(Exists(flag_cache + "/.delete-sync"));
}

TEST_F(CliTest, BadSettingsGiveClearErrors) {
  std::string events = Write("ev.json", RgwRemoval("b", "x.txt"));
  std::string out;
  EXPECT_EQ(Run({"apply", "--events", events}, {}, &out), 2);
  EXPECT_NE(out.find("--cache is required"), std::string::npos) << out;
  std::string typo = Write("typo.toml", "cahce = \"/tmp/x\"\n");
  EXPECT_EQ(Run({"apply", "--config", typo, "--events", events}, {}, &out), 2);
  EXPECT_NE(out.find("unknown setting 'cahce'"), std::string::npos) << out;
  EXPECT_EQ(
      Run({"apply", "--cache", dir_ + "/c", "--file-mode", "0999", "--events", events}, {}, &out),
      2);
  EXPECT_NE(out.find("octal"), std::string::npos) << out;
  // A group commit of 0 or of more than 10,000 events is a usage error, and nothing is created.
  for (const char* batch : {"0", "10001", "many"}) {
    EXPECT_EQ(
        Run({"apply", "--cache", dir_ + "/b", "--batch", batch, "--events", events}, {}, &out), 2)
        << batch;
    EXPECT_NE(out.find("--batch must be a whole number from 1 to 10000"), std::string::npos) << out;
  }
  EXPECT_FALSE(Exists(dir_ + "/b"));
  // A claim lease outside 5 s to 1 h (issue 17): a usage error, nothing created.
  for (const char* lease : {"4s", "2h", "soon"}) {
    EXPECT_EQ(Run({"apply", "--cache", dir_ + "/l", "--claim-lease", lease, "--events", events}, {},
                  &out),
              2)
        << lease;
    EXPECT_NE(out.find("--claim-lease must be"), std::string::npos) << out;
  }
  EXPECT_FALSE(Exists(dir_ + "/l"));
  EXPECT_EQ(Run({"serve", "--cache", dir_ + "/c"}, {}, &out), 2);
  EXPECT_NE(out.find("--webhook-token"), std::string::npos) << out;
  // A plain folder is not a mount point: nothing is created in it.
  std::filesystem::create_directories(dir_ + "/mnt");
  EXPECT_EQ(Run({"apply", "--cache", dir_ + "/mnt", "--require-mount", "true", "--events", events},
                {}, &out),
            1);
  EXPECT_NE(out.find("is not a mount point"), std::string::npos) << out;
  EXPECT_FALSE(Exists(dir_ + "/mnt/.delete-sync"));
}

// Settings are checked before anything is opened (issue 18): a usage error is exit 2 and
// creates nothing; a failure once they are good is exit 1; a mistyped subcommand or flag gets a
// suggestion.
TEST_F(CliTest, SettingsAreCheckedBeforeAnythingIsCreated) {
  std::string out;
  // status of a mistyped cache: it reads, it never creates a folder or an empty database.
  EXPECT_EQ(Run({"status", "--cache", dir_ + "/typo"}, {}, &out), 1);
  EXPECT_NE(out.find("no state database at " + dir_ + "/typo"), std::string::npos) << out;
  EXPECT_FALSE(Exists(dir_ + "/typo"));
  EXPECT_EQ(Run({"retry-failed", "--cache", dir_ + "/typo"}, {}, &out), 1);
  EXPECT_FALSE(Exists(dir_ + "/typo"));
  // serve without credentials: a usage error found before the cache or its state is made.
  EXPECT_EQ(Run({"serve", "--cache", dir_ + "/s", "--webhook-token", "t"}, {}, &out), 2);
  EXPECT_NE(out.find("object store not configured"), std::string::npos) << out;
  EXPECT_FALSE(Exists(dir_ + "/s"));
  // A damaged audit log is not a bad flag: serve fails to open it, exit 1.
  std::filesystem::create_directories(dir_ + "/d/.delete-sync");
  Write("d/.delete-sync/audit.log", "{\"garbage\n");
  const std::map<std::string, std::string> creds = {
      {"AWS_ACCESS_KEY_ID", "a"}, {"AWS_SECRET_ACCESS_KEY", "b"}, {"AWS_REGION", "us-east-1"}};
  EXPECT_EQ(Run({"serve", "--cache", dir_ + "/d", "--webhook-token", "t", "--webhook-listen",
                 "127.0.0.1:0", "--log-level", "warn"},
                creds, &out),
            1);
  EXPECT_NE(out.find("audit log"), std::string::npos) << out;
  // Typos get the closest name.
  EXPECT_EQ(Run({"servee", "--cache", dir_ + "/s"}, {}, &out), 2);
  EXPECT_NE(out.find("did you mean 'serve'?"), std::string::npos) << out;
  EXPECT_EQ(Run({"apply", "--cahce", dir_ + "/s", "--events", "-"}, {}, &out), 2);
  EXPECT_NE(out.find("no flag '--cahce'; did you mean '--cache'?"), std::string::npos) << out;
  EXPECT_FALSE(Exists(dir_ + "/s"));
}

// Issue 19: the webhook's listener settings are checked before anything starts, and serve for
// AMQP alone says how to turn the default webhook off instead of only asking for a token.
TEST_F(CliTest, ListenerSettingsAreCheckedAndAmqpAloneSaysWebhookListenOff) {
  const std::map<std::string, std::string> creds = {
      {"AWS_ACCESS_KEY_ID", "a"}, {"AWS_SECRET_ACCESS_KEY", "b"}, {"AWS_REGION", "us-east-1"}};
  std::string out;
  EXPECT_EQ(Run({"serve", "--cache", dir_ + "/a", "--amqp-url", "amqp://guest:guest@127.0.0.1/",
                 "--amqp-queue", "q"},
                creds, &out),
            2);
  EXPECT_NE(out.find("add --webhook-listen off to receive events from AMQP only"),
            std::string::npos)
      << out;
  EXPECT_FALSE(Exists(dir_ + "/a"));
  EXPECT_EQ(Run({"serve", "--cache", dir_ + "/a", "--webhook-token", "t", "--webhook-workers", "0"},
                creds, &out),
            2);
  EXPECT_NE(out.find("webhook-workers"), std::string::npos) << out;
  EXPECT_EQ(Run({"serve", "--cache", dir_ + "/a", "--webhook-token", "t",
                 "--webhook-request-timeout", "100ms"},
                creds, &out),
            2);
  EXPECT_NE(out.find("--webhook-request-timeout must be at least 1s"), std::string::npos) << out;
  EXPECT_EQ(Run({"serve", "--cache", dir_ + "/a", "--webhook-token", "t",
                 "--webhook-max-unauthenticated", "2000"},
                creds, &out),
            2);
  EXPECT_NE(out.find("--webhook-max-unauthenticated must be less than --webhook-max-connections"),
            std::string::npos)
      << out;
  EXPECT_FALSE(Exists(dir_ + "/a"));
}

// --sns-topic-arn (repeatable: flags, DELETE_SYNC_SNS_TOPIC_ARN split at commas, a TOML array):
// every value must be an SNS topic ARN, checked before anything is created.
TEST_F(CliTest, SnsTopicArnsAreCheckedBeforeAnythingIsCreated) {
  const std::map<std::string, std::string> creds = {
      {"AWS_ACCESS_KEY_ID", "a"}, {"AWS_SECRET_ACCESS_KEY", "b"}, {"AWS_REGION", "us-east-1"}};
  const std::string good = "arn:aws:sns:us-east-1:123456789012:bucket-events";
  std::string out;
  EXPECT_EQ(Run({"serve", "--cache", dir_ + "/a", "--webhook-token", "t", "--sns-topic-arn", good,
                 "--sns-topic-arn", "bucket-events"},
                creds, &out),
            2);
  EXPECT_NE(out.find("--sns-topic-arn must be an SNS topic ARN"), std::string::npos) << out;
  EXPECT_NE(out.find("'bucket-events'"), std::string::npos) << out;
  std::map<std::string, std::string> env = creds;
  env["DELETE_SYNC_SNS_TOPIC_ARN"] = good + ", arn:aws:sqs:us-east-1:123456789012:q";
  EXPECT_EQ(Run({"serve", "--cache", dir_ + "/a", "--webhook-token", "t"}, env, &out), 2);
  EXPECT_NE(out.find("'arn:aws:sqs:us-east-1:123456789012:q'"), std::string::npos) << out;
  const std::string config = Write("c.toml", "sns-topic-arn = [\"" + good + "\", 7]\n");
  EXPECT_EQ(Run({"serve", "--config", config, "--cache", dir_ + "/a", "--webhook-token", "t"},
                creds, &out),
            2);
  EXPECT_NE(out.find("'sns-topic-arn' must be an array of strings"), std::string::npos) << out;
  EXPECT_FALSE(Exists(dir_ + "/a"));
}

// state-horizon: a duration of at least a day (or off), from a flag, the environment or the
// file; below a day only with the test switch. No S3 needed.
TEST_F(CliTest, StateHorizonIsAtLeastADayAndCollectsThroughApply) {
  std::string events = Write("ev.json", RgwRemoval("b", "x.txt"));
  std::string out;
  EXPECT_EQ(Run({"apply", "--cache", dir_ + "/h", "--state-horizon", "12h", "--events", events}, {},
                &out),
            2);
  EXPECT_NE(out.find("--state-horizon must be at least 1d (or off), not '12h'"), std::string::npos)
      << out;
  EXPECT_FALSE(Exists(dir_ + "/h"));
  EXPECT_EQ(Run({"apply", "--cache", dir_ + "/h", "--state-horizon", "soon", "--events", events},
                {}, &out),
            2);
  EXPECT_NE(out.find("--state-horizon must be a duration"), std::string::npos) << out;
  EXPECT_EQ(Run({"apply", "--cache", dir_ + "/h", "--events", events},
                {{"DELETE_SYNC_STATE_HORIZON", "23h"}}, &out),
            2);
  std::string toml = Write("h.toml", "state-horizon = \"2h\"\n");
  EXPECT_EQ(Run({"apply", "--config", toml, "--cache", dir_ + "/h", "--events", events}, {}, &out),
            2);
  EXPECT_FALSE(Exists(dir_ + "/h"));
  toml = Write("ok.toml", "state-horizon = \"30d\"\n");
  EXPECT_EQ(Run({"apply", "--config", toml, "--cache", dir_ + "/h", "--events", events}, {}, &out),
            0)
      << out;
  for (const char* ok : {"1d", "45d", "off"}) {
    EXPECT_EQ(
        Run({"apply", "--cache", dir_ + "/h", "--state-horizon", ok, "--events", events}, {}, &out),
        0)
        << ok << ": " << out;
  }
  EXPECT_EQ(Run({"serve", "--help"}, {}, &out), 0);
  EXPECT_NE(out.find("--state-horizon"), std::string::npos) << out;

  // With the test switch a horizon of a second is allowed, and apply collects at its end: the
  // tombstone of x.txt, older than a second, goes; y.txt's, just made, stays.
  const std::map<std::string, std::string> test_env = {{"DS_TEST_ALLOW_SHORT_STATE_HORIZON", "1"}};
  EXPECT_EQ(Run({"apply", "--cache", dir_ + "/s", "--state-horizon", "1s", "--events", events},
                test_env, &out),
            0)
      << out;
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  std::string events_y = Write("ev-y.json", RgwRemoval("b", "y.txt"));
  EXPECT_EQ(Run({"apply", "--cache", dir_ + "/s", "--state-horizon", "1s", "--json", "--events",
                 events_y},
                test_env, &out),
            0)
      << out;
  // The summary is the line of JSON among the log lines (stdout and stderr are one here).
  nlohmann::json j = nlohmann::json::object();
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind('{', 0) == 0) j = nlohmann::json::parse(line, nullptr, false);
  }
  ASSERT_FALSE(j.is_discarded()) << out;
  EXPECT_EQ(j.value("state_rows_collected", -1), 1) << out;
  // Without the switch the same second is a usage error.
  EXPECT_EQ(Run({"apply", "--cache", dir_ + "/s", "--state-horizon", "1s", "--events", events_y},
                {}, &out),
            2);
}

TEST_F(CliTest, ReconcileAgainstAStoreThatNeverAnswersStopsAtTheRequestTimeout) {
  // A loopback port that accepts TCP connections (the kernel's backlog) and never answers.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(fd, 16), 0);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const std::map<std::string, std::string> env = {
      {"AWS_ACCESS_KEY_ID", "AKIDSILENTSTORE00"},
      {"AWS_SECRET_ACCESS_KEY", "silent-store-secret"},
      {"AWS_ENDPOINT_URL_S3", "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port))},
      {"AWS_MAX_ATTEMPTS", "2"}};
  std::string out;
  int rc =
      Run({"reconcile", "--cache", dir_ + "/cache", "--bucket", "b", "--s3-request-timeout", "1s"},
          env, &out);
  EXPECT_EQ(rc, 1) << out;
  // One warning for the retry, then the failure, both naming the limit.
  EXPECT_NE(out.find("s3 ListObjectsV2 s3://b: attempt 1/2 failed (timed out"), std::string::npos)
      << out;
  EXPECT_NE(out.find("s3-request-timeout 1s"), std::string::npos) << out;
  EXPECT_NE(out.find("after 2 attempts"), std::string::npos) << out;
  EXPECT_EQ(out.find("silent-store-secret"), std::string::npos) << out;

  // The environment variable form, with a value that is not a duration.
  std::map<std::string, std::string> bad = env;
  bad["DELETE_SYNC_S3_REQUEST_TIMEOUT"] = "soon";
  rc = Run({"reconcile", "--cache", dir_ + "/cache", "--bucket", "b"}, bad, &out);
  close(fd);
  EXPECT_EQ(rc, 2) << out;
  EXPECT_NE(out.find("--s3-request-timeout must be a duration"), std::string::npos) << out;
}

TEST_F(CliTest, ApplyRemovesAndReportsRefusalsAndMalformedLines) {
  std::string cache = dir_ + "/cache";
  std::filesystem::create_directories(cache + "/dir");
  std::ofstream(cache + "/dir/a.txt") << "a";
  std::ofstream(dir_ + "/outside.txt") << "outside";
  std::string lines = RgwRemoval("b", "dir/a.txt") + "\n" + RgwRemoval("b", "../outside.txt") +
                      "\n{not json\n" + RgwRemoval("other-bucket", "dir/a.txt") + "\n";
  std::string events = Write("ev.jsonl", lines);
  std::string out;
  int rc = Run({"apply", "--cache", cache, "--bucket", "b", "--events", events, "--json",
                "--log-level", "off"},
               {}, &out);
  EXPECT_EQ(rc, 1) << out;  // the malformed line counts as failed
  auto j = nlohmann::json::parse(out);
  EXPECT_EQ(j["applied"], 1);
  EXPECT_EQ(j["refused"], 1);
  EXPECT_EQ(j["ignored"], 1);
  EXPECT_EQ(j["failed"], 1);
  EXPECT_EQ(j["refusals"]["dot-segment"], 1);
  EXPECT_NE(j["errors"][0].get<std::string>().find("line 3: not JSON"), std::string::npos);
  EXPECT_FALSE(Exists(cache + "/dir/a.txt"));
  EXPECT_FALSE(Exists(cache + "/dir"));
  EXPECT_EQ(ReadFile(dir_ + "/outside.txt"), "outside");
}

TEST_F(CliTest, ApplyDownloadsCreationsFromRgw) {
  RgwBucket rgw;
  rgw.Create("ds-cli-" + RandomSuffix());
  ASSERT_FALSE(HasFatalFailure());
  const std::map<std::string, std::string>& env = rgw.env();
  S3Client& s3 = rgw.s3();
  const std::string& bucket = rgw.name();
  ASSERT_TRUE(s3.PutObject(bucket, "folder/with space/é.txt", "from rgw").ok());
  std::string doc = R"({"Records":[{"eventVersion":"2.2","eventSource":"ceph:s3","eventName":)"
                    R"("ObjectCreated:Put","s3":{"bucket":{"name":")" +
                    bucket +
                    R"("},"object":{"key":"folder/with space/é.txt","size":8,"eTag":"x",)"
                    R"("versionId":"","sequencer":"00"}}},)"
                    R"({"eventVersion":"2.2","eventSource":"ceph:s3","eventName":)"
                    R"("ObjectCreated:Put","s3":{"bucket":{"name":")" +
                    bucket + R"("},"object":{"key":"never-existed.txt","size":1}}}]})";
  std::string events = Write("create.json", doc);
  std::string cache = dir_ + "/cache";
  std::string out;
  int rc = Run({"apply", "--cache", cache, "--bucket", bucket, "--events", events, "--file-mode",
                "0640", "--dir-mode", "0750"},
               env, &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("applied 2, ignored 0, refused 0, failed 0"), std::string::npos) << out;
  EXPECT_EQ(ReadFile(cache + "/folder/with space/é.txt"), "from rgw");
  EXPECT_FALSE(Exists(cache + "/never-existed.txt"));
  struct stat st;
  ASSERT_EQ(stat((cache + "/folder/with space/é.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
  ASSERT_EQ(stat((cache + "/folder").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0750u);
}

// The binary takes its credentials from the chain when AWS_ACCESS_KEY_ID is unset: here a
// profile's credential_process hands out the lab's keys, and the start line names the source,
// never the secret.
TEST_F(CliTest, ApplyDownloadsWithCredentialsFromAProfilesCredentialProcess) {
  RgwBucket rgw;
  rgw.Create("ds-cli-" + RandomSuffix());
  ASSERT_FALSE(HasFatalFailure());
  std::map<std::string, std::string> env = rgw.env();
  const std::string key_id = env.at("AWS_ACCESS_KEY_ID");
  const std::string secret = env.at("AWS_SECRET_ACCESS_KEY");
  env.erase("AWS_ACCESS_KEY_ID");
  env.erase("AWS_SECRET_ACCESS_KEY");
  std::string script = Write("creds.sh",
                             "#!/bin/sh\nprintf '{\"Version\": 1, \"AccessKeyId\": "
                             "\"%s\", \"SecretAccessKey\": \"%s\"}' \"$1\" \"$2\"\n");
  ASSERT_EQ(chmod(script.c_str(), 0700), 0);
  env["AWS_CONFIG_FILE"] = Write("config", "[profile lab]\ncredential_process = " + script + " " +
                                               key_id + " " + secret + "\n");
  env["AWS_PROFILE"] = "lab";
  ASSERT_TRUE(rgw.s3().PutObject(rgw.name(), "via-profile.txt", "chain").ok());
  std::string doc = R"({"Records":[{"eventVersion":"2.2","eventSource":"ceph:s3","eventName":)"
                    R"("ObjectCreated:Put","s3":{"bucket":{"name":")" +
                    rgw.name() +
                    R"("},"object":{"key":"via-profile.txt","size":5,"eTag":"x",)"
                    R"("versionId":"","sequencer":"00"}}}]})";
  std::string events = Write("create.json", doc);
  std::string cache = dir_ + "/cache";
  std::string out;
  int rc = Run({"apply", "--cache", cache, "--bucket", rgw.name(), "--events", events}, env, &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(ReadFile(cache + "/via-profile.txt"), "chain");
  EXPECT_NE(out.find("AWS credentials from profile 'lab': key " + key_id.substr(0, 4) + "…"),
            std::string::npos)
      << out;
  EXPECT_EQ(out.find(secret), std::string::npos) << out;
}

}  // namespace
}  // namespace ds::itest
