// delete-sync serve against the real local Ceph RGW, with RGW's real bucket notifications
// pushed to the webhook. RGW's non-persistent HTTP push is synchronous: the S3 call returns
// after our webhook answered, so a removal is already applied when DELETE returns.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "service_harness.h"

namespace ds::itest {
namespace {

class ServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { h_.Start(); }
  void TearDown() override { h_.Stop(); }
  void Put(const std::string& key, const std::string& body) {
    Status s = h_.s3().PutObject(h_.bucket(), key, body);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  void Delete(const std::string& key, const std::string& version = "") {
    Status s = h_.s3().DeleteObject(h_.bucket(), key, version);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  ServiceHarness h_;
};

TEST_F(ServiceTest, PutAppearsAndDeleteDisappearsWithOddKeys) {
  const std::vector<std::string> keys = {
      "plain.txt",
      "dir one/sub dir/\xc3\xbcn\xc3\xaf\x63\xc3\xb8\x64\xc3\xa9 file \xe2\x82\xac.txt",
      "weird/a+b=c&d?e#f%20g.txt",
      "space key.txt",
      "100%.txt",
      "plus+sign.txt",
      "deep/a/b/c/d/e.bin",
  };
  for (const std::string& k : keys) Put(k, "body of " + k);
  for (const std::string& k : keys) {
    EXPECT_TRUE(h_.WaitContent(k, "body of " + k)) << k << "\n" << h_.Log();
  }
  for (const std::string& k : keys) {
    Delete(k);
    // Synchronous push: the removal was applied before DELETE returned.
    EXPECT_FALSE(Exists(h_.Path(k))) << k;
  }
  // Folders that became empty are pruned; the cache root and the reserved folder stay.
  EXPECT_FALSE(Exists(h_.cache() + "/dir one"));
  EXPECT_FALSE(Exists(h_.cache() + "/deep"));
  EXPECT_TRUE(Exists(h_.cache() + "/.delete-sync"));
  // Every removal is in the audit log, whose chain verifies.
  std::string out;
  EXPECT_EQ(RunCommand({DS_BINARY, "audit", "verify", "--cache", h_.cache()}, {}, &out), 0) << out;
  EXPECT_NE(out.find("audit log intact: 7 records"), std::string::npos) << out;
  std::string log = ReadFile(h_.cache() + "/.delete-sync/audit.log");
  EXPECT_NE(log.find("\"key\":\"weird/a+b=c&d?e#f%20g.txt\""), std::string::npos) << log;
  EXPECT_NE(log.find("\"outcome\":\"removed\""), std::string::npos);
  // No temp files are left behind once the checks after the removals have run.
  EXPECT_TRUE(WaitFor([&] { return std::filesystem::is_empty(h_.cache() + "/.delete-sync/tmp"); }));
}

TEST_F(ServiceTest, OverwriteReplacesTheCopy) {
  Put("k.txt", "version one");
  ASSERT_TRUE(h_.WaitContent("k.txt", "version one"));
  Put("k.txt", "version two, longer");
  EXPECT_TRUE(h_.WaitContent("k.txt", "version two, longer"));
}

TEST_F(ServiceTest, MultipartUploadMaterialises) {
  std::string local = h_.dir() + "/big.bin";
  {
    std::ofstream out(local, std::ios::binary);
    std::string chunk(1024 * 1024, 'm');
    for (int i = 0; i < 9; ++i) {
      chunk[0] = static_cast<char>('0' + i);
      out << chunk;
    }
  }
  std::string out;
  // 9 MiB is over the AWS CLI's 8 MiB multipart threshold: CreateMultipartUpload, UploadPart
  // x2, CompleteMultipartUpload.
  ASSERT_EQ(h_.Aws({"s3", "cp", local, "s3://" + h_.bucket() + "/multi/big.bin"}, &out), 0) << out;
  ASSERT_TRUE(WaitFor([&] {
    return Exists(h_.Path("multi/big.bin")) &&
           std::filesystem::file_size(h_.Path("multi/big.bin")) == 9u * 1024 * 1024;
  })) << h_.Log();
  EXPECT_EQ(ReadFile(h_.Path("multi/big.bin")), ReadFile(local));
  EXPECT_NE(h_.Log().find("CompleteMultipartUpload"), std::string::npos);
}

TEST_F(ServiceTest, CopyMaterialisesTheDestination) {
  Put("src/original.txt", "copied content");
  ASSERT_TRUE(h_.WaitContent("src/original.txt", "copied content"));
  std::string out;
  ASSERT_EQ(h_.Aws({"s3api", "copy-object", "--bucket", h_.bucket(), "--key", "dst/copy.txt",
                    "--copy-source", h_.bucket() + "/src/original.txt"},
                   &out),
            0)
      << out;
  EXPECT_TRUE(h_.WaitContent("dst/copy.txt", "copied content")) << h_.Log();
}

TEST_F(ServiceTest, BatchDeleteObjectsRemovesEveryKey) {
  std::vector<ObjectId> ids;
  for (int i = 0; i < 5; ++i) {
    std::string k = "batch/k" + std::to_string(i) + " +%.txt";
    Put(k, "x");
    ids.push_back({k, ""});
  }
  for (const ObjectId& id : ids) ASSERT_TRUE(h_.WaitContent(id.key, "x"));
  auto res = h_.s3().DeleteObjects(h_.bucket(), ids);
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  for (const ObjectId& id : ids) EXPECT_TRUE(h_.WaitGone(id.key)) << id.key;
  EXPECT_FALSE(Exists(h_.cache() + "/batch"));
}

TEST_F(ServiceTest, WrongOrMissingTokenChangesNothing) {
  Put("keep.txt", "precious");
  ASSERT_TRUE(h_.WaitContent("keep.txt", "precious"));
  std::string removal = R"({"Records":[{"eventVersion":"2.2","eventSource":"ceph:s3",)"
                        R"("eventName":"ObjectRemoved:Delete","s3":{"bucket":{"name":")" +
                        h_.bucket() + R"("},"object":{"key":"keep.txt"}}}]})";
  httplib::Client c = h_.Client();
  auto none = c.Post("/", removal, "application/json");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 401);
  auto wrong = c.Post("/?token=not-the-token", removal, "application/json");
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 401);
  httplib::Headers bad_bearer = {{"Authorization", "Bearer " + h_.token() + "x"}};
  auto wrong2 = c.Post("/", bad_bearer, removal, "application/json");
  ASSERT_TRUE(wrong2);
  EXPECT_EQ(wrong2->status, 401);
  EXPECT_EQ(ReadFile(h_.Path("keep.txt")), "precious");
  // The right token in the header works (and the object is really gone from the cache).
  httplib::Headers bearer = {{"Authorization", "Bearer " + h_.token()}};
  auto ok = c.Post("/", bearer, removal, "application/json");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200) << ok->body;
  EXPECT_FALSE(Exists(h_.Path("keep.txt")));
}

TEST_F(ServiceTest, BadInputGetsClearErrorsAndChangesNothing) {
  // A file outside the cache that a traversal key aims at.
  std::string outside = h_.dir() + "/victim.txt";
  { std::ofstream(outside) << "outside"; }
  Put("inside.txt", "inside");
  ASSERT_TRUE(h_.WaitContent("inside.txt", "inside"));
  httplib::Client c = h_.Client();
  std::string q = "/?token=" + h_.token();

  auto not_json = c.Post(q, "{not json", "application/json");
  ASSERT_TRUE(not_json);
  EXPECT_EQ(not_json->status, 400);
  EXPECT_NE(not_json->body.find("not JSON"), std::string::npos) << not_json->body;

  std::string missing_key = R"({"Records":[{"eventSource":"ceph:s3","eventName":)"
                            R"("ObjectRemoved:Delete","s3":{"bucket":{"name":")" +
                            h_.bucket() + R"("},"object":{}}}]})";
  auto mk = c.Post(q, missing_key, "application/json");
  ASSERT_TRUE(mk);
  EXPECT_EQ(mk->status, 400);
  EXPECT_NE(mk->body.find("Records[0].s3.object.key: missing"), std::string::npos) << mk->body;

  // ../victim.txt from <cache> is <dir>/victim.txt.
  std::string traversal = R"({"Records":[{"eventSource":"ceph:s3","eventName":)"
                          R"("ObjectRemoved:Delete","s3":{"bucket":{"name":")" +
                          h_.bucket() + R"("},"object":{"key":"../victim.txt"}}}]})";
  auto tr = c.Post(q, traversal, "application/json");
  ASSERT_TRUE(tr);
  EXPECT_EQ(tr->status, 422);
  EXPECT_NE(tr->body.find("dot-segment"), std::string::npos) << tr->body;
  EXPECT_EQ(ReadFile(outside), "outside");

  std::string huge(9 * 1024 * 1024, ' ');
  auto big = c.Post(q, huge, "application/json");
  ASSERT_TRUE(big);
  EXPECT_EQ(big->status, 413);

  // Still serving, and nothing else changed.
  EXPECT_EQ(ReadFile(h_.Path("inside.txt")), "inside");
  auto health = c.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  Put("after.txt", "still works");
  EXPECT_TRUE(h_.WaitContent("after.txt", "still works"));
}

TEST(VersionedService, DeleteMarkerRemovesAndVersionDeletesRespectTheCachedVersion) {
  ServiceHarness h(/*versioned=*/true);
  h.Start();
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  S3Client& s3 = h.s3();
  // Delete marker.
  ASSERT_TRUE(s3.PutObject(h.bucket(), "m.txt", "m1").ok());
  ASSERT_TRUE(h.WaitContent("m.txt", "m1"));
  ASSERT_TRUE(s3.DeleteObject(h.bucket(), "m.txt").ok());  // creates a delete marker
  EXPECT_TRUE(h.WaitGone("m.txt"));

  // Two versions; the cache holds the newest.
  ASSERT_TRUE(s3.PutObject(h.bucket(), "v.txt", "first").ok());
  ASSERT_TRUE(h.WaitContent("v.txt", "first"));
  ASSERT_TRUE(s3.PutObject(h.bucket(), "v.txt", "second").ok());
  ASSERT_TRUE(h.WaitContent("v.txt", "second"));
  auto versions = s3.ListObjectVersions(h.bucket(), "v.txt");
  ASSERT_TRUE(versions.ok()) << versions.status().ToString();
  std::string older, newer;
  for (const ObjectVersion& v : *versions) (v.is_latest ? newer : older) = v.version_id;
  ASSERT_FALSE(older.empty());
  ASSERT_FALSE(newer.empty());

  // Deleting the older version leaves the cached (newer) copy alone.
  ASSERT_TRUE(s3.DeleteObject(h.bucket(), "v.txt", older).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(ReadFile(h.Path("v.txt")), "second");
  EXPECT_NE(h.Log().find("is not the cached version"), std::string::npos);

  // Deleting the cached version removes the copy; no version is left, so it stays gone.
  ASSERT_TRUE(s3.DeleteObject(h.bucket(), "v.txt", newer).ok());
  EXPECT_TRUE(h.WaitGone("v.txt"));

  // With two versions left, deleting the current one brings the previous one back.
  ASSERT_TRUE(s3.PutObject(h.bucket(), "w.txt", "w-old").ok());
  ASSERT_TRUE(h.WaitContent("w.txt", "w-old"));
  ASSERT_TRUE(s3.PutObject(h.bucket(), "w.txt", "w-new").ok());
  ASSERT_TRUE(h.WaitContent("w.txt", "w-new"));
  auto wv = s3.ListObjectVersions(h.bucket(), "w.txt");
  ASSERT_TRUE(wv.ok());
  std::string current;
  for (const ObjectVersion& v : *wv) {
    if (v.is_latest) current = v.version_id;
  }
  ASSERT_TRUE(s3.DeleteObject(h.bucket(), "w.txt", current).ok());
  EXPECT_TRUE(h.WaitContent("w.txt", "w-old")) << h.Log();
  h.Stop();
}

}  // namespace
}  // namespace ds::itest

namespace ds::itest {
namespace {

TEST(PeriodicReconcile, ServeHealsWhatNoEventTold) {
  ServiceHarness h;
  h.Start({"--reconcile-every", "1s"});
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  // A file no event explains, and a copy that disappeared behind the service's back.
  ASSERT_TRUE(h.s3().PutObject(h.bucket(), "kept.txt", "kept").ok());
  ASSERT_TRUE(h.WaitContent("kept.txt", "kept"));
  std::filesystem::remove(h.Path("kept.txt"));
  std::ofstream(h.Path("stray.txt")) << "stray";
  EXPECT_TRUE(h.WaitGone("stray.txt")) << h.Log();
  EXPECT_TRUE(h.WaitContent("kept.txt", "kept")) << h.Log();
  EXPECT_NE(h.Log().find("(reconcile: not in the bucket)"), std::string::npos);
  h.Stop();
}

}  // namespace
}  // namespace ds::itest

namespace ds::itest {
namespace {

TEST(ServeErase, PostEraseReturnsTheReceiptAndRemovesEverything) {
  ServiceHarness h(/*versioned=*/true);
  h.Start();
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  S3Client& s3 = h.s3();
  ASSERT_TRUE(s3.PutObject(h.bucket(), "people/ann/photo.jpg", "v1").ok());
  ASSERT_TRUE(s3.PutObject(h.bucket(), "people/ann/photo.jpg", "v2").ok());
  ASSERT_TRUE(h.WaitContent("people/ann/photo.jpg", "v2"));
  httplib::Client c = h.Client();
  std::string body = R"({"keys":["people/ann/photo.jpg"],"request_id":"web-erase-1"})";
  auto unauthorised = c.Post("/erase", body, "application/json");
  ASSERT_TRUE(unauthorised);
  EXPECT_EQ(unauthorised->status, 401);
  EXPECT_TRUE(Exists(h.Path("people/ann/photo.jpg")));

  auto bad = c.Post("/erase?token=" + h.token(), "[1,2]", "application/json");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);

  auto res = c.Post("/erase?token=" + h.token(), body, "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << res->body << "\n" << h.Log();
  auto receipt = nlohmann::json::parse(res->body);
  EXPECT_EQ(receipt["request_id"], "web-erase-1");
  EXPECT_EQ(receipt["ok"], true);
  EXPECT_EQ(receipt["keys"][0]["bucket"]["versions_removed"].size(), 2u);
  EXPECT_FALSE(Exists(h.Path("people/ann/photo.jpg")));
  EXPECT_FALSE(Exists(h.Path("people")));
  auto versions = s3.ListObjectVersions(h.bucket(), "people/");
  ASSERT_TRUE(versions.ok());
  EXPECT_TRUE(versions->empty());
  EXPECT_TRUE(Exists(h.cache() + "/.delete-sync/receipts/web-erase-1.json"));
  h.Stop();
}

}  // namespace
}  // namespace ds::itest
