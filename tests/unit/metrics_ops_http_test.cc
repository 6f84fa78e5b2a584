// The operator endpoints over real sockets (loopback): token rules on the webhook port and on
// a separate --metrics-listen port, 503 + Retry-After while draining; the status page's HTML.
#include <gtest/gtest.h>
#include <httplib.h>

#include "fakes/fakes.h"
#include "transport/http_webhook.h"
#include "transport/ops_http.h"
#include "transport/status_page.h"

namespace ds {
namespace {

std::vector<OpsRoute> TestRoutes() {
  return {{"/metrics", true,
           [] {
             return OpsReply{200, "text/plain", "m 1\n", 0};
           }},
          {"/readyz", false, [] {
             return OpsReply{503, "application/json", "{}", 5};
           }}};
}

ListenerOptions Listen(const std::string& host) {
  ListenerOptions o;
  o.host = host;
  o.port = 0;
  o.setting = "--metrics-listen";
  return o;
}

TEST(IsLoopbackHostTest, Addresses) {
  EXPECT_TRUE(IsLoopbackHost("127.0.0.1"));
  EXPECT_TRUE(IsLoopbackHost("127.1.2.3"));
  EXPECT_TRUE(IsLoopbackHost("::1"));
  EXPECT_TRUE(IsLoopbackHost("[::1]"));
  EXPECT_TRUE(IsLoopbackHost("localhost"));
  EXPECT_FALSE(IsLoopbackHost("0.0.0.0"));
  EXPECT_FALSE(IsLoopbackHost("10.0.0.1"));
  EXPECT_FALSE(IsLoopbackHost("::"));
  EXPECT_FALSE(IsLoopbackHost("128.0.0.1"));
  EXPECT_FALSE(IsLoopbackHost("example.com"));
}

class OpsHttpTest : public ::testing::Test {
 protected:
  OpsHttpTest() {
    EngineOptions o;
    o.bucket = "b";
    engine_ = std::make_unique<Engine>(&store_, cache_, state_, clock_, o);
  }
  fakes::FakeObjectStore store_;
  fakes::FakeCacheFs cache_;
  fakes::FakeStateStore state_;
  fakes::FakeClock clock_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(OpsHttpTest, WebhookPortNeedsTheTokenForMetricsNotForReadiness) {
  WebhookOptions wo;
  wo.listener.port = 0;
  wo.token = "secret";
  WebhookServer server(*engine_, wo, nullptr);
  server.set_ops_routes(TestRoutes());
  ASSERT_TRUE(server.Start().ok());
  httplib::Client c("127.0.0.1", server.port());
  auto no_token = c.Get("/metrics");
  ASSERT_TRUE(no_token);
  EXPECT_EQ(no_token->status, 401);
  EXPECT_EQ(no_token->body.find("m 1"), std::string::npos);
  auto wrong = c.Get("/metrics?token=nope");
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 401);
  auto bearer = c.Get("/metrics", {{"Authorization", "Bearer secret"}});
  ASSERT_TRUE(bearer);
  EXPECT_EQ(bearer->status, 200);
  EXPECT_EQ(bearer->body, "m 1\n");
  auto query = c.Get("/metrics?token=secret");
  ASSERT_TRUE(query);
  EXPECT_EQ(query->status, 200);
  auto ready = c.Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 503);
  EXPECT_EQ(ready->get_header_value("Retry-After"), "5");
  server.Stop();
}

TEST_F(OpsHttpTest, DrainingAnswersPostsWith503AndRetryAfterAndChangesNothing) {
  WebhookOptions wo;
  wo.listener.port = 0;
  wo.token = "secret";
  WebhookServer server(*engine_, wo, nullptr);
  ASSERT_TRUE(server.Start().ok());
  cache_.PutFile("k", "x");
  httplib::Client c("127.0.0.1", server.port());
  const std::string doc =
      R"({"Records":[{"eventSource":"ceph:s3","eventName":"ObjectRemoved:Delete",)"
      R"("s3":{"bucket":{"name":"b"},"object":{"key":"k"}}}]})";
  server.BeginDrain();
  auto r = c.Post("/?token=secret", doc, "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->get_header_value("Retry-After"), "5");
  EXPECT_TRUE(cache_.Has("k"));  // not applied: the sender retries
  auto e = c.Post("/erase?token=secret", "{}", "application/json");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->status, 503);
  EXPECT_EQ(server.inflight(), 0);
  server.Stop();
}

TEST(OpsServerTest, LoopbackListenerNeedsNoToken) {
  OpsServer s(TestRoutes(), Listen("127.0.0.1"), "secret");
  EXPECT_FALSE(s.requires_token());
  ASSERT_TRUE(s.Start().ok());
  httplib::Client c("127.0.0.1", s.port());
  auto r = c.Get("/metrics");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "m 1\n");
  auto post = c.Post("/metrics", "x", "text/plain");  // GET only
  ASSERT_TRUE(post);
  EXPECT_NE(post->status, 200);
  s.Stop();
}

TEST(OpsServerTest, NonLoopbackListenerNeedsTheToken) {
  // Binds 0.0.0.0 but is reached over loopback: the rule follows the listen address.
  OpsServer s(TestRoutes(), Listen("0.0.0.0"), "secret");
  EXPECT_TRUE(s.requires_token());
  ASSERT_TRUE(s.Start().ok());
  httplib::Client c("127.0.0.1", s.port());
  auto r = c.Get("/metrics");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  auto ok = c.Get("/metrics", {{"Authorization", "Bearer secret"}});
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
  auto ready = c.Get("/readyz");  // probes need no token
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 503);
  s.Stop();
  OpsServer no_token({}, Listen("0.0.0.0"), "");
  EXPECT_EQ(no_token.Start().code(), Code::kInvalidArgument);
}

TEST(StatusPageTest, HtmlIsSelfContainedEscapedAndDrawsTheHistogram) {
  StatusSummary s;
  s.cache = "/mnt/data";
  s.bucket = "b";
  s.downloads_failed = 2;
  s.removals.push_back(
      {"2026-01-01T00:00:00.000Z", "b", "<script>alert(1)</script>", "event", "removed", "id1"});
  s.refusals.push_back({"t", "../x", "dot-segment"});
  s.delay_bounds = {0.1, 1};
  s.delay_counts["remove"] = {3, 1, 0};
  std::string html = RenderStatusHtml(s);
  EXPECT_EQ(html.find("<script>"), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
  EXPECT_EQ(html.find("src="), std::string::npos);  // no external assets
  EXPECT_EQ(html.find("href="), std::string::npos);
  EXPECT_NE(html.find("<svg class=\"delay-chart\" id=\"delay-chart-remove\""), std::string::npos);
  // Three bars, the tallest for the first bucket.
  size_t bars = 0;
  for (size_t p = html.find("class=\"bar\""); p != std::string::npos;
       p = html.find("class=\"bar\"", p + 1)) {
    ++bars;
  }
  EXPECT_EQ(bars, 3u);
  EXPECT_NE(html.find("height=\"140\" fill"), std::string::npos);
  EXPECT_NE(html.find("id=\"refusals\""), std::string::npos);
  EXPECT_NE(html.find("id=\"reconciles\""), std::string::npos);  // the empty note keeps the id
  std::string text = RenderStatusText(s);
  EXPECT_NE(text.find("downloads failed: 2"), std::string::npos);
  EXPECT_NE(text.find("removed s3://b/<script>alert(1)</script> (event) [id1]"), std::string::npos);
  EXPECT_NE(text.find("delay (remove):"), std::string::npos);
}

}  // namespace
}  // namespace ds
