// Loads RabbitMQ for bench/amqp.sh, then waits for the workers to drain it.
//
//   amqp_load publish --url URL --exchange X --bucket B --count N [--prefix k/]
//       publishes N one-record removal documents (AWS format, ObjectRemoved:Delete with a
//       sequencer) for keys PREFIX0 .. PREFIX(N-1), persistent and publisher-confirmed, each
//       with routing key PartitionKey(bucket, key) (what `route` uses for a consistent-hash
//       exchange).
//   amqp_load drain --url URL --cache DIR --count N --prefix k/ --queues Q1,Q2,...
//       waits until every queue is empty and none of the N files is left in DIR; prints the
//       seconds since it started (the script starts it together with the workers).
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "transport/amqp.h"
#include "transport/amqp_dispatch.h"

namespace {

using Clock = std::chrono::steady_clock;

std::string Arg(int argc, char** argv, const char* name, const char* def = nullptr) {
  for (int i = 2; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0) return argv[i + 1];
  }
  if (def == nullptr) {
    std::fprintf(stderr, "amqp_load: %s is required\n", name);
    std::exit(2);
  }
  return def;
}

std::string RemovalDocument(const std::string& bucket, const std::string& key, int i) {
  char seq[32];
  std::snprintf(seq, sizeof seq, "%018X", static_cast<unsigned>(i) + 0x100000u);
  nlohmann::json rec = {{"eventVersion", "2.1"},
                        {"eventSource", "aws:s3"},
                        {"awsRegion", "us-east-1"},
                        {"eventTime", "2026-12-02T12:00:00.000Z"},
                        {"eventName", "ObjectRemoved:Delete"},
                        {"s3",
                         {{"s3SchemaVersion", "1.0"},
                          {"bucket", {{"name", bucket}, {"arn", "arn:aws:s3:::" + bucket}}},
                          {"object", {{"key", key}, {"sequencer", seq}}}}}};
  return nlohmann::json{{"Records", nlohmann::json::array({rec})}}.dump();
}

int Fail(const ds::Status& s) {
  std::fprintf(stderr, "amqp_load: %s\n", s.ToString().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: amqp_load publish|drain ...\n");
    return 2;
  }
  const std::string mode = argv[1];
  ds::Result<ds::AmqpUrl> url = ds::ParseAmqpUrl(Arg(argc, argv, "--url"));
  if (!url.ok()) return Fail(url.status());
  const int count = std::atoi(Arg(argc, argv, "--count").c_str());
  const std::string prefix = Arg(argc, argv, "--prefix", "k/");
  ds::Result<std::unique_ptr<ds::AmqpChannel>> ch = ds::AmqpChannel::Open(*url);
  if (!ch.ok()) return Fail(ch.status());

  if (mode == "publish") {
    const std::string exchange = Arg(argc, argv, "--exchange");
    const std::string bucket = Arg(argc, argv, "--bucket");
    ds::Status s = (*ch)->EnableConfirms();
    if (!s.ok()) return Fail(s);
    for (int i = 0; i < count; ++i) {
      const std::string key = prefix + std::to_string(i);
      s = (*ch)->PublishConfirmed(exchange, ds::PartitionKey(bucket, key),
                                  RemovalDocument(bucket, key, i));
      if (!s.ok()) return Fail(s);
    }
    return 0;
  }
  if (mode == "drain") {
    const std::string cache = Arg(argc, argv, "--cache");
    std::vector<std::string> queues;
    std::stringstream ss(Arg(argc, argv, "--queues"));
    for (std::string q; std::getline(ss, q, ',');) queues.push_back(q);
    const Clock::time_point start = Clock::now();
    int next = 0;  // files are removed in no particular order across workers: scan them all
    while (true) {
      bool empty = true;
      for (const std::string& q : queues) {
        ds::Result<uint32_t> d = (*ch)->QueueDepth(q);
        if (!d.ok()) return Fail(d.status());
        if (*d > 0) empty = false;
      }
      if (empty) {
        struct stat st;
        while (next < count &&
               lstat((cache + "/" + prefix + std::to_string(next)).c_str(), &st) != 0) {
          ++next;
        }
        if (next == count) break;
      }
      if (std::chrono::duration<double>(Clock::now() - start).count() > 600) {
        std::fprintf(stderr, "amqp_load: not drained after 600 s\n");
        return 1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    std::printf("%.3f\n", std::chrono::duration<double>(Clock::now() - start).count());
    return 0;
  }
  std::fprintf(stderr, "amqp_load: unknown mode %s\n", mode.c_str());
  return 2;
}
