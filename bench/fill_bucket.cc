// Fills a bucket with N small objects, in parallel, for benchmarks.
//   fill_bucket --bucket B --count N [--size 1024] [--threads 16] [--prefix p/]
//               [--every K [--offset R]] [--delete]
// Keys: <prefix>dNNN/objNNNNNNN.bin (1,000 folders), so listings and cache walks are nested.
// --every K: only the keys whose number i has i % K == R (one in K); --delete: removes those
// keys (DeleteObjects, 1,000 per request) instead of putting them.
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "s3/client.h"

int main(int argc, char** argv) {
  std::string bucket, prefix;
  long count = 0, size = 1024, threads = 16, every = 1, offset = 0;
  bool remove = false;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--delete") remove = true;
  }
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--bucket") bucket = argv[i + 1];
    if (a == "--count") count = std::atol(argv[i + 1]);
    if (a == "--size") size = std::atol(argv[i + 1]);
    if (a == "--threads") threads = std::atol(argv[i + 1]);
    if (a == "--prefix") prefix = argv[i + 1];
    if (a == "--every") every = std::atol(argv[i + 1]);
    if (a == "--offset") offset = std::atol(argv[i + 1]);
  }
  if (bucket.empty() || count <= 0 || every <= 0 || offset < 0 || offset >= every) {
    std::fprintf(stderr,
                 "usage: fill_bucket --bucket B --count N [--size BYTES] [--threads T] "
                 "[--prefix P] [--every K [--offset R]] [--delete]\n");
    return 2;
  }
  auto cfg = ds::S3Config::FromEnvironment();
  if (!cfg.ok()) {
    std::fprintf(stderr, "%s\n", cfg.status().ToString().c_str());
    return 2;
  }
  ds::S3Client s3(*cfg);
  auto key_of = [&](long i) {
    char key[96];
    std::snprintf(key, sizeof key, "%sd%03ld/obj%07ld.bin", prefix.c_str(), i % 1000, i);
    return std::string(key);
  };
  if (remove) {
    std::vector<ds::ObjectId> ids;
    for (long i = offset; i < count; i += every) ids.push_back({key_of(i), ""});
    auto out = s3.DeleteObjects(bucket, ids);
    if (!out.ok()) {
      std::fprintf(stderr, "delete: %s\n", out.status().ToString().c_str());
      return 1;
    }
    long failed = 0;
    for (const ds::DeleteOutcome& o : *out) failed += o.deleted ? 0 : 1;
    std::printf("deleted %ld objects of s3://%s (%ld failed)\n", static_cast<long>(ids.size()),
                bucket.c_str(), failed);
    return failed == 0 ? 0 : 1;
  }
  if (ds::Status s = s3.CreateBucket(bucket); !s.ok()) {
    std::fprintf(stderr, "create bucket: %s\n", s.ToString().c_str());
    return 1;
  }
  std::string body(static_cast<size_t>(size), 'b');
  std::atomic<long> next{0}, failed{0};
  std::vector<std::thread> pool;
  for (long t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      for (long j = next++; offset + j * every < count; j = next++) {
        if (!s3.PutObject(bucket, key_of(offset + j * every), body).ok()) ++failed;
      }
    });
  }
  for (auto& t : pool) t.join();
  std::printf("filled s3://%s with %ld objects of %ld bytes (%ld failed)\n", bucket.c_str(),
              (count - offset + every - 1) / every, size, failed.load());
  return failed.load() == 0 ? 0 : 1;
}
