// Operating the real `delete-sync serve` against the real local RGW: /metrics after a put and a
// delete, /readyz with RGW up and with a wrong endpoint, JSON logs without secrets, the log
// file reopened on SIGHUP, SIGTERM leaving a not-downloaded creation in the journal, and the
// status page rendered by headless Chromium.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "fakes/notification_docs.h"
#include "service_harness.h"

namespace ds::itest {
namespace {

// The value of a sample line "name{labels} value" in a scrape; -1 when absent.
double Sample(const std::string& text, const std::string& series) {
  size_t p = text.find("\n" + series + " ");
  if (p == std::string::npos) return -1;
  return std::stod(text.substr(p + series.size() + 2));
}

// A serve process of our own (no bucket notifications), for signals and broken endpoints.
class ServeProcess {
 public:
  ~ServeProcess() { Stop(); }
  void Start(const std::map<std::string, std::string>& env, const std::vector<std::string>& args) {
    dir_ = std::filesystem::temp_directory_path() / ("ds-ops-" + RandomSuffix());
    std::filesystem::create_directories(dir_);
    cache_ = dir_ + "/cache";
    stderr_ = dir_ + "/stderr.log";
    token_ = "tok-" + RandomSuffix();
    port_ = FreePort();
    metrics_port_ = FreePort();
    std::vector<std::string> argv = {
        DS_BINARY,          "serve",
        "--cache",          cache_,
        "--webhook-listen", "127.0.0.1:" + std::to_string(port_),
        "--webhook-token",  token_,
        "--metrics-listen", "127.0.0.1:" + std::to_string(metrics_port_)};
    argv.insert(argv.end(), args.begin(), args.end());
    proc_.Start(argv, ChildOptions().Env(env).Log(stderr_).TruncateLog());
    httplib::Client c("127.0.0.1", port_);
    ASSERT_TRUE(WaitFor([&] {
      auto r = c.Get("/healthz");
      return r && r->status == 200;
    })) << ReadFile(stderr_);
  }
  // SIGTERM; returns the exit code.
  int Stop() { return proc_.Terminate(); }
  void Cleanup() {
    if (!dir_.empty() && !::testing::Test::HasFailure()) std::filesystem::remove_all(dir_);
  }
  pid_t pid() const { return proc_.pid(); }
  int port() const { return port_; }
  int metrics_port() const { return metrics_port_; }
  const std::string& dir() const { return dir_; }
  const std::string& cache() const { return cache_; }
  const std::string& token() const { return token_; }
  std::string Stderr() const { return ReadFile(stderr_); }

 private:
  std::string dir_, cache_, stderr_, token_;
  int port_ = 0, metrics_port_ = 0;
  ChildProcess proc_;
};

std::string RemovalDoc(const std::string& bucket, const std::string& name, const std::string& key) {
  testdocs::Record r = testdocs::Rgw(name, bucket, key);
  r.event_time = FormatUtcMillis(SystemClock().NowMillis());
  return testdocs::Document({r});
}

TEST(OpsTest, MetricsAndJsonLogsAfterAPutAndADelete) {
  ServiceHarness h;
  int metrics_port = FreePort();
  std::string log_dir = std::filesystem::temp_directory_path() / ("ds-ops-log-" + RandomSuffix());
  std::filesystem::create_directories(log_dir);
  std::string log_file = log_dir + "/serve.json";
  h.Start({"--metrics-listen", "127.0.0.1:" + std::to_string(metrics_port), "--log-format", "json",
           "--log-file", log_file});
  ASSERT_TRUE(h.s3().PutObject(h.bucket(), "m/one.txt", "one").ok());
  ASSERT_TRUE(h.WaitContent("m/one.txt", "one"));
  ASSERT_TRUE(h.s3().DeleteObject(h.bucket(), "m/one.txt", "").ok());
  ASSERT_TRUE(h.WaitGone("m/one.txt"));

  // The webhook port wants the token; the loopback metrics port does not.
  httplib::Client webhook = h.Client();
  auto denied = webhook.Get("/metrics");
  ASSERT_TRUE(denied);
  EXPECT_EQ(denied->status, 401);
  auto with_token = webhook.Get("/metrics?token=" + h.token());
  ASSERT_TRUE(with_token);
  EXPECT_EQ(with_token->status, 200);
  httplib::Client mc("127.0.0.1", metrics_port);
  std::string text;
  // The download's publication is counted when it finishes; wait for it rather than for time.
  ASSERT_TRUE(WaitFor([&] {
    auto r = mc.Get("/metrics");
    if (!r || r->status != 200) return false;
    text = "\n" + r->body;
    return Sample(text, "delete_sync_downloads_total{outcome=\"published\"}") >= 1;
  })) << text;
  auto r = mc.Get("/metrics");
  ASSERT_TRUE(r);
  EXPECT_NE(r->get_header_value("Content-Type").find("version=0.0.4"), std::string::npos);
  EXPECT_EQ(Sample(text,
                   "delete_sync_events_received_total{source=\"ceph:s3\",type=\"ObjectCreated:"
                   "Put\"}"),
            1)
      << text;
  EXPECT_EQ(Sample(text,
                   "delete_sync_events_received_total{source=\"ceph:s3\",type=\"ObjectRemoved:"
                   "Delete\"}"),
            1)
      << text;
  EXPECT_EQ(Sample(text, "delete_sync_events_applied_total{outcome=\"removed\"}"), 1) << text;
  EXPECT_EQ(Sample(text, "delete_sync_removals_total{cause=\"event\"}"), 1) << text;
  EXPECT_EQ(Sample(text, "delete_sync_event_delay_seconds_count{action=\"remove\"}"), 1) << text;
  EXPECT_EQ(Sample(text, "delete_sync_event_delay_seconds_count{action=\"create\"}"), 1) << text;
  EXPECT_EQ(Sample(text, "delete_sync_audit_records"), 1) << text;
  EXPECT_GE(Sample(text, "delete_sync_jobs_waiting"), 0) << text;
  EXPECT_EQ(Sample(text, "delete_sync_inflight_requests"), 0) << text;
  EXPECT_NE(text.find("# TYPE delete_sync_event_delay_seconds histogram"), std::string::npos);
  // Prometheus' own parser and linter accept the scrape.
  if (Exists("/usr/bin/promtool")) {
    std::string scrape = h.dir() + "/scrape.txt";
    std::ofstream(scrape) << r->body;
    std::string lint;
    EXPECT_EQ(RunCommand({"/bin/sh", "-c", "promtool check metrics < '" + scrape + "'"}, {}, &lint),
              0)
        << lint;
    EXPECT_EQ(lint, "") << lint;
  }

  // /readyz with RGW up: every check named and passing.
  auto ready = mc.Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200) << ready->body;
  nlohmann::json rj = nlohmann::json::parse(ready->body);
  EXPECT_TRUE(rj["ready"].get<bool>());
  std::set<std::string> names;
  for (const auto& c : rj["checks"]) names.insert(c["name"].get<std::string>());
  EXPECT_EQ(names, (std::set<std::string>{"state", "cache", "disk", "s3"}));

  // `delete-sync status` prints the removal from the audit log.
  std::string out;
  EXPECT_EQ(RunCommand({DS_BINARY, "status", "--cache", h.cache()}, {}, &out), 0) << out;
  EXPECT_NE(out.find("removed s3://" + h.bucket() + "/m/one.txt (event)"), std::string::npos)
      << out;
  h.Stop();

  // JSON lines, one "event" line per event with key, action and delay; no secrets anywhere.
  std::string log = ReadFile(log_file);
  std::istringstream lines(log);
  std::string line;
  int events = 0, lines_seen = 0;
  bool removal_line = false;
  while (std::getline(lines, line)) {
    ++lines_seen;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << line;
    ASSERT_TRUE(j.contains("time") && j.contains("level") && j.contains("msg")) << line;
    if (j["msg"] == "event") {
      ++events;
      if (j.value("action", "") == "remove" && j.value("key", "") == "m/one.txt" &&
          j.value("outcome", "") == "removed" && j.contains("delay_s")) {
        removal_line = true;
      }
    }
  }
  EXPECT_GT(lines_seen, 5);
  EXPECT_EQ(events, 2) << log;
  EXPECT_TRUE(removal_line) << log;
  EXPECT_EQ(log.find(h.env().at("AWS_SECRET_ACCESS_KEY")), std::string::npos);
  EXPECT_EQ(log.find(h.token()), std::string::npos);
  if (!::testing::Test::HasFailure()) std::filesystem::remove_all(log_dir);
}

TEST(OpsTest, ReadyzNamesTheObjectStoreWhenItsEndpointIsWrong) {
  std::map<std::string, std::string> env = ReadRgwEnv();
  ASSERT_FALSE(env.empty());
  env["AWS_ENDPOINT_URL_S3"] = "http://127.0.0.1:" + std::to_string(FreePort());
  env["AWS_ENDPOINT_URL"] = env["AWS_ENDPOINT_URL_S3"];
  ServeProcess p;
  p.Start(env, {"--bucket", "no-such-bucket", "--readyz-timeout", "2s"});
  httplib::Client mc("127.0.0.1", p.metrics_port());
  auto r = mc.Get("/readyz");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503) << r->body;
  EXPECT_EQ(r->get_header_value("Retry-After"), "5");
  nlohmann::json j = nlohmann::json::parse(r->body);
  EXPECT_FALSE(j["ready"].get<bool>());
  for (const auto& c : j["checks"]) {
    if (c["name"] == "s3") {
      EXPECT_FALSE(c["ok"].get<bool>()) << r->body;
    } else {
      EXPECT_TRUE(c["ok"].get<bool>()) << r->body;  // state and cache are fine
    }
  }
  // The cache check fails when the reserved folder cannot take a file.
  std::filesystem::permissions(p.cache() + "/.delete-sync", std::filesystem::perms::owner_read |
                                                                std::filesystem::perms::owner_exec);
  if (geteuid() != 0) {  // root writes anyway
    auto r2 = mc.Get("/readyz");
    ASSERT_TRUE(r2);
    EXPECT_NE(r2->body.find(R"({"name":"cache","ok":false)"), std::string::npos) << r2->body;
  }
  std::filesystem::permissions(p.cache() + "/.delete-sync", std::filesystem::perms::owner_all);
  EXPECT_EQ(p.Stop(), 0);
  p.Cleanup();
}

// The s3 check of /readyz, in a /readyz answer.
nlohmann::json S3Check(const std::string& body) {
  nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.contains("checks")) return {};
  for (const auto& c : j["checks"]) {
    if (c["name"] == "s3") return c;
  }
  return {};
}

TEST(OpsTest, ABucketThatDoesNotExistIsNotReadyAndLoggedAtStartButEventsAreStillApplied) {
  std::map<std::string, std::string> env = ReadRgwEnv();
  ASSERT_FALSE(env.empty());
  const std::string bucket = "no-such-bucket-xyz";
  ServeProcess p;
  p.Start(env, {"--bucket", bucket});
  httplib::Client mc("127.0.0.1", p.metrics_port());
  auto r = mc.Get("/readyz");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503) << r->body;
  nlohmann::json s3 = S3Check(r->body);
  ASSERT_FALSE(s3.is_null()) << r->body;
  EXPECT_FALSE(s3["ok"].get<bool>()) << r->body;
  EXPECT_NE(s3["detail"].get<std::string>().find("bucket '" + bucket + "' does not exist"),
            std::string::npos)
      << r->body;
  // The start-up check names the cause in serve's log, at level error.
  EXPECT_TRUE(WaitFor(
      [&] {
        return p.Stderr().find("error object store: bucket '" + bucket + "' does not exist") !=
               std::string::npos;
      },
      std::chrono::seconds(10)))
      << p.Stderr();
  // The service keeps running: a removal is still applied (it needs no store).
  httplib::Client wc("127.0.0.1", p.port());
  auto post = wc.Post("/?token=" + p.token(), RemovalDoc(bucket, "ObjectRemoved:Delete", "a.txt"),
                      "application/json");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 200) << post->body;
  EXPECT_EQ(p.Stop(), 0);
  p.Cleanup();
}

TEST(OpsTest, AWrongSecretIsNotReadyAndNamedWithoutShowingIt) {
  std::map<std::string, std::string> env = ReadRgwEnv();
  ASSERT_FALSE(env.empty());
  const std::string secret = "wrong-secret-" + RandomSuffix();
  env["AWS_SECRET_ACCESS_KEY"] = secret;
  ServeProcess p;
  p.Start(env, {"--bucket", "no-such-bucket-xyz"});
  httplib::Client mc("127.0.0.1", p.metrics_port());
  auto r = mc.Get("/readyz");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503) << r->body;
  nlohmann::json s3 = S3Check(r->body);
  ASSERT_FALSE(s3.is_null()) << r->body;
  EXPECT_NE(s3["detail"].get<std::string>().find("check AWS_SECRET_ACCESS_KEY"), std::string::npos)
      << r->body;
  EXPECT_TRUE(WaitFor(
      [&] { return p.Stderr().find("error object store: access denied") != std::string::npos; },
      std::chrono::seconds(10)))
      << p.Stderr();
  EXPECT_EQ(r->body.find(secret), std::string::npos);
  EXPECT_EQ(p.Stop(), 0);
  EXPECT_EQ(p.Stderr().find(secret), std::string::npos);
  p.Cleanup();
}

TEST(OpsTest, SigtermLeavesACreationNotDownloadedInTheJournal) {
  // The store is unreachable: the download of a journaled creation keeps failing (transient),
  // so it is still waiting when SIGTERM arrives.
  std::map<std::string, std::string> env = ReadRgwEnv();
  ASSERT_FALSE(env.empty());
  env["AWS_ENDPOINT_URL_S3"] = "http://127.0.0.1:" + std::to_string(FreePort());
  env["AWS_ENDPOINT_URL"] = env["AWS_ENDPOINT_URL_S3"];
  env["AWS_MAX_ATTEMPTS"] = "1";
  ServeProcess p;
  p.Start(env, {"--bucket", "b", "--fetch-concurrency", "1"});
  httplib::Client c("127.0.0.1", p.port());
  std::string doc = RemovalDoc("b", "ObjectCreated:Put", "waiting.txt");
  auto r = c.Post("/?token=" + p.token(), doc, "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;  // journaled durably
  EXPECT_EQ(p.Stop(), 0) << p.Stderr();
  std::string err = p.Stderr();
  EXPECT_NE(err.find("received SIGTERM, stopping"), std::string::npos) << err;
  EXPECT_NE(err.find("stopped: "), std::string::npos) << err;
  // The state store was closed cleanly: another process opens it and finds the job waiting.
  std::string out;
  ASSERT_EQ(RunCommand({DS_BINARY, "status", "--cache", p.cache()}, {}, &out), 0) << out;
  EXPECT_NE(out.find("downloads waiting: 1"), std::string::npos) << out;
  EXPECT_FALSE(Exists(p.cache() + "/waiting.txt"));
  p.Cleanup();
}

TEST(OpsTest, SighupReopensTheLogFile) {
  std::map<std::string, std::string> env = ReadRgwEnv();
  ASSERT_FALSE(env.empty());
  ServeProcess p;
  std::string log_dir = std::filesystem::temp_directory_path() / ("ds-ops-log-" + RandomSuffix());
  std::filesystem::create_directories(log_dir);
  const std::string log = log_dir + "/serve.log";
  p.Start(env, {"--bucket", "b", "--log-file", log});
  // The listener answers before serve has logged that it serves (the line comes once every
  // thread is started), so the line is waited for.
  EXPECT_TRUE(WaitFor([&] {
    return ReadFile(log).find("delete-sync serving") != std::string::npos;
  })) << ReadFile(log);
  // logrotate moves the file away, then signals.
  std::filesystem::rename(log, log + ".1");
  httplib::Client c("127.0.0.1", p.port());
  auto before = c.Post("/?token=" + p.token(), RemovalDoc("b", "ObjectRemoved:Delete", "before"),
                       "application/json");
  ASSERT_TRUE(before);
  kill(p.pid(), SIGHUP);
  ASSERT_TRUE(WaitFor([&] { return ReadFile(log).find("log file reopened") != std::string::npos; }))
      << p.Stderr();
  auto after = c.Post("/?token=" + p.token(), RemovalDoc("b", "ObjectRemoved:Delete", "after"),
                      "application/json");
  ASSERT_TRUE(after);
  EXPECT_EQ(p.Stop(), 0);
  std::string old_log = ReadFile(log + ".1"), new_log = ReadFile(log);
  EXPECT_NE(old_log.find("key=before"), std::string::npos) << old_log;
  EXPECT_EQ(old_log.find("key=after"), std::string::npos) << old_log;
  EXPECT_NE(new_log.find("key=after"), std::string::npos) << new_log;
  EXPECT_NE(new_log.find("stopped: "), std::string::npos) << new_log;
  p.Cleanup();
  if (!::testing::Test::HasFailure()) std::filesystem::remove_all(log_dir);
}

TEST(OpsTest, StatusPageRendersInHeadlessChromium) {
  if (!Exists("/usr/bin/chromium")) {
    GTEST_SKIP() << "chromium is not installed (scripts/install-deps.sh installs it)";
  }
  ServiceHarness h;
  int metrics_port = FreePort();
  h.Start({"--metrics-listen", "127.0.0.1:" + std::to_string(metrics_port)});
  ASSERT_TRUE(h.s3().PutObject(h.bucket(), "page/a.txt", "a").ok());
  ASSERT_TRUE(h.WaitContent("page/a.txt", "a"));
  ASSERT_TRUE(h.s3().DeleteObject(h.bucket(), "page/a.txt", "").ok());
  ASSERT_TRUE(h.WaitGone("page/a.txt"));
  // A refused key shows in its own table.
  httplib::Client c = h.Client();
  auto refused =
      c.Post("/?token=" + h.token(), RemovalDoc(h.bucket(), "ObjectRemoved:Delete", "../escape"),
             "application/json");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 422);

  const std::string url = "http://127.0.0.1:" + std::to_string(metrics_port) + "/";
  const std::string png = h.dir() + "/status.png";
  const std::vector<std::string> chrome = {"/usr/bin/chromium", "--headless",
                                           "--no-sandbox",      "--disable-gpu",
                                           "--hide-scrollbars", "--window-size=1200,1600"};
  std::string out;
  std::vector<std::string> shot = chrome;
  shot.push_back("--screenshot=" + png);
  shot.push_back(url);
  ASSERT_EQ(RunCommand(shot, {}, &out), 0) << out;
  // Decoded: the expected size, mostly not blank, and the removal delay chart's bars (#c0392b).
  std::string stats;
  ASSERT_EQ(
      RunCommand({"python3", std::string(DS_SOURCE_DIR) + "/tests/integration/ops_png_check.py",
                  png, "c0392b"},
                 {}, &stats),
      0)
      << stats;
  int width = 0, height = 0;
  long non_white = 0, bar_pixels = 0;
  std::istringstream(stats) >> width >> height >> non_white >> bar_pixels;
  EXPECT_EQ(width, 1200) << stats;
  EXPECT_EQ(height, 1600) << stats;
  EXPECT_GT(non_white, 20000) << stats;      // text, tables, tiles
  EXPECT_GT(bar_pixels, 36 * 100) << stats;  // one full-height bar (36 x 140 px) at least

  std::vector<std::string> dump = chrome;
  dump.push_back("--dump-dom");
  dump.push_back(url);
  ASSERT_EQ(RunCommand(dump, {}, &out), 0) << out;
  EXPECT_NE(out.find("<title>delete-sync status</title>"), std::string::npos) << out;
  EXPECT_NE(out.find("id=\"delay-chart-remove\""), std::string::npos) << out;
  EXPECT_NE(out.find("id=\"removals\""), std::string::npos) << out;
  EXPECT_NE(out.find("s3://" + h.bucket() + "/page/a.txt"), std::string::npos) << out;
  EXPECT_NE(out.find("id=\"refusals\""), std::string::npos) << out;
  EXPECT_NE(out.find("../escape"), std::string::npos) << out;
  EXPECT_NE(out.find("id=\"reconciles\""), std::string::npos) << out;
  // On the webhook port the page needs the token.
  auto page = c.Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 401);
}

}  // namespace
}  // namespace ds::itest
