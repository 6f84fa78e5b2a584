// The floor for applying removals: unlink each path of a list, nothing else (no parsing, no
// state, no audit record, no fsync).
//   unlink_floor [--lstat] [--threads N] ROOT < keys.txt
// --lstat: lstat each path first (as delete-sync looks at a copy before its removal record).
// --threads N: N threads share the list (default 1: one call after the other).
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

int main(int argc, char** argv) {
  bool lstat_first = false;
  long threads = 1;
  std::string root;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--lstat") == 0) {
      lstat_first = true;
    } else if (std::strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
      threads = std::strtol(argv[++i], nullptr, 10);
    } else if (root.empty() && argv[i][0] != '-') {
      root = argv[i];
    } else {
      root.clear();
      break;
    }
  }
  if (root.empty() || threads < 1 || threads > 256) {
    std::fprintf(stderr, "usage: unlink_floor [--lstat] [--threads N (1-256)] ROOT < keys\n");
    return 2;
  }
  std::vector<std::string> paths;
  for (std::string key; std::getline(std::cin, key);) paths.push_back(root + "/" + key);
  std::atomic<size_t> next{0};
  std::atomic<long> unlinked{0}, failed{0};
  auto work = [&] {
    for (size_t i = next++; i < paths.size(); i = next++) {
      struct stat sb;
      if (lstat_first && ::lstat(paths[i].c_str(), &sb) != 0) {
        ++failed;
        continue;
      }
      if (::unlink(paths[i].c_str()) == 0) {
        ++unlinked;
      } else {
        ++failed;
      }
    }
  };
  std::vector<std::thread> pool;
  for (long t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (std::thread& t : pool) t.join();
  std::printf("unlinked %ld, failed %ld\n", unlinked.load(), failed.load());
  return failed == 0 ? 0 : 1;
}
