// setup-notifications against the real RGW (issue 19, seen 5): RGW 16.2 keeps its own copy of
// the topic inside the bucket's notification, so a new token or endpoint written to the topic
// alone never took effect, and setup-notifications said "unchanged". Now what differs is changed,
// the notification is written again, and RGW pushes with the new settings.
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <string>
#include <thread>

#include "service_harness.h"

namespace ds::itest {
namespace {

double MetricValue(const std::string& metrics, const std::string& name) {
  size_t at = metrics.find("\n" + name + " ");
  if (at == std::string::npos) return -1;
  return std::stod(metrics.substr(at + name.size() + 2));
}

TEST(SetupNotifications, ATokenChangeReachesRgwAndNothingElseIsWritten) {
  ServiceHarness h;
  h.Start();
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  // The harness wired the bucket with topic t-<bucket>, notification id t-<bucket>.
  const std::string topic = "t-" + h.bucket();
  const std::string base = "http://127.0.0.1:" + std::to_string(h.port()) + "/?token=";
  auto setup = [&](const std::string& token, std::string* out) {
    return RunCommand({DS_BINARY, "setup-notifications", "--bucket", h.bucket(), "--topic", topic,
                       "--id", topic, "--push-endpoint", base + token},
                      h.env(), out);
  };
  std::string out;
  // As it is: nothing written.
  ASSERT_EQ(setup(h.token(), &out), 0) << out;
  EXPECT_NE(out.find("topic " + topic + ": arn:"), std::string::npos) << out;
  EXPECT_NE(out.find("(unchanged)\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("update topic"), std::string::npos) << out;
  EXPECT_EQ(out.find("create topic"), std::string::npos) << out;
  // A token serve does not know: the topic is updated and the notification written again, so
  // RGW's next push carries it and serve refuses it.
  ASSERT_EQ(setup("not-the-token", &out), 0) << out;
  EXPECT_NE(out.find("update topic " + topic + ": push-endpoint"), std::string::npos) << out;
  EXPECT_NE(out.find("(the token or password differs)"), std::string::npos) << out;
  EXPECT_EQ(out.find("not-the-token"), std::string::npos) << "a token was printed: " << out;
  EXPECT_NE(out.find("write notification " + topic + " on bucket " + h.bucket() + " again"),
            std::string::npos)
      << out;
  ASSERT_TRUE(h.s3().PutObject(h.bucket(), "refused.txt", "x").ok());
  httplib::Client c = h.Client();
  const std::string metrics_path = "/metrics?token=" + h.token();
  EXPECT_TRUE(WaitFor([&] {
    auto m = c.Get(metrics_path.c_str());
    return m && MetricValue(m->body, "delete_sync_webhook_unauthorised_total") >= 1;
  })) << "RGW still pushes with the old token";
  // Back to serve's token: accepted again.
  ASSERT_EQ(setup(h.token(), &out), 0) << out;
  EXPECT_NE(out.find("update topic"), std::string::npos) << out;
  ASSERT_TRUE(h.s3().PutObject(h.bucket(), "accepted.txt", "y").ok());
  EXPECT_TRUE(h.WaitContent("accepted.txt", "y"));
  // --dry-run with a difference shows it and writes nothing.
  ASSERT_EQ(RunCommand(
                {DS_BINARY, "setup-notifications", "--bucket", h.bucket(), "--topic", topic, "--id",
                 topic, "--push-endpoint", base + h.token(), "--persistent", "true", "--dry-run"},
                h.env(), &out),
            0)
      << out;
  EXPECT_NE(out.find("would update topic " + topic + ": persistent false -> true"),
            std::string::npos)
      << out;
  ASSERT_EQ(setup(h.token(), &out), 0) << out;
  EXPECT_EQ(out.find("update topic"), std::string::npos) << "the dry run changed it: " << out;
}

// Token rotation as OPERATIONS.md describes it, while the bucket is being written: the new
// token is added to --webhook-token-file and serve told (SIGHUP), the notification switched to it
// (setup-notifications), the old token removed (SIGHUP). Every object written across the switch
// reaches the cache; afterwards the old token is refused and the new one accepted.
TEST(SetupNotifications, TokenRotationLosesNoEvent) {
  ServiceHarness h;
  h.UseTokenFile();
  h.Start({"--reconcile-every", "off"});  // only events may fill the cache
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  const std::string topic = "t-" + h.bucket();
  const std::string old_token = h.token(), new_token = "rotated-" + RandomSuffix();
  const std::string base = "http://127.0.0.1:" + std::to_string(h.port()) + "/?token=";

  std::atomic<bool> stop{false};
  std::atomic<int> written{0};
  std::thread writer([&] {
    for (int i = 0; !stop; ++i) {
      if (!h.s3().PutObject(h.bucket(), "rot/" + std::to_string(i), std::to_string(i)).ok()) break;
      written = i + 1;
    }
  });
  auto wait_log = [&](const std::string& text) {
    return WaitFor([&] { return h.Log().find(text) != std::string::npos; });
  };
  WaitFor([&] { return written.load() >= 5; });
  std::ofstream(h.token_file()) << "# rotation in progress\n"
                                << old_token << "\n"
                                << new_token << "\n";
  h.Hup();
  EXPECT_TRUE(wait_log("the webhook accepts 2 token(s)")) << h.Log();
  std::string out;
  ASSERT_EQ(RunCommand({DS_BINARY, "setup-notifications", "--bucket", h.bucket(), "--topic", topic,
                        "--id", topic, "--push-endpoint", base + new_token},
                       h.env(), &out),
            0)
      << out;
  int at_switch = written.load();
  WaitFor([&] { return written.load() >= at_switch + 5; });
  std::ofstream(h.token_file()) << new_token << "\n";
  h.Hup();
  EXPECT_TRUE(wait_log("the webhook accepts 1 token(s)")) << h.Log();
  at_switch = written.load();
  WaitFor([&] { return written.load() >= at_switch + 5; });
  stop = true;
  writer.join();
  ASSERT_GE(written.load(), 15);
  for (int i = 0; i < written.load(); ++i) {
    EXPECT_TRUE(h.WaitContent("rot/" + std::to_string(i), std::to_string(i))) << i;
  }
  httplib::Client c = h.Client();
  const std::string empty = R"({"Records":[]})";
  auto r = c.Post(("/?token=" + old_token).c_str(), empty, "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  r = c.Post(("/?token=" + new_token).c_str(), empty, "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
}

}  // namespace
}  // namespace ds::itest
