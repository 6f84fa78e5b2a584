// Fills a bucket with N small objects, in parallel, for benchmarks.
//   fill_bucket --bucket B --count N [--size 1024] [--threads 16] [--prefix p/]
// Keys: <prefix>dNNN/objNNNNNNN.bin (1,000 folders), so listings and cache walks are nested.
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "s3/client.h"

int main(int argc, char** argv) {
  std::string bucket, prefix;
  long count = 0, size = 1024, threads = 16;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--bucket") bucket = argv[i + 1];
    if (a == "--count") count = std::atol(argv[i + 1]);
    if (a == "--size") size = std::atol(argv[i + 1]);
    if (a == "--threads") threads = std::atol(argv[i + 1]);
    if (a == "--prefix") prefix = argv[i + 1];
  }
  if (bucket.empty() || count <= 0) {
    std::fprintf(stderr, "usage: fill_bucket --bucket B --count N [--size BYTES] [--threads T]\n");
    return 2;
  }
  auto cfg = ds::S3Config::FromEnvironment();
  if (!cfg.ok()) {
    std::fprintf(stderr, "%s\n", cfg.status().ToString().c_str());
    return 2;
  }
  ds::S3Client s3(*cfg);
  if (ds::Status s = s3.CreateBucket(bucket); !s.ok()) {
    std::fprintf(stderr, "create bucket: %s\n", s.ToString().c_str());
    return 1;
  }
  std::string body(static_cast<size_t>(size), 'b');
  std::atomic<long> next{0}, failed{0};
  std::vector<std::thread> pool;
  for (long t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      for (long i = next++; i < count; i = next++) {
        char key[96];
        std::snprintf(key, sizeof key, "%sd%03ld/obj%07ld.bin", prefix.c_str(), i % 1000, i);
        if (!s3.PutObject(bucket, key, body).ok()) ++failed;
      }
    });
  }
  for (auto& t : pool) t.join();
  std::printf("filled s3://%s with %ld objects of %ld bytes (%ld failed)\n", bucket.c_str(), count,
              size, failed.load());
  return failed.load() == 0 ? 0 : 1;
}
