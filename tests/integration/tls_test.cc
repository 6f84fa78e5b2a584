// TLS on the webhook and --metrics-listen (issue 19, item 3), against the real RGW: radosgw
// pushes to an https:// endpoint with verify-ssl on (the RGW lab's CA, which radosgw trusts,
// issues the certificate), curl is the operator's client, SIGHUP rotates the certificate.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "fakes/test_ca.h"
#include "service_harness.h"

namespace ds::itest {
namespace {

// Writes `text` to DIR/NAME; returns that path.
std::string WriteIn(const std::string& dir, const std::string& name, const std::string& text) {
  std::ofstream(dir + "/" + name, std::ios::trunc) << text;
  return dir + "/" + name;
}

TEST(TlsListener, RgwPushesOverHttpsWithVerifySslAndPlainHttpGetsNothing) {
  ServiceHarness h;
  h.UseTls();
  h.Start();
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  EXPECT_NE(h.Log().find("webhook listening on https://127.0.0.1:"), std::string::npos);

  for (int i = 0; i < 5; ++i) {
    std::string key = "tls/" + std::to_string(i);
    ASSERT_TRUE(h.s3().PutObject(h.bucket(), key, "v" + std::to_string(i)).ok()) << key;
  }
  for (int i = 0; i < 5; ++i) {
    std::string key = "tls/" + std::to_string(i);
    EXPECT_TRUE(h.WaitContent(key, "v" + std::to_string(i))) << key;
  }
  ASSERT_TRUE(h.s3().DeleteObject(h.bucket(), "tls/0").ok());
  EXPECT_TRUE(h.WaitGone("tls/0"));

  // The operator's routes answer over TLS with the token; /readyz too.
  std::string out;
  EXPECT_EQ(h.Curl({"/readyz?token=" + h.token()}, &out), 0) << out;
  EXPECT_EQ(h.Curl({"/metrics", "-H", "Authorization: Bearer " + h.token()}, &out), 0) << out;
  EXPECT_NE(out.find("delete_sync_events_received_total"), std::string::npos) << out;
  EXPECT_NE(out.find("delete_sync_webhook_tls_certificate_expiry_timestamp_seconds"),
            std::string::npos)
      << out;

  // setup-notifications reads the https topic back as it is; an http:// endpoint to another
  // host is warned about (the token would cross the network in clear).
  const std::string topic = "t-" + h.bucket();
  ASSERT_EQ(RunCommand({DS_BINARY, "setup-notifications", "--bucket", h.bucket(), "--topic", topic,
                        "--id", topic, "--push-endpoint",
                        "https://127.0.0.1:" + std::to_string(h.port()) + "/?token=" + h.token()},
                       h.env(), &out),
            0)
      << out;
  EXPECT_NE(out.find("(unchanged)"), std::string::npos) << out;
  ASSERT_EQ(RunCommand({DS_BINARY, "setup-notifications", "--bucket", h.bucket(), "--topic", topic,
                        "--id", topic, "--push-endpoint",
                        "http://192.0.2.1:8089/?token=" + h.token(), "--dry-run"},
                       h.env(), &out),
            0)
      << out;
  EXPECT_NE(out.find("warning: http:// to 192.0.2.1 sends the token and the notifications in "
                     "clear"),
            std::string::npos)
      << out;

  // Plain HTTP to the TLS port: no HTTP answer at all (curl: empty reply or reset), and no
  // document applied.
  int rc = RunCommand({"curl", "-sS", "--noproxy", "*", "-m", "10", "-d", R"({"Records":[]})",
                       "http://127.0.0.1:" + std::to_string(h.port()) + "/?token=" + h.token()},
                      {}, &out);
  EXPECT_TRUE(rc == 52 || rc == 56) << rc << ": " << out;
  EXPECT_EQ(out.find("HTTP/"), std::string::npos) << out;
}

// A certificate rotated on disk is served after SIGHUP to new connections, while RGW keeps
// pushing: nothing is lost across the switch. A broken rotation (key not matching) is refused
// and the previous certificate stays.
TEST(TlsListener, SighupRotatesTheCertificateWithoutLosingAnEvent) {
  ServiceHarness h;
  h.UseTls();
  h.Start();
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  auto subject_served = [&] {
    std::string out;
    RunCommand({"sh", "-c",
                "openssl s_client -connect 127.0.0.1:" + std::to_string(h.port()) +
                    " </dev/null 2>/dev/null | openssl x509 -noout -subject"},
               {}, &out);
    return out;
  };
  EXPECT_NE(subject_served().find("delete-sync webhook"), std::string::npos);

  ASSERT_TRUE(h.s3().PutObject(h.bucket(), "before", "1").ok());
  EXPECT_TRUE(h.WaitContent("before", "1"));

  h.IssueWebhookCertificate("rotated webhook");
  h.Hup();
  EXPECT_TRUE(WaitFor([&] {
    return h.Log().find("SIGHUP: --webhook-listen uses TLS, certificate CN=rotated webhook") !=
           std::string::npos;
  })) << h.Log();
  EXPECT_NE(subject_served().find("rotated webhook"), std::string::npos);
  ASSERT_TRUE(h.s3().PutObject(h.bucket(), "after", "2").ok());
  ASSERT_TRUE(h.s3().DeleteObject(h.bucket(), "before").ok());
  EXPECT_TRUE(h.WaitContent("after", "2"));
  EXPECT_TRUE(h.WaitGone("before"));

  // Half a rotation: a new certificate whose key is not there yet.
  testing::TestCa ca(ReadFile(h.lab_ca_file()), ReadFile(h.env().at("DS_RGW_CA_KEY")));
  std::ofstream(h.tls_dir() + "/webhook.pem", std::ios::trunc) << ca.Issue("half").cert_pem;
  h.Hup();
  EXPECT_TRUE(WaitFor([&] {
    return h.Log().find("keeps its certificate (TLS, certificate CN=rotated webhook") !=
           std::string::npos;
  })) << h.Log();
  ASSERT_TRUE(h.s3().PutObject(h.bucket(), "still", "3").ok());
  EXPECT_TRUE(h.WaitContent("still", "3"));
  EXPECT_NE(subject_served().find("rotated webhook"), std::string::npos);
}

// --metrics-listen with TLS and client certificates: curl without a certificate gets 403, with
// one issued by --metrics-client-ca the metrics; the webhook stays plain on loopback.
TEST(TlsListener, MetricsListenerWithClientCertificates) {
  testing::TestCa server_ca("metrics server CA"), client_ca("metrics client CA");
  ServiceHarness h;
  const std::string dir = std::filesystem::temp_directory_path() / ("ds-it-mtls-" + RandomSuffix());
  std::filesystem::create_directories(dir);
  auto write = [&](const std::string& name, const std::string& text) {
    return WriteIn(dir, name, text);
  };
  testing::TestCert server = server_ca.Issue("metrics");
  testing::TestCert prometheus = client_ca.Issue("prometheus", testing::TestCa::kClient);
  const std::string ca_file = write("server-ca.pem", server_ca.cert_pem());
  write("client.pem", prometheus.cert_pem);
  write("client.key", prometheus.key_pem);
  const int metrics_port = FreePort();
  h.Start({"--metrics-listen", "127.0.0.1:" + std::to_string(metrics_port), "--metrics-tls-cert",
           write("metrics.pem", server.cert_pem), "--metrics-tls-key",
           write("metrics.key", server.key_pem), "--metrics-client-ca",
           write("clients.pem", client_ca.cert_pem())});
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  const std::string url = "https://127.0.0.1:" + std::to_string(metrics_port) + "/metrics";
  std::string out;
  int rc = RunCommand({"curl", "-sS", "--noproxy", "*", "-m", "20", "-o", "/dev/null", "-w",
                       "%{http_code}", "--cacert", ca_file, url},
                      {}, &out);
  EXPECT_EQ(out, "403") << rc;
  rc = RunCommand({"curl", "-sS", "--noproxy", "*", "--fail-with-body", "-m", "20", "--cacert",
                   ca_file, "--cert", dir + "/client.pem", "--key", dir + "/client.key", url},
                  {}, &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("delete_sync_events_received_total"), std::string::npos) << out;
  // The webhook itself is plain HTTP here (no --webhook-tls-cert).
  auto r = h.Client().Get("/healthz");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  std::filesystem::remove_all(dir);
}

// Bad TLS settings are refused before anything is opened: exit 2, a message naming the
// setting, no cache folder.
TEST(TlsListener, BadTlsSettingsAreRefusedAtStart) {
  testing::TestCa ca("settings CA");
  testing::TestCert a = ca.Issue("a"), b = ca.Issue("b");
  const std::string dir =
      std::filesystem::temp_directory_path() / ("ds-it-tlsbad-" + RandomSuffix());
  std::filesystem::create_directories(dir);
  auto write = [&](const std::string& name, const std::string& text) {
    return WriteIn(dir, name, text);
  };
  const std::string cert = write("a.pem", a.cert_pem), key = write("a.key", a.key_pem),
                    other_key = write("b.key", b.key_pem);
  const std::map<std::string, std::string> env = {
      {"AWS_ACCESS_KEY_ID", "a"}, {"AWS_SECRET_ACCESS_KEY", "b"}, {"AWS_REGION", "us-east-1"}};
  struct Case {
    std::vector<std::string> args;
    std::string says;
  } cases[] = {
      {{"--webhook-tls-cert", cert}, "--webhook-tls-cert and --webhook-tls-key go together"},
      {{"--webhook-client-ca", cert}, "--webhook-client-ca needs --webhook-tls-cert"},
      {{"--webhook-tls-cert", cert, "--webhook-tls-key", other_key},
       "is not the key of the certificate"},
      {{"--webhook-tls-cert", dir + "/missing.pem", "--webhook-tls-key", key},
       "cannot read --webhook-tls-cert " + dir + "/missing.pem"},
      {{"--metrics-tls-cert", cert, "--metrics-tls-key", key},
       "--metrics-tls-cert is set, but --metrics-listen is off or unset"},
      {{"--webhook-listen", "off", "--amqp-url", "amqp://guest:guest@127.0.0.1/", "--amqp-queue",
        "q", "--webhook-tls-cert", cert, "--webhook-tls-key", key},
       "--webhook-tls-cert is set, but --webhook-listen is off"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> argv = {DS_BINARY,      "serve",           "--cache",
                                     dir + "/cache", "--webhook-token", "t"};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    std::string out;
    EXPECT_EQ(RunCommand(argv, env, &out), 2) << c.says << ": " << out;
    EXPECT_NE(out.find(c.says), std::string::npos) << out;
    EXPECT_FALSE(Exists(dir + "/cache")) << c.says;
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ds::itest
