// Many hosts, one cache (issue 17, docs/SEMANTICS.md section 9): two or three "hosts" of
// scripts/cephfs-local.sh share one cache on a real CephFS, each with its own ceph-fuse client,
// hostname and PID namespace. They run the real `delete-sync serve` (webhook) and Lambda mode
// (against a Runtime API test server), and receive disjoint and overlapping parts of a shuffled,
// duplicated replay of the notifications the real Ceph RGW sent for a history of puts and
// deletes. One host's process, or the whole host (its ceph-fuse too), is SIGKILLed mid-stream
// and brought back. At the end, with no reconcile: the cache equals the bucket, the state
// database is intact, the audit chain verifies and records every removal, and no temp file or
// claim is left behind.
#include <gtest/gtest.h>
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>

#include "cephfs_lab.h"
#include "runtime_api_server.h"

namespace ds::itest {
namespace {

using nlohmann::json;

// A claim lease short enough that a dead host's claims and temp files are taken over within the
// test (the default is 2 minutes).
constexpr char kLease[] = "15s";

class MultiHostTest : public ::testing::Test {
 protected:
  void SetUp() override {
    env_ = ReadRgwEnv();
    ASSERT_FALSE(env_.empty()) << "no RGW env file: run `scripts/rgw-local.sh start` first";
    mnt_ = CephfsMountPoint();
    ASSERT_FALSE(mnt_.empty()) << "no CephFS lab: run `scripts/cephfs-local.sh start` first "
                                  "(scripts/test.sh does)";
    const std::string suffix = RandomSuffix();
    rgw_.Create("ds-mh-" + suffix);
    ASSERT_FALSE(HasFatalFailure());
    s3_ = &rgw_.s3();
    bucket_ = rgw_.name();
    dir_ = std::filesystem::temp_directory_path() / ("ds-mh-" + suffix);
    std::filesystem::create_directories(dir_);
    shared_ = mnt_ + "/ds-mh-" + suffix;
    cache_ = shared_ + "/cache";
    token_ = "tok-" + suffix;
  }

  void TearDown() override {
    for (auto& [name, s] : serves_) s->proc.Kill();
    if (lambda_) lambda_->Kill();
    if (!HasFailure()) {
      if (!hosts_.empty()) HostRun(hosts_.front(), {"/bin/rm", "-rf", shared_});
      std::filesystem::remove_all(dir_);
    } else {
      for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
        if (entry.path().extension() == ".log") {
          std::fprintf(stderr, "---- %s ----\n%s\n", entry.path().c_str(),
                       ReadFile(entry.path()).c_str());
        }
      }
    }
    for (const std::string& h : hosts_) CephfsLab({"host-stop", h});
  }

  void StartHosts(const std::vector<std::string>& names) {
    for (const std::string& h : names) {
      std::string out;
      ASSERT_EQ(CephfsLab({"host-start", h}, &out), 0) << out;
      hosts_.push_back(h);
    }
    std::string out;
    ASSERT_EQ(HostRun(names.front(), {"/bin/mkdir", "-p", cache_}, {}, &out), 0) << out;
  }

  struct Serve {
    std::string host;
    int port = 0;
    HostProcess proc;
    std::string log;
  };

  // Starts `serve` in `host` on the shared cache; waits for /healthz.
  void StartServe(const std::string& host) {
    auto& s = serves_[host];
    if (!s) {
      s = std::make_unique<Serve>();
      s->host = host;
      s->port = FreePort();
      s->log = dir_ + "/serve-" + host + ".log";
    }
    s->proc.Start(host,
                  {DS_BINARY,
                   "serve",
                   "--cache",
                   cache_,
                   "--bucket",
                   bucket_,
                   "--state-journal",
                   "rollback",
                   "--webhook-listen",
                   "127.0.0.1:" + std::to_string(s->port),
                   "--webhook-token",
                   token_,
                   "--reconcile-at-start",
                   "never",
                   "--reconcile-every",
                   "off",
                   "--claim-lease",
                   kLease,
                   "--log-level",
                   "debug"},
                  env_, s->log);
    httplib::Client c("127.0.0.1", s->port);
    c.set_connection_timeout(1);
    ASSERT_TRUE(WaitFor(
        [&] {
          auto r = c.Get("/healthz");
          return r && r->status == 200;
        },
        std::chrono::seconds(60)))
        << "serve did not come up in " << host << ":\n"
        << ReadFile(s->log);
  }

  // Starts Lambda mode in `host`, polling `api`.
  void StartLambda(const std::string& host, RuntimeApiServer& api) {
    if (!lambda_) lambda_ = std::make_unique<HostProcess>();
    std::map<std::string, std::string> env = env_;
    env["AWS_LAMBDA_RUNTIME_API"] = api.Endpoint();
    env["DELETE_SYNC_CACHE"] = cache_;
    env["DELETE_SYNC_BUCKET"] = bucket_;
    env["DELETE_SYNC_CLAIM_LEASE"] = kLease;
    env["DELETE_SYNC_LOG_LEVEL"] = "debug";
    lambda_->Start(host, {DS_BINARY}, env, dir_ + "/lambda-" + host + ".log");
  }

  // Puts and deletes objects in the bucket while recording every notification the real RGW
  // pushes (synchronous topic: each is sent before the S3 call returns). Returns the documents;
  // *deleted gets the keys deleted at least once.
  std::vector<std::string> RecordHistory(int keys, std::set<std::string>* deleted) {
    httplib::Server recorder;
    std::mutex mu;
    std::vector<std::string> docs;
    recorder.Post("/", [&](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard<std::mutex> l(mu);
      docs.push_back(req.body);
      res.status = 200;
    });
    int port = recorder.bind_to_any_port("127.0.0.1");
    std::thread t([&] { recorder.listen_after_bind(); });
    std::string out;
    int rc = RunCommand({std::string(DS_SOURCE_DIR) + "/scripts/rgw-local.sh", "notify", bucket_,
                         "t-" + bucket_, "http://127.0.0.1:" + std::to_string(port) + "/?token=x"},
                        {}, &out);
    EXPECT_EQ(rc, 0) << out;
    std::mutex del_mu;
    std::vector<std::thread> writers;
    constexpr int kWriters = 4;
    for (int w = 0; w < kWriters; ++w) {
      writers.emplace_back([&, w] {
        std::mt19937 rng(1000 + w);
        for (int i = w; i < keys; i += kWriters) {
          const std::string key = "d" + std::to_string(i % 7) + "/k" + std::to_string(i);
          // 1 to 4 steps, alternating put and delete, starting with a put.
          const int steps = 1 + static_cast<int>(rng() % 4);
          for (int s = 0; s < steps; ++s) {
            if (s % 2 == 0) {
              EXPECT_TRUE(s3_->PutObject(bucket_, key, key + " v" + std::to_string(s)).ok());
            } else {
              EXPECT_TRUE(s3_->DeleteObject(bucket_, key).ok());
              std::lock_guard<std::mutex> l(del_mu);
              deleted->insert(key);
            }
          }
        }
      });
    }
    for (auto& th : writers) th.join();
    recorder.stop();
    t.join();
    return docs;
  }

  std::map<std::string, std::string> BucketContents() {
    std::map<std::string, std::string> out;
    std::vector<std::string> keys;
    EXPECT_TRUE(s3_->ListObjects(bucket_, "",
                                 [&](const ObjectInfo& o) {
                                   keys.push_back(o.key);
                                   return true;
                                 })
                    .ok());
    for (const std::string& k : keys) {
      std::string body;
      auto r = s3_->GetObject(bucket_, k, "", [&](const char* data, size_t n) {
        body.append(data, n);
        return Status::Ok();
      });
      EXPECT_TRUE(r.ok()) << r.status().ToString();
      out[k] = body;
    }
    return out;
  }

  // One delivery of a document to a target (a host's webhook or the Lambda function).
  struct Delivery {
    std::string doc;
    size_t target;
  };

  // Delivers every document of `docs` to one target, a third of them also to a second one, and
  // a fifth once more; shuffled. Each delivery is retried until acknowledged, as a persistent
  // topic, SNS or Lambda's async invocation would. `mid_stream` runs once 40% are acknowledged.
  void Replay(const std::vector<std::string>& docs, size_t targets, RuntimeApiServer* api,
              size_t lambda_target, const std::function<void()>& mid_stream) {
    std::mt19937 rng(42);
    std::vector<Delivery> all;
    for (const std::string& d : docs) {
      size_t t = rng() % targets;
      all.push_back({d, t});
      if (rng() % 3 == 0) all.push_back({d, (t + 1 + rng() % (targets - 1)) % targets});
      if (rng() % 5 == 0) all.push_back({d, static_cast<size_t>(rng() % targets)});
    }
    std::shuffle(all.begin(), all.end(), rng);
    std::vector<std::deque<std::string>> queues(targets);
    for (const Delivery& d : all) queues[d.target].push_back(d.doc);
    std::mutex mu;
    std::atomic<size_t> acked{0}, retries{0};
    const size_t total = all.size();
    std::vector<std::thread> senders;
    for (size_t t = 0; t < targets; ++t) {
      const int threads = t == lambda_target ? 1 : 3;
      for (int k = 0; k < threads; ++k) {
        senders.emplace_back([&, t] {
          while (true) {
            std::string doc;
            {
              std::lock_guard<std::mutex> l(mu);
              if (queues[t].empty()) return;
              doc = queues[t].front();
              queues[t].pop_front();
            }
            bool ok = false;
            if (t == lambda_target) {
              auto a = api->TryInvoke(doc, std::chrono::seconds(20));
              ok = a && !a->error;
            } else {
              const auto& s = *serves_.at(hosts_.at(t));
              httplib::Client c("127.0.0.1", s.port);
              c.set_connection_timeout(2);
              c.set_read_timeout(180);
              auto r = c.Post("/?token=" + token_, doc, "application/json");
              ok = r && r->status == 200;
            }
            if (ok) {
              ++acked;
              continue;
            }
            ++retries;
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
            std::lock_guard<std::mutex> l(mu);
            queues[t].push_back(doc);
          }
        });
      }
    }
    const auto t0 = std::chrono::steady_clock::now();
    auto secs = [&] {
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    };
    EXPECT_TRUE(WaitFor([&] { return acked.load() * 10 >= total * 4; }, std::chrono::minutes(5)));
    std::fprintf(stderr, "[%.1f s] 40%% acknowledged: the fault\n", secs());
    if (mid_stream) mid_stream();
    std::fprintf(stderr, "[%.1f s] recovered from the fault\n", secs());
    for (auto& th : senders) th.join();
    std::fprintf(stderr, "[%.1f s] every delivery acknowledged\n", secs());
    EXPECT_EQ(acked.load(), total);
    std::fprintf(stderr, "replayed %zu deliveries of %zu documents (%zu retried)\n", total,
                 docs.size(), retries.load());
  }

  // Waits until no download is waiting or failed in the shared state (read in `host`).
  void WaitDrained(const std::string& host) {
    std::string last;
    bool drained = WaitFor(
        [&] {
          std::string out;
          if (HostRun(host, {DS_BINARY, "status", "--cache", cache_, "--json"}, {}, &out) != 0) {
            last = out;
            return false;
          }
          last = out;
          try {
            json j = json::parse(out);
            return j.at("downloads_waiting").get<int64_t>() == 0 &&
                   j.at("downloads_failed").get<int64_t>() == 0;
          } catch (...) {
            return false;
          }
        },
        std::chrono::minutes(4));
    ASSERT_TRUE(drained) << "downloads still waiting: " << last;
  }

  // The end state every test checks, read from `host`.
  void CheckEndState(const std::string& host, const std::set<std::string>& deleted) {
    const std::map<std::string, std::string> bucket = BucketContents();
    EXPECT_EQ(HostTree(host, cache_), bucket) << "the cache differs from the bucket";
    // Another client's view of the same file system agrees.
    for (const std::string& h : hosts_) {
      if (h != host) {
        EXPECT_EQ(HostTree(h, cache_), bucket) << "as seen from " << h;
      }
    }
    std::string out;
    EXPECT_EQ(HostRun(host, {DS_BINARY, "state", "check", "--cache", cache_}, {}, &out), 0) << out;
    EXPECT_EQ(
        HostRun(host, {DS_BINARY, "audit", "verify", "--log", cache_ + "/.delete-sync/audit.log"},
                {}, &out),
        0)
        << out;
    // Every removal event was recorded (with outcome removed or absent).
    ASSERT_EQ(HostRun(host, {"/bin/cat", cache_ + "/.delete-sync/audit.log"}, {}, &out), 0);
    std::set<std::string> recorded;
    std::istringstream lines(out);
    for (std::string line; std::getline(lines, line);) {
      if (line.empty()) continue;
      json r = json::parse(line);
      if (r.value("type", "") == "removal" && r.contains("key")) recorded.insert(r["key"]);
    }
    for (const std::string& k : deleted) {
      EXPECT_TRUE(recorded.count(k)) << "no audit record of the removal of " << k;
    }
    // No temp file is left: the live hosts' downloads finished, a dead host's were taken over.
    std::string tmp;
    bool clean = WaitFor(
        [&] {
          HostRun(host, {"/bin/ls", "-A", cache_ + "/.delete-sync/tmp"}, {}, &tmp);
          return tmp.empty();
        },
        std::chrono::seconds(90));
    EXPECT_TRUE(clean) << "temp files left:\n" << tmp;
  }

  std::map<std::string, std::string> env_;
  RgwBucket rgw_;
  S3Client* s3_ = nullptr;
  std::string mnt_, bucket_, dir_, shared_, cache_, token_;
  std::vector<std::string> hosts_;
  std::map<std::string, std::unique_ptr<Serve>> serves_;
  std::unique_ptr<HostProcess> lambda_;
};

// Two hosts with `serve`, one of the two processes SIGKILLed mid-stream and started again.
TEST_F(MultiHostTest, TwoHostsServingOneCacheStayEqualToTheBucketWhenOneProcessIsKilled) {
  StartHosts({"mh-a", "mh-b"});
  ASSERT_FALSE(HasFatalFailure());
  std::set<std::string> deleted;
  std::vector<std::string> docs = RecordHistory(150, &deleted);
  ASSERT_FALSE(docs.empty());
  StartServe("mh-a");
  StartServe("mh-b");
  ASSERT_FALSE(HasFatalFailure());
  Replay(docs, 2, nullptr, SIZE_MAX, [&] {
    serves_.at("mh-a")->proc.Kill();
    StartServe("mh-a");
  });
  WaitDrained("mh-b");
  ASSERT_FALSE(HasFatalFailure());
  CheckEndState("mh-b", deleted);
  // The restart released the killed process's claims at once (same host, process gone).
  EXPECT_NE(ReadFile(serves_.at("mh-a")->log).find("did not stop cleanly"), std::string::npos);
}

// Three hosts: two `serve`, one Lambda function. The second serve's whole host dies mid-stream
// (ceph-fuse included: its client session and locks stay until the MDS evicts it), then the host
// and its serve come back. The dead host's claims and temp files are taken over by lease.
TEST_F(MultiHostTest, ThreeHostsWithServeAndLambdaStayEqualToTheBucketWhenAHostDies) {
  StartHosts({"mh-a", "mh-b", "mh-c"});
  ASSERT_FALSE(HasFatalFailure());
  std::set<std::string> deleted;
  std::vector<std::string> docs = RecordHistory(150, &deleted);
  ASSERT_FALSE(docs.empty());
  RuntimeApiServer api;
  StartServe("mh-a");
  StartServe("mh-b");
  StartLambda("mh-c", api);
  ASSERT_FALSE(HasFatalFailure());
  Replay(docs, 3, &api, 2, [&] {
    std::string out;
    EXPECT_EQ(CephfsLab({"host-kill", "mh-b"}, &out), 0) << out;
    serves_.at("mh-b")->proc.Forget();
    EXPECT_EQ(CephfsLab({"host-start", "mh-b"}, &out), 0) << out;
    StartServe("mh-b");
  });
  WaitDrained("mh-a");
  ASSERT_FALSE(HasFatalFailure());
  CheckEndState("mh-a", deleted);
}

// A host that dies holding the state database's write lock blocks the other hosts until the MDS
// evicts its client (about 30 s here): they wait it out, say so in the log and a metric, and fail
// no event.
TEST_F(MultiHostTest, AHostThatDiesHoldingTheStateLockDelaysEventsButFailsNone) {
  StartHosts({"mh-a", "mh-b"});
  ASSERT_FALSE(HasFatalFailure());
  StartServe("mh-a");
  ASSERT_FALSE(HasFatalFailure());
  const auto& serve = *serves_.at("mh-a");
  httplib::Client c("127.0.0.1", serve.port);
  c.set_read_timeout(180);
  ASSERT_TRUE(s3_->PutObject(bucket_, "before", "before").ok());
  auto doc = [&](const std::string& name, const std::string& key) {
    json record = {{"eventVersion", "2.2"},
                   {"eventSource", "ceph:s3"},
                   {"eventTime", "2026-12-07T00:00:00.000Z"},
                   {"eventName", name},
                   {"s3",
                    {{"bucket", {{"name", bucket_}}},
                     {"object", {{"key", key}, {"size", 6}, {"sequencer", "0"}}}}}};
    return json{{"Records", json::array({record})}}.dump();
  };
  auto r = c.Post("/?token=" + token_, doc("ObjectCreated:Put", "before"), "application/json");
  ASSERT_TRUE(r && r->status == 200);
  // Host b takes the write lock of the state database and holds it; then the host dies.
  HostProcess holder;
  const std::string ready = "/tmp/ds-mh-lock-ready-" + RandomSuffix();
  holder.Start("mh-b",
               {"/usr/bin/python3", "-c",
                "import sqlite3, sys, time\n"
                "c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=60)\n"
                "c.execute('BEGIN EXCLUSIVE')\n"
                "open(sys.argv[2], 'w').close()\n"
                "time.sleep(3600)\n",
                cache_ + "/.delete-sync/state.db", ready},
               {}, dir_ + "/holder.log");
  ASSERT_TRUE(WaitFor([&] { return Exists(ready); })) << ReadFile(dir_ + "/holder.log");
  std::filesystem::remove(ready);
  std::string out;
  ASSERT_EQ(CephfsLab({"host-kill", "mh-b"}, &out), 0) << out;
  holder.Forget();
  // Removals and a creation arrive while the dead host's lock stands: all must succeed.
  ASSERT_TRUE(s3_->DeleteObject(bucket_, "before").ok());
  ASSERT_TRUE(s3_->PutObject(bucket_, "after", "after!").ok());
  std::vector<std::thread> posts;
  std::atomic<int> ok{0};
  for (const auto& [name, key] : std::vector<std::pair<std::string, std::string>>{
           {"ObjectRemoved:Delete", "before"}, {"ObjectCreated:Put", "after"}}) {
    posts.emplace_back([&, name = name, key = key] {
      httplib::Client cc("127.0.0.1", serve.port);
      cc.set_read_timeout(180);
      auto rr = cc.Post("/?token=" + token_, doc(name, key), "application/json");
      if (rr && rr->status == 200) {
        ++ok;
      } else {
        ADD_FAILURE() << name << " " << key << ": "
                      << (rr ? std::to_string(rr->status) + " " + rr->body : "no answer");
      }
    });
  }
  for (auto& t : posts) t.join();
  EXPECT_EQ(ok.load(), 2);
  const std::string log = ReadFile(serve.log);
  EXPECT_NE(log.find("is locked by another process for"), std::string::npos)
      << "no log line of the wait";
  auto m = c.Get("/metrics", {{"Authorization", "Bearer " + token_}});
  ASSERT_TRUE(m && m->status == 200);
  const std::string metric = "\ndelete_sync_state_lock_wait_seconds_total ";
  size_t at = m->body.find(metric);
  ASSERT_NE(at, std::string::npos);
  EXPECT_GT(std::stod(m->body.substr(at + metric.size())), 5.0);
  WaitDrained("mh-a");
  std::map<std::string, std::string> want = {{"after", "after!"}};
  EXPECT_EQ(HostTree("mh-a", cache_), want);
}

}  // namespace
}  // namespace ds::itest
