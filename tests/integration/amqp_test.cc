// AMQP transport against the real local Ceph RGW publishing to the real local RabbitMQ
// (scripts/rgw-local.sh, scripts/rabbitmq-local.sh): serve consuming a queue, dead letters
// with their reason, `route` partitioning onto a consistent-hash exchange with several
// workers sharing one cache, a second cache fed by its own queue (fan-out), a worker killed
// with SIGKILL and restarted, and the broker restarted. At the end every cache equals the
// bucket and no download temp file is left.
#include "transport/amqp.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "fakes/notification_docs.h"
#include "service_harness.h"

namespace ds::itest {
namespace {

constexpr char kStoreExchange[] = "delete-sync";

std::map<std::string, std::string> ReadAmqpEnv() {
  const char* p = std::getenv("DS_RMQ_ENV_FILE");
  return testenv::ParseEnvExports(ReadFile(p && *p ? p : "/tmp/delete-sync-rabbitmq/env"));
}

class AmqpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    rgw_env_ = ReadRgwEnv();
    ASSERT_FALSE(rgw_env_.empty()) << "no RGW env file: run `scripts/rgw-local.sh start`";
    std::map<std::string, std::string> amqp = ReadAmqpEnv();
    ASSERT_TRUE(amqp.count("DS_AMQP_URL"))
        << "no RabbitMQ env file: run `scripts/rabbitmq-local.sh start` (scripts/test.sh does)";
    amqp_url_ = amqp["DS_AMQP_URL"];
    amqp_port_ = amqp["DS_AMQP_PORT"];
    Result<AmqpUrl> u = ParseAmqpUrl(amqp_url_);
    ASSERT_TRUE(u.ok()) << u.status().ToString();
    url_ = *u;
    id_ = RandomSuffix();
    rgw_.Create("ds-amqp-" + id_);
    ASSERT_FALSE(HasFatalFailure());
    s3_ = &rgw_.s3();
    bucket_ = rgw_.name();
    dir_ = std::filesystem::temp_directory_path() / ("ds-amqp-" + id_);
    std::filesystem::create_directories(dir_);
    Result<std::unique_ptr<AmqpChannel>> ch = AmqpChannel::Open(url_);
    ASSERT_TRUE(ch.ok()) << ch.status().ToString();
    ch_ = std::move(*ch);
  }

  void TearDown() override {
    for (auto& p : procs_) p->Terminate();
    if (HasFailure()) {
      for (auto& p : procs_) std::fprintf(stderr, "---- log ----\n%s\n", p->Log().c_str());
    } else {
      std::filesystem::remove_all(dir_);
    }
    // Leave nothing behind on the shared broker.
    if (Result<std::unique_ptr<AmqpChannel>> ch = AmqpChannel::Open(url_); ch.ok()) {
      for (const std::string& q : queues_) {
        (void)(*ch)->DeleteQueue(q);
        (void)(*ch)->DeleteQueue(q + ".dead-letter");
        (void)(*ch)->DeleteExchange(q + ".dead-letter");
      }
      for (const std::string& x : exchanges_) (void)(*ch)->DeleteExchange(x);
    }
  }

  // A delete-sync process (serve or route) with the lab's S3 variables, logging to <name>.log;
  // stopped with SIGTERM at the end.
  ChildProcess& Spawn(const std::vector<std::string>& args, const std::string& name) {
    std::vector<std::string> argv = {DS_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    procs_.push_back(std::make_unique<ChildProcess>());
    procs_.back()->Start(argv, ChildOptions()
                                   .Env(rgw_env_)
                                   .Log(dir_ + "/" + name + ".log")
                                   .OnDestruction(ChildOptions::AtExit::kTerminate));
    return *procs_.back();
  }

  // serve consuming `queue` bound to `exchange` with `key`, webhook off.
  std::vector<std::string> ServeArgs(const std::string& cache, const std::string& queue,
                                     const std::string& exchange, const std::string& type,
                                     const std::string& key) {
    queues_.insert(queue);
    if (exchange != kStoreExchange) exchanges_.insert(exchange);
    return {"serve",   "--cache",
            cache,     "--bucket",
            bucket_,   "--webhook-listen",
            "off",     "--amqp-url",
            amqp_url_, "--amqp-queue",
            queue,     "--amqp-exchange",
            exchange,  "--amqp-exchange-type",
            type,      "--amqp-binding-key",
            key,       "--amqp-prefetch",
            "32",      "--log-level",
            "debug"};
  }
  std::string Topic() const { return "t-" + id_; }

  bool WaitQueue(const std::string& q) {
    return WaitFor(
        [&] {
          Result<std::unique_ptr<AmqpChannel>> ch = AmqpChannel::Open(url_);
          return ch.ok() && (*ch)->QueueDepth(q).ok();
        },
        std::chrono::seconds(30));
  }
  uint32_t Depth(const std::string& q) {
    Result<std::unique_ptr<AmqpChannel>> ch = AmqpChannel::Open(url_);
    if (!ch.ok()) return UINT32_MAX;
    Result<uint32_t> d = (*ch)->QueueDepth(q);
    return d.ok() ? *d : UINT32_MAX;
  }

  // RGW publishes to the exchange kStoreExchange with the routing key Topic(). As the guest
  // user: radosgw 16 refuses a password in a topic's URL over plain HTTP, and the lab broker
  // allows guest from loopback. One exchange for every topic: radosgw 16 keeps one connection
  // per broker endpoint, tied to the exchange of the first topic that used it.
  void SetupNotifications() {
    std::string out;
    const char* host = std::getenv("DS_IT_AMQP_PUSH_HOST");  // default 127.0.0.1
    std::string push =
        std::string("amqp://") + (host && *host ? host : "127.0.0.1") + ":" + amqp_port_;
    int rc = RunCommand({DS_BINARY, "setup-notifications", "--bucket", bucket_, "--topic", Topic(),
                         "--push-endpoint", push, "--amqp-exchange", kStoreExchange},
                        rgw_env_, &out);
    ASSERT_EQ(rc, 0) << out;
  }

  // Files of `cache` (outside the reserved folder) with their contents.
  static std::map<std::string, std::string> CacheFiles(const std::string& cache) {
    return testfiles::CacheTree(cache);
  }
  static std::vector<std::string> TempFiles(const std::string& cache) {
    std::vector<std::string> out;
    if (!std::filesystem::exists(cache)) return out;
    for (const auto& e : std::filesystem::recursive_directory_iterator(cache)) {
      std::string n = e.path().filename().string();
      if (n.size() > 5 && n.rfind("dl-", 0) == 0 && n.substr(n.size() - 5) == ".part") {
        out.push_back(e.path().string());
      }
    }
    return out;
  }
  std::map<std::string, std::string> BucketContents() {
    std::map<std::string, std::string> out;
    EXPECT_TRUE(s3_->ListObjects(bucket_, "",
                                 [&](const ObjectInfo& o) {
                                   std::string body;
                                   Result<ObjectInfo> r = s3_->GetObject(
                                       bucket_, o.key, "", [&](const char* data, size_t size) {
                                         body.append(data, size);
                                         return Status::Ok();
                                       });
                                   if (r.ok()) out[o.key] = body;
                                   return true;
                                 })
                    .ok());
    return out;
  }

  std::map<std::string, std::string> rgw_env_;
  std::string amqp_url_, amqp_port_, id_, bucket_, dir_;
  AmqpUrl url_;
  RgwBucket rgw_;
  S3Client* s3_ = nullptr;
  std::unique_ptr<AmqpChannel> ch_;
  std::vector<std::unique_ptr<ChildProcess>> procs_;
  std::set<std::string> queues_, exchanges_;
};

TEST_F(AmqpTest, ServeAppliesRgwEventsAndDeadLettersMalformedMessages) {
  const std::string q = "ds-it-q-" + id_;
  const std::string cache = dir_ + "/cache";
  Spawn(ServeArgs(cache, q, kStoreExchange, "topic", Topic()), "serve");
  ASSERT_TRUE(WaitQueue(q));
  SetupNotifications();

  ASSERT_TRUE(s3_->PutObject(bucket_, "a/one.txt", "one").ok());
  ASSERT_TRUE(s3_->PutObject(bucket_, "two.txt", "two").ok());
  ASSERT_TRUE(WaitFor([&] { return ReadFile(cache + "/a/one.txt") == "one"; }));
  ASSERT_TRUE(WaitFor([&] { return ReadFile(cache + "/two.txt") == "two"; }));
  ASSERT_TRUE(s3_->DeleteObject(bucket_, "a/one.txt").ok());
  ASSERT_TRUE(WaitFor([&] { return !Exists(cache + "/a/one.txt"); }));

  // A malformed document goes to the dead-letter queue with its reason, and blocks nothing.
  ASSERT_TRUE(
      ch_->PublishConfirmed(kStoreExchange, Topic(), R"({"Records":[{"eventName":"x"}]})").ok());
  ASSERT_TRUE(WaitFor([&] { return Depth(q + ".dead-letter") == 1; })) << Depth(q + ".dead-letter");
  ASSERT_TRUE(ch_->Consume(q + ".dead-letter").ok());
  Result<std::optional<AmqpDelivery>> d = ch_->Next(5000);
  ASSERT_TRUE(d.ok() && d->has_value());
  EXPECT_EQ((*d)->body, R"({"Records":[{"eventName":"x"}]})");
  EXPECT_NE((*d)->headers["x-delete-sync-reason"].find("malformed notification"), std::string::npos)
      << (*d)->headers["x-delete-sync-reason"];
  EXPECT_EQ((*d)->headers["x-delete-sync-queue"], q);
  ASSERT_TRUE(ch_->Ack((*d)->tag).ok());

  ASSERT_TRUE(s3_->PutObject(bucket_, "three.txt", "three").ok());
  ASSERT_TRUE(WaitFor([&] { return ReadFile(cache + "/three.txt") == "three"; }));
  EXPECT_EQ(Depth(q), 0u);
}

// SEMANTICS.md 5: messages that have already arrived are handed to the handler together (one
// group commit), at most the prefetch at a time, and each is settled by its own verdict.
TEST_F(AmqpTest, MessagesThatArrivedTogetherAreOneGroupEachSettledByItsVerdict) {
  const std::string q = "ds-it-group-" + id_;
  queues_.insert(q);
  AmqpConsumerOptions opts;
  opts.url = url_;
  opts.queue = q;
  opts.prefetch = 16;
  constexpr int kMessages = 200;
  std::mutex mu;
  std::vector<size_t> groups;
  std::set<std::string> seen;
  std::atomic<bool> stop{false};
  AmqpConsumer consumer(opts, [&](const std::vector<AmqpDelivery>& batch) {
    std::vector<AmqpVerdict> verdicts;
    std::lock_guard<std::mutex> lock(mu);
    groups.push_back(batch.size());
    for (const AmqpDelivery& d : batch) {
      seen.insert(d.body);
      AmqpVerdict v;
      if (d.body.rfind("bad-", 0) == 0) v = {AmqpDisposition::kDeadLetter, "test: bad message"};
      verdicts.push_back(v);
    }
    return verdicts;
  });
  // Everything is queued before the consumer starts: it all "arrived together".
  ASSERT_TRUE(consumer.DeclareTopology(*ch_).ok());
  ASSERT_TRUE(ch_->EnableConfirms().ok());
  for (int i = 0; i < kMessages; ++i) {
    std::string body = (i % 50 == 7 ? "bad-" : "m-") + std::to_string(i);
    ASSERT_TRUE(ch_->PublishConfirmed("", q, body).ok()) << i;
  }
  std::thread run([&] { consumer.Run(stop); });
  bool all = WaitFor([&] { return consumer.acked() + consumer.dead_lettered() >= kMessages; },
                     std::chrono::seconds(60));
  stop = true;
  run.join();
  ASSERT_TRUE(all) << "acked " << consumer.acked() << ", dead-lettered "
                   << consumer.dead_lettered();
  EXPECT_EQ(consumer.acked(), static_cast<uint64_t>(kMessages - 4));
  EXPECT_EQ(consumer.dead_lettered(), 4u);
  EXPECT_EQ(consumer.retried(), 0u);
  EXPECT_EQ(seen.size(), static_cast<size_t>(kMessages));
  size_t total = 0, largest = 0;
  for (size_t g : groups) {
    total += g;
    largest = std::max(largest, g);
  }
  EXPECT_EQ(total, static_cast<size_t>(kMessages)) << "a message was handed over twice";
  EXPECT_LE(largest, size_t{16}) << "a group is larger than the prefetch";
  // 200 messages waiting behind a prefetch of 16 are never handed over one at a time.
  EXPECT_GT(largest, size_t{1}) << groups.size() << " groups of one";
  EXPECT_EQ(Depth(q), 0u);
  EXPECT_EQ(Depth(q + ".dead-letter"), 4u);
}

TEST_F(AmqpTest, PartitionedWorkersAndFanOutSurviveKillAndBrokerRestart) {
  const std::string hx = "ds-it-hash-" + id_;    // route -> workers of cache A
  const std::string in_a = "ds-it-in-a-" + id_;  // ingress of cache A (route consumes it)
  const std::string w1 = "ds-it-w1-" + id_, w2 = "ds-it-w2-" + id_;
  const std::string q_b = "ds-it-b-" + id_;  // cache B: one worker, its own queue (fan-out)
  const std::string cache_a = dir_ + "/cache-a", cache_b = dir_ + "/cache-b";
  queues_.insert(in_a);
  exchanges_.insert(hx);

  std::vector<std::string> w1_args = ServeArgs(cache_a, w1, hx, "x-consistent-hash", "1");
  ChildProcess* worker1 = &Spawn(w1_args, "w1");
  Spawn(ServeArgs(cache_a, w2, hx, "x-consistent-hash", "1"), "w2");
  Spawn(ServeArgs(cache_b, q_b, kStoreExchange, "topic", Topic()), "b");
  Spawn({"route", "--amqp-url", amqp_url_, "--amqp-queue", in_a, "--amqp-exchange", kStoreExchange,
         "--amqp-binding-key", Topic(), "--route-to", hx, "--log-level", "debug"},
        "route");
  for (const std::string& q : {in_a, w1, w2, q_b}) ASSERT_TRUE(WaitQueue(q)) << q;
  SetupNotifications();

  // Random puts and deletes over 60 keys from 6 threads; `phase` runs `ops` of them.
  std::atomic<int> failures{0};
  auto phase = [&](int ops, uint64_t seed) {
    std::vector<std::thread> threads;
    for (int t = 0; t < 6; ++t) {
      threads.emplace_back([&, t] {
        std::mt19937_64 rng(seed * 100 + t);
        for (int i = 0; i < ops / 6; ++i) {
          std::string key = "k/" + std::to_string(rng() % 60) + ".bin";
          Status s = (rng() % 3 == 0) ? s3_->DeleteObject(bucket_, key)
                                      : s3_->PutObject(bucket_, key, "v" + std::to_string(rng()));
          if (!s.ok()) ++failures;
        }
      });
    }
    for (auto& th : threads) th.join();
  };

  phase(600, 1);
  worker1->Kill();  // mid-stream: its unacked messages must come back
  phase(600, 2);
  worker1 = &Spawn(w1_args, "w1-restarted");
  phase(300, 3);

  // The broker restarts while the store is idle (RGW's synchronous AMQP push drops what it
  // cannot deliver; a persistent topic would queue it). Durable queues keep their messages.
  std::string out;
  ASSERT_EQ(
      RunCommand({std::string(DS_SOURCE_DIR) + "/scripts/rabbitmq-local.sh", "restart"}, {}, &out),
      0)
      << out;
  // Every consumer is back once a marker object reaches both caches.
  ASSERT_TRUE(WaitFor(
      [&] {
        (void)s3_->PutObject(bucket_, "marker.txt", "m");
        return Exists(cache_a + "/marker.txt") && Exists(cache_b + "/marker.txt");
      },
      std::chrono::seconds(90)));
  phase(600, 4);
  EXPECT_EQ(failures.load(), 0);

  const std::map<std::string, std::string> want = BucketContents();
  ASSERT_GT(want.size(), 5u);
  for (const std::string& cache : {cache_a, cache_b}) {
    bool same = WaitFor([&] { return CacheFiles(cache) == want; }, std::chrono::seconds(90));
    std::map<std::string, std::string> got = CacheFiles(cache);
    std::string diff;
    for (const auto& [k, v] : want) {
      if (!got.count(k))
        diff += " missing:" + k;
      else if (got[k] != v)
        diff += " stale:" + k;
    }
    for (const auto& [k, v] : got) {
      if (!want.count(k)) diff += " deleted-but-present:" + k;
    }
    EXPECT_TRUE(same) << cache << ":" << diff;
    EXPECT_TRUE(TempFiles(cache).empty()) << TempFiles(cache).front();
  }
  for (const std::string& q : {in_a, w1, w2, q_b}) EXPECT_EQ(Depth(q), 0u) << q;
  for (const std::string& q : {w1, w2, q_b}) EXPECT_EQ(Depth(q + ".dead-letter"), 0u) << q;
  // Both workers did part of the work.
  EXPECT_NE(procs_[1]->Log().find("materialised"), std::string::npos);
  EXPECT_NE(worker1->Log().find("amqp: consuming"), std::string::npos);
}

// A removal of `key` in `bucket` as RGW publishes it.
std::string RgwRemovalDoc(const std::string& bucket, const std::string& key) {
  return testdocs::Document({testdocs::Rgw("ObjectRemoved:Delete", bucket, key)});
}

// serve on `queue` only (webhook off, no reconcile: only AMQP can remove a file).
std::vector<std::string> AmqpOnlyServe(const std::string& cache, const std::string& bucket,
                                       const std::string& url, const std::string& queue) {
  return {"serve", "--cache",           cache, "--bucket",     bucket, "--webhook-listen",
          "off",   "--amqp-url",        url,   "--amqp-queue", queue,  "--reconcile-at-start",
          "off",   "--reconcile-every", "off", "--log-level",  "debug"};
}

// Issue 19, seen 6: operators declare queues with their own tooling, plain and durable, with
// dead-lettering set by a policy (as RabbitMQ recommends). serve looped for ever on "406
// PRECONDITION_FAILED - inequivalent arg 'x-dead-letter-exchange'", consuming nothing. Now an
// existing queue is used as it is: its messages are applied, and malformed ones still reach
// the dead-letter queue with their reason.
TEST_F(AmqpTest, ExistingQueuesPlainOrWithAPolicyAreUsedAsTheyAre) {
  const std::string plain = "ds-it-plain-" + id_, with_policy = "ds-it-policy-" + id_;
  const std::string policy = "ds-it-dlx-" + id_;
  queues_.insert(plain);
  queues_.insert(with_policy);
  const std::string ctl = std::string(DS_SOURCE_DIR) + "/scripts/rabbitmq-local.sh";
  std::string out;
  ASSERT_EQ(RunCommand({ctl, "ctl", "set_policy", policy, "^" + with_policy + "$",
                        R"({"dead-letter-exchange":"ds-it-policy-dlx"})", "--apply-to", "queues"},
                       {}, &out),
            0)
      << out;
  ASSERT_TRUE(ch_->DeclareQueue(plain).ok());
  ASSERT_TRUE(ch_->DeclareQueue(with_policy).ok());
  for (const std::string& q : {plain, with_policy}) {
    const std::string cache = dir_ + "/" + q;
    std::filesystem::create_directories(cache);
    { std::ofstream(cache + "/gone.txt") << "x"; }
    ChildProcess& p = Spawn(AmqpOnlyServe(cache, bucket_, amqp_url_, q), q);
    ASSERT_TRUE(WaitFor([&] { return p.Log().find("amqp: consuming queue") != std::string::npos; }))
        << p.Log();
    EXPECT_NE(p.Log().find("using the existing queue '" + q + "' as it is"), std::string::npos)
        << p.Log();
    ASSERT_TRUE(ch_->PublishConfirmed("", q, RgwRemovalDoc(bucket_, "gone.txt")).ok());
    EXPECT_TRUE(WaitFor([&] { return !Exists(cache + "/gone.txt"); })) << q;
    ASSERT_TRUE(ch_->PublishConfirmed("", q, "{not json").ok());
    EXPECT_TRUE(WaitFor([&] { return Depth(q + ".dead-letter") == 1; }))
        << q << ": " << Depth(q + ".dead-letter");
    EXPECT_TRUE(WaitFor([&] { return Depth(q) == 0; })) << q;
    EXPECT_EQ(p.Log().find("PRECONDITION_FAILED"), std::string::npos) << p.Log();
  }
  RunCommand({ctl, "ctl", "clear_policy", policy}, {}, &out);
}

// Issue 19, seen 6: a broker error that retrying cannot change (a vhost that does not exist, a
// dead-letter exchange declared by someone else with another type) ends the consumer with the
// broker's reason, once, and /readyz says why, instead of a reconnect loop.
TEST_F(AmqpTest, PermanentBrokerErrorsStopTheConsumerAndReadyzSaysWhy) {
  const std::string no_vhost = "amqp://" + url_.user + ":" + url_.password + "@" + url_.host + ":" +
                               std::to_string(url_.port) + "/no-such-vhost-" + id_;
  const std::string q = "ds-it-perm-" + id_;
  queues_.insert(q);
  // The dead-letter exchange exists as a direct exchange: delete-sync's fanout declare is 406.
  ASSERT_TRUE(ch_->DeclareExchange(q + ".dead-letter", "direct").ok());
  struct Case {
    std::string url, name, expect;
  };
  for (const Case& c : {Case{no_vhost, "vhost", "530"}, Case{amqp_url_, "dlx", "406"}}) {
    const int port = FreePort();
    std::vector<std::string> args = AmqpOnlyServe(dir_ + "/" + c.name, bucket_, c.url, q);
    args.insert(args.end(), {"--metrics-listen", "127.0.0.1:" + std::to_string(port)});
    ChildProcess& p = Spawn(args, c.name);
    ASSERT_TRUE(WaitFor([&] {
      return p.Log().find("amqp: stopped consuming") != std::string::npos;
    })) << p.Log();
    EXPECT_NE(p.Log().find(c.expect), std::string::npos) << p.Log();
    EXPECT_NE(p.Log().find("not a passing failure"), std::string::npos) << p.Log();
    httplib::Client hc("127.0.0.1", port);
    auto r = hc.Get("/readyz");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 503);
    EXPECT_NE(r->body.find("\"amqp\""), std::string::npos) << r->body;
    EXPECT_NE(r->body.find("stopped: "), std::string::npos) << r->body;
    std::this_thread::sleep_for(std::chrono::seconds(2));
    EXPECT_EQ(p.Log().find("reconnecting"), std::string::npos) << p.Log();
    EXPECT_TRUE(p.Running()) << "serve keeps running (its /readyz says why)";
  }
}

}  // namespace
}  // namespace ds::itest
