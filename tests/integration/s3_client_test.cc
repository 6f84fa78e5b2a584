// S3Client against a real local Ceph RGW (scripts/rgw-local.sh start). The behaviours that
// need a misbehaving server (retries, partial bodies, the signed headers) are checked against a
// loopback server in s3_client_http_test.cc.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "integration/collecting_sink.h"
#include "integration/rgw_env.h"
#include "s3/client.h"

namespace ds {
namespace {

using itest::Collected;
using itest::CollectInto;

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

}  // namespace
}  // namespace ds
