// The floor of any reconciliation: paginating ListObjectsV2 over the bucket and nothing else.
//   list_floor --bucket B [--prefix P] [--print]
// --print: one line "KEY SIZE" per object on stdout (for checking a copy against the bucket).
#include <cstdio>
#include <string>

#include "s3/client.h"

int main(int argc, char** argv) {
  std::string bucket, prefix;
  bool print = false;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--print") print = true;
  }
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--bucket") bucket = argv[i + 1];
    if (a == "--prefix") prefix = argv[i + 1];
  }
  auto cfg = ds::S3Config::FromEnvironment();
  if (bucket.empty() || !cfg.ok()) {
    std::fprintf(stderr, "usage: list_floor --bucket B [--prefix P] (AWS_* variables set)\n");
    return 2;
  }
  ds::S3Client s3(*cfg);
  long n = 0;
  unsigned long long bytes = 0;
  ds::Status s = s3.ListObjects(bucket, prefix, [&](const ds::ObjectInfo& o) {
    ++n;
    bytes += o.size;
    if (print) std::printf("%s %llu\n", o.key.c_str(), static_cast<unsigned long long>(o.size));
    return true;
  });
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  std::fprintf(print ? stderr : stdout, "listed %ld objects, %llu bytes\n", n, bytes);
  return 0;
}
