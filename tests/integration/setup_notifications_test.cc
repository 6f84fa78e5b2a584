// setup-notifications against the real RGW (issue 19, seen 5): RGW 16.2 keeps its own copy of
// the topic inside the bucket's notification, so a new token or endpoint written to the topic
// alone never took effect, and setup-notifications said "unchanged". Now what differs is changed,
// the notification is written again, and RGW pushes with the new settings.
#include <gtest/gtest.h>

#include <string>

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

}  // namespace
}  // namespace ds::itest
