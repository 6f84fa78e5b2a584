// Measures, for N objects of a bucket mirrored by a running `delete-sync serve`, the time from
// an S3 DELETE returning to the cache file being gone, and how long the DELETE call took.
//
//   delete_latency --bucket B --cache DIR [--count 100] [--size 1024]
//
// Uses the AWS_* variables for the store. Prints one line per figure and a JSON summary.
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "s3/client.h"

namespace {

using Clock = std::chrono::steady_clock;

bool Exists(const std::string& p) {
  struct stat st;
  return lstat(p.c_str(), &st) == 0;
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  if (v.empty()) return 0;
  size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

}  // namespace

int main(int argc, char** argv) {
  std::string bucket, cache;
  int count = 100;
  size_t size = 1024;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--bucket")
      bucket = argv[i + 1];
    else if (a == "--cache")
      cache = argv[i + 1];
    else if (a == "--count")
      count = std::atoi(argv[i + 1]);
    else if (a == "--size")
      size = static_cast<size_t>(std::atol(argv[i + 1]));
  }
  if (bucket.empty() || cache.empty() || count <= 0) {
    std::fprintf(stderr,
                 "usage: delete_latency --bucket B --cache DIR [--count N] [--size BYTES]\n");
    return 2;
  }
  auto cfg = ds::S3Config::FromEnvironment();
  if (!cfg.ok()) {
    std::fprintf(stderr, "%s\n", cfg.status().ToString().c_str());
    return 2;
  }
  ds::S3Client s3(*cfg);
  std::string body(size, 'x');
  std::vector<std::string> keys;
  auto t_start = Clock::now();
  for (int i = 0; i < count; ++i) {
    char k[64];
    std::snprintf(k, sizeof k, "lat/%05d.bin", i);
    keys.push_back(k);
    ds::Status s = s3.PutObject(bucket, k, body);
    if (!s.ok()) {
      std::fprintf(stderr, "put %s: %s\n", k, s.ToString().c_str());
      return 1;
    }
  }
  auto puts_done = Clock::now();
  // Wait until every object is in the cache. A persistent RGW topic delivers a burst slowly and
  // out of order (RGW 16.2: 300 PUTs took about two minutes), so the limit is on a stall: no
  // new object in the cache for 120 s.
  const auto kStall = std::chrono::seconds(120);
  auto last_progress = Clock::now();
  std::vector<const std::string*> pending;
  for (const std::string& k : keys) pending.push_back(&k);
  while (!pending.empty()) {
    size_t before = pending.size();
    std::erase_if(pending, [&](const std::string* k) { return Exists(cache + "/" + *k); });
    if (pending.size() < before) {
      last_progress = Clock::now();
    } else if (Clock::now() - last_progress > kStall) {
      std::fprintf(stderr,
                   "timed out: %zu objects (%s first) not in the cache, none new for 120 s\n",
                   pending.size(), pending.front()->c_str());
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  auto filled = Clock::now();
  std::printf("puts: %d in %.2f s; all in the cache %.2f s after the last put returned\n", count,
              std::chrono::duration<double>(puts_done - t_start).count(),
              std::chrono::duration<double>(filled - puts_done).count());
  std::vector<double> after_return_ms, call_ms, total_ms;
  int gone_before_return = 0;
  for (const std::string& k : keys) {
    std::string path = cache + "/" + k;
    auto t0 = Clock::now();
    ds::Status s = s3.DeleteObject(bucket, k);
    auto t1 = Clock::now();
    if (!s.ok()) {
      std::fprintf(stderr, "delete %s: %s\n", k.c_str(), s.ToString().c_str());
      return 1;
    }
    if (!Exists(path)) ++gone_before_return;
    while (Exists(path)) {
      if (Clock::now() - t1 > std::chrono::seconds(60)) {
        std::fprintf(stderr, "%s still in the cache 60 s after its DELETE\n", k.c_str());
        return 1;
      }
      std::this_thread::yield();
    }
    auto t2 = Clock::now();
    auto ms = [](auto d) { return std::chrono::duration<double, std::milli>(d).count(); };
    call_ms.push_back(ms(t1 - t0));
    after_return_ms.push_back(ms(t2 - t1));
    total_ms.push_back(ms(t2 - t0));
  }
  std::printf("deletes: %d (objects of %zu bytes)\n", count, size);
  std::printf("gone already when DELETE returned: %d of %d\n", gone_before_return, count);
  std::printf("DELETE return -> file gone: median %.3f ms, p99 %.3f ms, max %.3f ms\n",
              Percentile(after_return_ms, 0.5), Percentile(after_return_ms, 0.99),
              Percentile(after_return_ms, 1.0));
  std::printf("DELETE sent -> file gone:   median %.3f ms, p99 %.3f ms, max %.3f ms\n",
              Percentile(total_ms, 0.5), Percentile(total_ms, 0.99), Percentile(total_ms, 1.0));
  std::printf("DELETE call duration:       median %.3f ms, p99 %.3f ms, max %.3f ms\n",
              Percentile(call_ms, 0.5), Percentile(call_ms, 0.99), Percentile(call_ms, 1.0));
  std::printf(
      "{\"count\":%d,\"gone_before_return\":%d,\"after_return_ms\":{\"median\":%.3f,\"p99\":%.3f,"
      "\"max\":%.3f},\"sent_to_gone_ms\":{\"median\":%.3f,\"p99\":%.3f,\"max\":%.3f}}\n",
      count, gone_before_return, Percentile(after_return_ms, 0.5),
      Percentile(after_return_ms, 0.99), Percentile(after_return_ms, 1.0),
      Percentile(total_ms, 0.5), Percentile(total_ms, 0.99), Percentile(total_ms, 1.0));
  return 0;
}
