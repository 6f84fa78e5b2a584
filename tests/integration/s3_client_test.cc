// S3Client against a real local Ceph RGW (scripts/rgw-local.sh start), plus a few
// behaviours that need a misbehaving server (retries, partial bodies), checked against a
// loopback cpp-httplib server.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "integration/rgw_env.h"
#include "s3/client.h"

namespace ds {
namespace {

std::string Md5Hex(const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), md, &n, EVP_md5(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < n; ++i) {
    out.push_back(kHex[md[i] >> 4]);
    out.push_back(kHex[md[i] & 0xF]);
  }
  return out;
}

std::string RandomBytes(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng() & 0xFF);
  return s;
}

// A port nothing listens on: bind an ephemeral port, then close it.
int ClosedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

// Routes spdlog's default logger, at debug level, into a string while alive.
class LogCapture {
 public:
  LogCapture() : previous_(spdlog::default_logger()) {
    auto logger = std::make_shared<spdlog::logger>(
        "capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(out_));
    logger->set_level(spdlog::level::debug);
    spdlog::set_default_logger(logger);
  }
  ~LogCapture() { spdlog::set_default_logger(previous_); }
  std::string text() const { return out_.str(); }
  size_t Count(const std::string& needle) const {
    std::string t = text();
    size_t n = 0;
    for (size_t pos = t.find(needle); pos != std::string::npos; pos = t.find(needle, pos + 1)) {
      ++n;
    }
    return n;
  }

 private:
  std::ostringstream out_;
  std::shared_ptr<spdlog::logger> previous_;
};

struct Collected {
  std::string body;
  size_t chunks = 0;
  size_t largest_chunk = 0;
};

BodySink CollectInto(Collected* c) {
  return [c](const char* data, size_t size) {
    c->body.append(data, size);
    ++c->chunks;
    c->largest_chunk = std::max(c->largest_chunk, size);
    return Status::Ok();
  };
}

std::vector<std::string> ListKeys(S3Client& client, const std::string& bucket,
                                  const std::string& prefix) {
  std::vector<std::string> keys;
  Status s = client.ListObjects(bucket, prefix, [&](const ObjectInfo& o) {
    keys.push_back(o.key);
    return true;
  });
  EXPECT_TRUE(s.ok()) << s.ToString();
  return keys;
}

// ---- Against RGW --------------------------------------------------------------------------

class S3ClientRgwTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<S3Config> c = testenv::LoadRgwConfig();
    ASSERT_TRUE(c.ok()) << c.status().message();
    config_ = *c;
    client_ = std::make_unique<S3Client>(config_);
    Result<std::string> b = testenv::CreateUniqueBucket(*client_, "s3client");
    ASSERT_TRUE(b.ok()) << b.status().ToString()
                        << " (is RGW running? `scripts/rgw-local.sh start`)";
    bucket_ = *b;
  }

  void TearDown() override {
    if (client_ && !bucket_.empty()) {
      Status s = testenv::EmptyAndDeleteBucket(*client_, bucket_);
      EXPECT_TRUE(s.ok()) << s.ToString();
    }
  }

  S3Config config_;
  std::unique_ptr<S3Client> client_;
  std::string bucket_;
};

TEST_F(S3ClientRgwTest, PutGetHeadStreamsFiveMiB) {
  const std::string body = RandomBytes(5 * 1024 * 1024, 42);
  ASSERT_TRUE(client_
                  ->PutObject(bucket_, "big/object.bin", body,
                              {{"data-subject", "alice"}, {"x-amz-meta-purpose", "test"}})
                  .ok());

  Collected got;
  Result<ObjectInfo> info = client_->GetObject(bucket_, "big/object.bin", "", CollectInto(&got));
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(got.body.size(), body.size());
  EXPECT_TRUE(got.body == body);
  EXPECT_GT(got.chunks, 1u);  // streamed, not handed over in one piece
  EXPECT_LT(got.largest_chunk, body.size());
  EXPECT_EQ(info->key, "big/object.bin");
  EXPECT_EQ(info->size, body.size());
  EXPECT_EQ(info->etag, Md5Hex(body));
  EXPECT_FALSE(info->last_modified.empty());
  EXPECT_EQ(info->metadata["x-amz-meta-data-subject"], "alice");
  EXPECT_EQ(info->metadata["x-amz-meta-purpose"], "test");

  Result<ObjectInfo> head = client_->HeadObject(bucket_, "big/object.bin", "");
  ASSERT_TRUE(head.ok()) << head.status().ToString();
  EXPECT_EQ(head->size, body.size());
  EXPECT_EQ(head->etag, Md5Hex(body));
  EXPECT_EQ(head->metadata["x-amz-meta-data-subject"], "alice");
  EXPECT_EQ(head->last_modified, info->last_modified);
}

TEST_F(S3ClientRgwTest, EmptyObject) {
  ASSERT_TRUE(client_->PutObject(bucket_, "empty", "").ok());
  Collected got;
  Result<ObjectInfo> info = client_->GetObject(bucket_, "empty", "", CollectInto(&got));
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->size, 0u);
  EXPECT_EQ(got.body, "");
}

TEST_F(S3ClientRgwTest, SinkFailureAbortsAndIsReturned) {
  ASSERT_TRUE(client_->PutObject(bucket_, "k", RandomBytes(1024 * 1024, 1)).ok());
  int calls = 0;
  Result<ObjectInfo> r = client_->GetObject(bucket_, "k", "", [&](const char*, size_t) {
    ++calls;
    return Status::Io("disk full");
  });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kIoError);
  EXPECT_EQ(r.status().message(), "disk full");
  EXPECT_EQ(calls, 1);
}

TEST_F(S3ClientRgwTest, ListPaginates) {
  for (int i = 0; i < 25; ++i) {
    char key[32];
    std::snprintf(key, sizeof(key), "page/k%02d", i);
    ASSERT_TRUE(client_->PutObject(bucket_, key, std::to_string(i)).ok());
  }
  ASSERT_TRUE(client_->PutObject(bucket_, "other/x", "x").ok());
  client_->set_list_page_size(7);

  std::vector<ObjectInfo> seen;
  Status s;
  {
    LogCapture log;
    s = client_->ListObjects(bucket_, "page/", [&](const ObjectInfo& o) {
      seen.push_back(o);
      return true;
    });
    EXPECT_EQ(log.Count("GET s3://" + bucket_ + " "), 4u) << log.text();  // 7+7+7+4
  }
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(seen.size(), 25u);
  for (int i = 0; i < 25; ++i) {
    char key[32];
    std::snprintf(key, sizeof(key), "page/k%02d", i);
    EXPECT_EQ(seen[i].key, key);
    EXPECT_EQ(seen[i].size, std::to_string(i).size());
    EXPECT_EQ(seen[i].etag, Md5Hex(std::to_string(i)));
    EXPECT_FALSE(seen[i].last_modified.empty());
  }

  int visited = 0;
  s = client_->ListObjects(bucket_, "", [&](const ObjectInfo&) { return ++visited < 10; });
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(visited, 10);
  EXPECT_EQ(ListKeys(*client_, bucket_, "").size(), 26u);
  EXPECT_TRUE(ListKeys(*client_, bucket_, "nothing-here/").empty());
}

TEST_F(S3ClientRgwTest, DeleteObjectsInBatch) {
  std::vector<ObjectId> ids;
  for (int i = 0; i < 30; ++i) {
    std::string key = "batch/" + std::to_string(i);
    ASSERT_TRUE(client_->PutObject(bucket_, key, "x").ok());
    ids.push_back({key, ""});
  }
  ids.push_back({"batch/never-existed", ""});
  Result<std::vector<DeleteOutcome>> r = client_->DeleteObjects(bucket_, ids);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    EXPECT_EQ((*r)[i].id.key, ids[i].key);
    EXPECT_TRUE((*r)[i].deleted) << ids[i].key << ": " << (*r)[i].error_code << " "
                                 << (*r)[i].error_message;
  }
  EXPECT_TRUE(ListKeys(*client_, bucket_, "batch/").empty());
}

TEST_F(S3ClientRgwTest, OddKeysRoundTrip) {
  const std::vector<std::string> keys = {
      "with space.txt",
      " leading space",
      "trailing space ",
      "plus+sign",
      "percent%20literal",
      "100%",
      "hash#tag",
      "question?mark",
      "amp&ersand=equals",
      "caf\xC3\xA9/\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E/\xF0\x9F\x98\x80.txt",
      "deep/nested/folder/structure/file.bin",
      "semi;colon:colon@at$dollar,comma*star(paren)",
      "quote\"double'single",
      "<angle>&brackets",
      "tilde~under_score-dash.dot",
      "double//slash",
      "trailing-slash-dir/",
      "tab\there",
      "new\nline",
      "carriage\rreturn",
  };
  for (const std::string& k : keys) {
    Status s = client_->PutObject(bucket_, k, "body of " + k);
    ASSERT_TRUE(s.ok()) << "put '" << k << "': " << s.ToString();
  }
  for (const std::string& k : keys) {
    Collected got;
    Result<ObjectInfo> info = client_->GetObject(bucket_, k, "", CollectInto(&got));
    ASSERT_TRUE(info.ok()) << "get '" << k << "': " << info.status().ToString();
    EXPECT_EQ(got.body, "body of " + k);
    Result<ObjectInfo> head = client_->HeadObject(bucket_, k, "");
    ASSERT_TRUE(head.ok()) << "head '" << k << "': " << head.status().ToString();
  }
  std::vector<std::string> listed = ListKeys(*client_, bucket_, "");
  std::vector<std::string> expected = keys;
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(listed, expected);  // byte order, keys decoded exactly
  // A prefix with odd characters too.
  EXPECT_EQ(ListKeys(*client_, bucket_, "caf\xC3\xA9/"), std::vector<std::string>{keys[9]});
  EXPECT_EQ(ListKeys(*client_, bucket_, "plus+"), std::vector<std::string>{"plus+sign"});
  EXPECT_EQ(ListKeys(*client_, bucket_, "100%"), std::vector<std::string>{"100%"});

  Result<std::vector<ObjectVersion>> versions = client_->ListObjectVersions(bucket_, "");
  ASSERT_TRUE(versions.ok()) << versions.status().ToString();
  std::vector<std::string> version_keys;
  for (const ObjectVersion& v : *versions) version_keys.push_back(v.key);
  EXPECT_EQ(version_keys, expected);

  std::vector<ObjectId> ids;
  for (const std::string& k : keys) ids.push_back({k, ""});
  Result<std::vector<DeleteOutcome>> r = client_->DeleteObjects(bucket_, ids);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  for (size_t i = 0; i < ids.size(); ++i) {
    EXPECT_EQ((*r)[i].id.key, keys[i]);
    EXPECT_TRUE((*r)[i].deleted) << "'" << keys[i] << "': " << (*r)[i].error_code;
  }
  EXPECT_TRUE(ListKeys(*client_, bucket_, "").empty());
}

TEST_F(S3ClientRgwTest, MissingKeyIsNotFound) {
  Collected got;
  Result<ObjectInfo> r = client_->GetObject(bucket_, "no/such key", "", CollectInto(&got));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kNotFound);
  EXPECT_EQ(r.status().message(), "s3://" + bucket_ + "/no/such key: not found");
  EXPECT_TRUE(got.body.empty());  // the error body never reaches the sink

  Result<ObjectInfo> h = client_->HeadObject(bucket_, "no/such key", "");
  EXPECT_EQ(h.status().code(), Code::kNotFound);
  EXPECT_EQ(h.status().message(), "s3://" + bucket_ + "/no/such key: not found");
}

TEST_F(S3ClientRgwTest, MissingBucketIsNotFoundNamingTheBucket) {
  const std::string gone = testenv::UniqueBucketName("gone");
  Collected got;
  Result<ObjectInfo> r = client_->GetObject(gone, "k", "", CollectInto(&got));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kNotFound);
  EXPECT_EQ(r.status().message(), "bucket '" + gone + "' does not exist (NoSuchBucket)");
  Status l = client_->ListObjects(gone, "", [](const ObjectInfo&) { return true; });
  EXPECT_EQ(l.code(), Code::kNotFound);
  EXPECT_NE(l.message().find(gone), std::string::npos);
  Result<std::vector<DeleteOutcome>> d = client_->DeleteObjects(gone, {{"k", ""}});
  EXPECT_EQ(d.status().code(), Code::kNotFound);
  EXPECT_EQ(client_->HeadObject(gone, "k", "").status().code(), Code::kNotFound);
}

TEST_F(S3ClientRgwTest, WrongCredentialsArePermissionDenied) {
  ASSERT_TRUE(client_->PutObject(bucket_, "secret-stuff", "x").ok());
  S3Config bad = config_;
  bad.secret_access_key = "ThisIsTheWrongSecretValue0123456789abcdef";
  S3Client wrong_secret(bad);
  Collected got;
  Result<ObjectInfo> r = wrong_secret.GetObject(bucket_, "secret-stuff", "", CollectInto(&got));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kPermissionDenied);
  EXPECT_NE(r.status().message().find("SignatureDoesNotMatch"), std::string::npos)
      << r.status().message();
  EXPECT_EQ(r.status().message().find(bad.secret_access_key), std::string::npos);
  EXPECT_EQ(r.status().message().find(config_.secret_access_key), std::string::npos);
  EXPECT_TRUE(got.body.empty());
  Status l = wrong_secret.ListObjects(bucket_, "", [](const ObjectInfo&) { return true; });
  EXPECT_EQ(l.code(), Code::kPermissionDenied) << l.ToString();
  Result<ObjectInfo> h = wrong_secret.HeadObject(bucket_, "secret-stuff", "");
  EXPECT_EQ(h.status().code(), Code::kPermissionDenied) << h.status().ToString();

  S3Config unknown = config_;
  unknown.access_key_id = "NOSUCHACCESSKEY00000";
  S3Client wrong_key(unknown);
  r = wrong_key.GetObject(bucket_, "secret-stuff", "", CollectInto(&got));
  EXPECT_EQ(r.status().code(), Code::kPermissionDenied);
  EXPECT_NE(r.status().message().find("InvalidAccessKeyId"), std::string::npos)
      << r.status().message();
  EXPECT_EQ(r.status().message().find(config_.secret_access_key), std::string::npos);
}

// Debug logs name each request but never carry credentials.
TEST_F(S3ClientRgwTest, DebugLogsCarryNoCredentials) {
  auto capture = std::make_unique<LogCapture>();

  S3Config with_token = config_;
  with_token.session_token = "SessionTokenThatMustNotBeLogged";
  S3Client token_client(with_token);
  (void)token_client.HeadObject(bucket_, "k", "");
  Status put = client_->PutObject(bucket_, "logged key", "v");
  S3Config bad = config_;
  bad.secret_access_key = "WrongSecretThatMustNotBeLogged";
  S3Client bad_client(bad);
  (void)bad_client.HeadObject(bucket_, "logged key", "");
  const std::string log = capture->text();
  capture.reset();

  ASSERT_TRUE(put.ok()) << put.ToString();
  EXPECT_NE(log.find("PUT s3://" + bucket_ + "/logged key"), std::string::npos) << log;
  EXPECT_NE(log.find("attempt 1/"), std::string::npos) << log;
  for (const std::string& secret : {config_.secret_access_key, config_.access_key_id,
                                    with_token.session_token, bad.secret_access_key}) {
    EXPECT_EQ(log.find(secret), std::string::npos) << secret;
  }
}

TEST_F(S3ClientRgwTest, VersionedBucket) {
  ASSERT_TRUE(client_->SetBucketVersioning(bucket_, true).ok());
  ASSERT_TRUE(client_->PutObject(bucket_, "doc", "first").ok());
  ASSERT_TRUE(client_->PutObject(bucket_, "doc", "second").ok());
  ASSERT_TRUE(client_->PutObject(bucket_, "other", "o").ok());

  Result<std::vector<ObjectVersion>> v = client_->ListObjectVersions(bucket_, "doc");
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  ASSERT_EQ(v->size(), 2u);
  const ObjectVersion newest = (*v)[0];
  const ObjectVersion oldest = (*v)[1];
  EXPECT_TRUE(newest.is_latest);
  EXPECT_FALSE(oldest.is_latest);
  EXPECT_FALSE(newest.is_delete_marker);
  EXPECT_NE(newest.version_id, oldest.version_id);
  EXPECT_FALSE(newest.version_id.empty());
  EXPECT_EQ(oldest.etag, Md5Hex("first"));
  EXPECT_EQ(oldest.size, 5u);

  // GET/HEAD of a specific version.
  Collected got;
  Result<ObjectInfo> info =
      client_->GetObject(bucket_, "doc", oldest.version_id, CollectInto(&got));
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(got.body, "first");
  EXPECT_EQ(info->version_id, oldest.version_id);
  Result<ObjectInfo> head = client_->HeadObject(bucket_, "doc", "");
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->version_id, newest.version_id);

  // Deleting the current version leaves a delete marker.
  Result<std::vector<DeleteOutcome>> d = client_->DeleteObjects(bucket_, {{"doc", ""}});
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  ASSERT_EQ(d->size(), 1u);
  EXPECT_TRUE((*d)[0].deleted);
  v = client_->ListObjectVersions(bucket_, "doc");
  ASSERT_TRUE(v.ok());
  ASSERT_EQ(v->size(), 3u);
  int markers = 0;
  for (const ObjectVersion& ov : *v) {
    if (ov.is_delete_marker) {
      ++markers;
      EXPECT_TRUE(ov.is_latest);
    }
  }
  EXPECT_EQ(markers, 1);
  EXPECT_EQ(client_->HeadObject(bucket_, "doc", "").status().code(), Code::kNotFound);

  // Deleting a specific version removes exactly it.
  d = client_->DeleteObjects(bucket_, {{"doc", oldest.version_id}});
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_TRUE((*d)[0].deleted) << (*d)[0].error_code;
  EXPECT_EQ((*d)[0].id.version_id, oldest.version_id);
  v = client_->ListObjectVersions(bucket_, "doc");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->size(), 2u);
  for (const ObjectVersion& ov : *v) EXPECT_NE(ov.version_id, oldest.version_id);
  Result<ObjectInfo> gone =
      client_->GetObject(bucket_, "doc", oldest.version_id, CollectInto(&got));
  EXPECT_EQ(gone.status().code(), Code::kNotFound) << gone.status().ToString();

  // Single DELETE of a version, and paging through versions.
  ASSERT_TRUE(client_->DeleteObject(bucket_, "doc", newest.version_id).ok());
  client_->set_list_page_size(1);
  {
    LogCapture log;
    v = client_->ListObjectVersions(bucket_, "");
    EXPECT_GE(log.Count("GET s3://" + bucket_ + " "), 2u) << log.text();
  }
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->size(), 2u);  // the marker of "doc" and "other"
}

TEST_F(S3ClientRgwTest, CreateBucketTwiceAndDeleteNonEmpty) {
  EXPECT_TRUE(client_->CreateBucket(bucket_).ok());
  ASSERT_TRUE(client_->PutObject(bucket_, "k", "v").ok());
  Status s = client_->DeleteBucket(bucket_);
  EXPECT_EQ(s.code(), Code::kConflict) << s.ToString();
  EXPECT_EQ(client_->DeleteBucket(testenv::UniqueBucketName("gone")).code(), Code::kNotFound);
}

TEST_F(S3ClientRgwTest, SafeFromSeveralThreads) {
  constexpr int kThreads = 6;
  constexpr int kPerThread = 15;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        std::string key = "t" + std::to_string(t) + "/" + std::to_string(i);
        std::string body = RandomBytes(1000 + i * 997, t * 100 + i);
        if (!client_->PutObject(bucket_, key, body).ok()) ++failures;
        Collected got;
        Result<ObjectInfo> r = client_->GetObject(bucket_, key, "", CollectInto(&got));
        if (!r.ok() || got.body != body) ++failures;
        if (!client_->HeadObject(bucket_, key, "").ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(ListKeys(*client_, bucket_, "").size(), size_t{kThreads * kPerThread});
}

// ---- Without RGW --------------------------------------------------------------------------

S3Config LoopbackConfig(int port) {
  S3Config c;
  c.endpoint = "http://127.0.0.1:" + std::to_string(port);
  c.access_key_id = "AKIDLOOPBACK0000";
  c.secret_access_key = "loopback-secret-never-shown";
  c.max_attempts = 3;
  c.backoff_base = std::chrono::milliseconds(1);
  c.backoff_max = std::chrono::milliseconds(5);
  c.connect_timeout = std::chrono::milliseconds(2000);
  return c;
}

TEST(S3ClientConnectionTest, RefusedConnectionIsUnavailableAfterRetries) {
  const int port = ClosedPort();
  S3Config c = LoopbackConfig(port);
  S3Client client(c);
  auto start = std::chrono::steady_clock::now();
  Result<ObjectInfo> r = client.HeadObject("b", "k", "");
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kUnavailable);
  EXPECT_NE(r.status().message().find(c.endpoint), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("after 3 attempts"), std::string::npos)
      << r.status().message();
  EXPECT_NE(r.status().message().find("onnect"), std::string::npos) << r.status().message();
  EXPECT_EQ(r.status().message().find(c.secret_access_key), std::string::npos);
  EXPECT_LT(took, std::chrono::seconds(5));
}

// A loopback HTTP server that plays a script of answers and records requests.
class FakeS3 {
 public:
  FakeS3() {
    auto handler = [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard<std::mutex> lock(mu_);
      requests_.push_back(req);
      if (handler_) handler_(static_cast<int>(requests_.size()), req, res);
    };
    server_.Get(".*", handler);
    server_.Post(".*", handler);
    server_.Put(".*", handler);
    server_.Delete(".*", handler);
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~FakeS3() {
    server_.stop();
    thread_.join();
  }
  using Handler = std::function<void(int n, const httplib::Request&, httplib::Response&)>;
  void OnRequest(Handler h) { handler_ = std::move(h); }
  int port() const { return port_; }
  std::vector<httplib::Request> requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::mutex mu_;
  Handler handler_;
  std::vector<httplib::Request> requests_;
};

TEST(S3ClientFakeServerTest, RetriesServerErrorsThenSucceeds) {
  FakeS3 fake;
  fake.OnRequest([](int n, const httplib::Request&, httplib::Response& res) {
    if (n <= 2) {
      res.status = 503;
      res.set_content("<Error><Code>SlowDown</Code><Message>Please reduce</Message></Error>",
                      "application/xml");
      return;
    }
    res.set_header("ETag", "\"abc\"");
    res.set_content("hello", "application/octet-stream");
  });
  S3Client client(LoopbackConfig(fake.port()));
  Collected got;
  Result<ObjectInfo> r = client.GetObject("b", "k", "", CollectInto(&got));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(got.body, "hello");  // error bodies of the failed attempts never reached the sink
  EXPECT_EQ(r->etag, "abc");
  EXPECT_EQ(fake.requests().size(), 3u);
}

TEST(S3ClientFakeServerTest, GivesUpAfterMaxAttempts) {
  FakeS3 fake;
  fake.OnRequest([](int, const httplib::Request&, httplib::Response& res) {
    res.status = 500;
    res.set_content("<Error><Code>InternalError</Code><Message/></Error>", "application/xml");
  });
  S3Client client(LoopbackConfig(fake.port()));
  Status s = client.ListObjects("b", "", [](const ObjectInfo&) { return true; });
  EXPECT_EQ(s.code(), Code::kUnavailable);
  EXPECT_NE(s.message().find("InternalError"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("after 3 attempts"), std::string::npos) << s.message();
  EXPECT_EQ(fake.requests().size(), 3u);
}

TEST(S3ClientFakeServerTest, NoRetryOnClientErrors) {
  FakeS3 fake;
  fake.OnRequest([](int, const httplib::Request&, httplib::Response& res) {
    res.status = 403;
    res.set_content("<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>",
                    "application/xml");
  });
  S3Client client(LoopbackConfig(fake.port()));
  Collected got;
  Result<ObjectInfo> r = client.GetObject("b", "k", "", CollectInto(&got));
  EXPECT_EQ(r.status().code(), Code::kPermissionDenied);
  EXPECT_EQ(fake.requests().size(), 1u);
  EXPECT_TRUE(got.body.empty());
}

TEST(S3ClientFakeServerTest, NoRetryOnceBodyBytesWereDelivered) {
  FakeS3 fake;
  fake.OnRequest([](int, const httplib::Request&, httplib::Response& res) {
    res.set_content_provider(100000, "application/octet-stream",
                             [](size_t offset, size_t, httplib::DataSink& sink) {
                               if (offset > 0) return false;  // hang up half-way
                               std::string half(50000, 'x');
                               sink.write(half.data(), half.size());
                               return true;
                             });
  });
  S3Client client(LoopbackConfig(fake.port()));
  Collected got;
  Result<ObjectInfo> r = client.GetObject("b", "k", "", CollectInto(&got));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kUnavailable);
  EXPECT_NE(r.status().message().find("bytes were delivered"), std::string::npos)
      << r.status().message();
  EXPECT_EQ(got.body.size(), 50000u);
  EXPECT_EQ(fake.requests().size(), 1u);
}

TEST(S3ClientFakeServerTest, SignsAndSendsTheHeadersS3Needs) {
  FakeS3 fake;
  fake.OnRequest([](int, const httplib::Request& req, httplib::Response& res) {
    if (req.method == "POST") {
      res.set_content(
          "<DeleteResult><Deleted><Key>a&amp;b</Key></Deleted>"
          "<Error><Key>c d</Key><VersionId>v1</VersionId><Code>AccessDenied</Code>"
          "<Message>no</Message></Error></DeleteResult>",
          "application/xml");
    }
  });
  S3Config c = LoopbackConfig(fake.port());
  c.session_token = "session-token-value-never-logged";
  S3Client client(c);
  Result<std::vector<DeleteOutcome>> r =
      client.DeleteObjects("bkt", {{"c d", "v1"}, {"a&b", ""}, {"missing", ""}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[0].id.key, "c d");
  EXPECT_FALSE((*r)[0].deleted);
  EXPECT_EQ((*r)[0].error_code, "AccessDenied");
  EXPECT_TRUE((*r)[1].deleted);
  EXPECT_FALSE((*r)[2].deleted);
  EXPECT_EQ((*r)[2].error_code, "MissingFromResponse");

  std::vector<httplib::Request> reqs = fake.requests();
  ASSERT_EQ(reqs.size(), 1u);
  const httplib::Request& req = reqs[0];
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.path, "/bkt");
  EXPECT_TRUE(req.has_param("delete"));
  const std::string auth = req.get_header_value("Authorization");
  EXPECT_EQ(auth.rfind("AWS4-HMAC-SHA256 Credential=AKIDLOOPBACK0000/", 0), 0u) << auth;
  EXPECT_NE(auth.find("/us-east-1/s3/aws4_request"), std::string::npos) << auth;
  EXPECT_NE(auth.find("content-md5"), std::string::npos) << auth;
  EXPECT_NE(auth.find("x-amz-content-sha256"), std::string::npos) << auth;
  EXPECT_NE(auth.find("x-amz-security-token"), std::string::npos) << auth;
  EXPECT_EQ(req.get_header_value("x-amz-security-token"), "session-token-value-never-logged");
  EXPECT_FALSE(req.get_header_value("x-amz-date").empty());
  EXPECT_EQ(req.get_header_value("Content-Type"), "application/xml");

  // Content-MD5 and the payload hash describe the body actually sent.
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(req.body.data(), req.body.size(), md, &n, EVP_md5(), nullptr);
  unsigned char b64[64];
  int len = EVP_EncodeBlock(b64, md, static_cast<int>(n));
  EXPECT_EQ(req.get_header_value("Content-MD5"),
            std::string(reinterpret_cast<char*>(b64), static_cast<size_t>(len)));
  EVP_Digest(req.body.data(), req.body.size(), md, &n, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string sha;
  for (unsigned i = 0; i < n; ++i) {
    sha.push_back(kHex[md[i] >> 4]);
    sha.push_back(kHex[md[i] & 0xF]);
  }
  EXPECT_EQ(req.get_header_value("x-amz-content-sha256"), sha);
  EXPECT_NE(req.body.find("<Key>a&amp;b</Key>"), std::string::npos) << req.body;
}

}  // namespace
}  // namespace ds
