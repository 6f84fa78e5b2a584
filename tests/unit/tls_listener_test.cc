// TLS on the listeners (issue 19, item 3): the certificate served, plain HTTP on a TLS port,
// rotation on reload, client certificates, and what Load refuses. A CA made by the test issues
// every certificate; libcurl (OpenSSL) is the client, as curl would be.
#include <curl/curl.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "fakes/raw_conn.h"
#include "fakes/test_ca.h"
#include "transport/http_listener.h"
#include "transport/tls_credentials.h"

namespace ds {
namespace {

using testing::TestCa;
using testing::TestCert;

class EchoHandler : public HttpHandler {
 public:
  Admission Admit(const RequestHead& head) override {
    Admission a;
    if (!HeadHasToken(head, "tok")) {
      HttpReply r;
      r.status = 401;
      r.body = "no";
      a.reply = r;
      return a;
    }
    a.authenticated = true;
    return a;
  }
  HttpReply Handle(const RequestHead&, std::string body) override {
    HttpReply r;
    r.body = "got:" + body;
    return r;
  }
};

struct CurlResult {
  CURLcode code = CURLE_OK;
  long status = 0;
  std::string body;
};

size_t Append(char* p, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(p, size * n);
  return size * n;
}

// A POST over HTTPS trusting `ca_pem` only; with `client` set, presenting that certificate.
CurlResult Post(int port, const std::string& ca_pem, const TestCert* client = nullptr) {
  CurlResult r;
  CURL* c = curl_easy_init();
  std::string url = "https://127.0.0.1:" + std::to_string(port) + "/";
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_blob ca{const_cast<char*>(ca_pem.data()), ca_pem.size(), CURL_BLOB_COPY};
  curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &ca);
  curl_easy_setopt(c, CURLOPT_CAPATH, nullptr);
  curl_blob cert{}, key{};
  if (client != nullptr) {
    cert = {const_cast<char*>(client->cert_pem.data()), client->cert_pem.size(), CURL_BLOB_COPY};
    key = {const_cast<char*>(client->key_pem.data()), client->key_pem.size(), CURL_BLOB_COPY};
    curl_easy_setopt(c, CURLOPT_SSLCERT_BLOB, &cert);
    curl_easy_setopt(c, CURLOPT_SSLCERTTYPE, "PEM");
    curl_easy_setopt(c, CURLOPT_SSLKEY_BLOB, &key);
    curl_easy_setopt(c, CURLOPT_SSLKEYTYPE, "PEM");
  }
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, "hello");
  curl_slist* headers = curl_slist_append(nullptr, "Authorization: Bearer tok");
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &Append);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
  r.code = curl_easy_perform(c);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(c);
  return r;
}

class TlsListenerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("ds-tls-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    if (listener_) listener_->Stop();
    std::filesystem::remove_all(dir_);
  }

  std::string Write(const std::string& name, const std::string& text) {
    std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
    return path;
  }
  void WritePair(const TestCert& c) {
    Write("cert.pem", c.cert_pem);
    Write("key.pem", c.key_pem);
  }
  TlsFiles Files(const std::string& client_ca = "") {
    return TlsFiles{(dir_ / "cert.pem").string(), (dir_ / "key.pem").string(), client_ca,
                    "--webhook"};
  }
  // Loads the credentials and starts a TLS listener with them.
  void Start(const TlsFiles& files, int request_timeout_s = 10) {
    Result<std::shared_ptr<TlsCredentials>> creds = TlsCredentials::Load(files);
    ASSERT_TRUE(creds.ok()) << creds.status().message();
    creds_ = *creds;
    ListenerOptions o;
    o.tls = creds_;
    o.request_timeout_s = request_timeout_s;
    listener_ = std::make_unique<HttpListener>(o, handler_);
    Status s = listener_->Start();
    ASSERT_TRUE(s.ok()) << s.message();
  }

  std::filesystem::path dir_;
  EchoHandler handler_;
  std::shared_ptr<TlsCredentials> creds_;
  std::unique_ptr<HttpListener> listener_;
};

TEST_F(TlsListenerTest, ServesHttpsWithTheConfiguredCertificate) {
  TestCa ca("test CA"), other("another CA");
  WritePair(ca.Issue("localhost"));
  Start(Files());
  EXPECT_EQ(ListenerUrl(listener_->options(), listener_->port()),
            "https://127.0.0.1:" + std::to_string(listener_->port()) + "/");

  CurlResult ok = Post(listener_->port(), ca.cert_pem());
  ASSERT_EQ(ok.code, CURLE_OK) << curl_easy_strerror(ok.code);
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.body, "got:hello");
  // A client that trusts another CA does not accept the server.
  CurlResult untrusted = Post(listener_->port(), other.cert_pem());
  EXPECT_EQ(untrusted.code, CURLE_PEER_FAILED_VERIFICATION) << curl_easy_strerror(untrusted.code);
}

TEST_F(TlsListenerTest, PlainHttpToATlsPortGetsNoHttpAnswer) {
  TestCa ca("test CA");
  WritePair(ca.Issue("localhost"));
  Start(Files());
  fakes::RawConn conn(listener_->port());
  ASSERT_TRUE(conn.connected());
  ASSERT_TRUE(conn.Send("POST /?token=tok HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"));
  bool closed = false;
  std::string answer = conn.ReadUntilClosed(&closed);
  EXPECT_TRUE(closed);
  EXPECT_EQ(answer.find("HTTP/"), std::string::npos) << answer;
  EXPECT_EQ(answer.find("got:"), std::string::npos) << answer;
}

TEST_F(TlsListenerTest, ReloadServesTheNewPairToNewConnectionsAndABadOneChangesNothing) {
  TestCa first("first CA"), second("second CA");
  WritePair(first.Issue("one"));
  Start(Files());
  ASSERT_EQ(Post(listener_->port(), first.cert_pem()).status, 200);
  EXPECT_EQ(creds_->info().subject, "CN=one");

  WritePair(second.Issue("two"));
  Status s = creds_->Reload();
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(creds_->info().subject, "CN=two");
  EXPECT_EQ(Post(listener_->port(), second.cert_pem()).status, 200);
  EXPECT_EQ(Post(listener_->port(), first.cert_pem()).code, CURLE_PEER_FAILED_VERIFICATION);

  // A half-written rotation (garbage, or a key that is not the certificate's) is refused and
  // the pair in use stays.
  Write("cert.pem", "not a certificate\n");
  s = creds_->Reload();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("--webhook-tls-cert"), std::string::npos) << s.message();
  Write("cert.pem", first.Issue("three").cert_pem);  // key.pem is still two's
  s = creds_->Reload();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("is not the key of the certificate"), std::string::npos)
      << s.message();
  EXPECT_EQ(creds_->info().subject, "CN=two");
  EXPECT_EQ(Post(listener_->port(), second.cert_pem()).status, 200);
}

TEST_F(TlsListenerTest, ClientCertificatesFromTheClientCaOnly) {
  TestCa ca("server CA"), clients("client CA"), stranger("stranger CA");
  WritePair(ca.Issue("localhost"));
  std::string client_ca = Write("clients.pem", clients.cert_pem());
  Start(Files(client_ca));

  const TestCert good = clients.Issue("prometheus", TestCa::kClient);
  CurlResult r = Post(listener_->port(), ca.cert_pem(), &good);
  ASSERT_EQ(r.code, CURLE_OK) << curl_easy_strerror(r.code);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "got:hello");

  // No certificate, one of another CA, one of the right CA but not for client authentication,
  // an expired one: 403 before the handler sees the request.
  const TestCert foreign = stranger.Issue("intruder", TestCa::kClient);
  const TestCert server_only = clients.Issue("server-purpose", TestCa::kServer);
  const TestCert expired = clients.Issue("old", TestCa::kClient, -3600);
  for (const TestCert* c :
       {static_cast<const TestCert*>(nullptr), &foreign, &server_only, &expired}) {
    CurlResult refused = Post(listener_->port(), ca.cert_pem(), c);
    EXPECT_EQ(refused.status, 403)
        << (c ? c->cert_pem : "no certificate") << " " << curl_easy_strerror(refused.code);
    EXPECT_EQ(refused.body.find("got:"), std::string::npos);
  }
  EXPECT_EQ(listener_->Stats().no_client_cert, 4);
}

TEST_F(TlsListenerTest, AClientThatNeverFinishesTheHandshakeIsCut) {
  TestCa ca("test CA");
  WritePair(ca.Issue("localhost"));
  Start(Files(), /*request_timeout_s=*/1);
  fakes::RawConn conn(listener_->port());
  ASSERT_TRUE(conn.connected());
  ASSERT_TRUE(conn.Send(std::string("\x16\x03\x01\x02\x00", 5)));  // a ClientHello's header
  bool closed = false;
  conn.ReadUntilClosed(&closed);
  EXPECT_TRUE(closed);
  EXPECT_GE(listener_->Stats().timed_out, 1);
}

TEST(TlsCredentialsTest, LoadRefusesWhatCouldNeverServe) {
  TestCa ca("test CA");
  const TestCert a = ca.Issue("a"), b = ca.Issue("b");
  auto dir = std::filesystem::temp_directory_path() / ("ds-tls-load-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto write = [&](const std::string& name, const std::string& text) {
    std::string p = (dir / name).string();
    std::ofstream(p, std::ios::binary | std::ios::trunc) << text;
    return p;
  };
  const std::string cert = write("a.pem", a.cert_pem), key = write("a.key", a.key_pem),
                    other_key = write("b.key", b.key_pem), empty = write("empty.pem", ""),
                    junk = write("junk.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n");
  struct Case {
    TlsFiles files;
    std::string says;
  } cases[] = {
      {{(dir / "missing.pem").string(), key, "", "--webhook"}, "cannot read --webhook-tls-cert"},
      {{cert, (dir / "missing.key").string(), "", "--metrics"}, "cannot read --metrics-tls-key"},
      {{empty, key, "", "--webhook"}, "--webhook-tls-cert " + empty + " is empty"},
      {{junk, key, "", "--webhook"}, "--webhook-tls-cert " + junk},
      {{cert, cert, "", "--webhook"}, "holds no usable PEM private key"},
      {{cert, other_key, "", "--webhook"}, "is not the key of the certificate"},
      {{cert, key, junk, "--webhook"}, "--webhook-client-ca " + junk},
  };
  for (const Case& c : cases) {
    Result<std::shared_ptr<TlsCredentials>> r = TlsCredentials::Load(c.files);
    ASSERT_FALSE(r.ok()) << c.says;
    EXPECT_NE(r.status().message().find(c.says), std::string::npos) << r.status().message();
  }
  EXPECT_TRUE(TlsCredentials::Load({cert, key, "", "--webhook"}).ok());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ds
