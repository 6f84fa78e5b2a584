// The floor for applying removals: unlink each path of a list, nothing else (no parsing, no
// state, no fsync).   unlink_floor ROOT < keys.txt
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <string>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: unlink_floor ROOT < keys\n");
    return 2;
  }
  std::string root = argv[1], key;
  long n = 0, failed = 0;
  while (std::getline(std::cin, key)) {
    if (::unlink((root + "/" + key).c_str()) == 0) {
      ++n;
    } else {
      ++failed;
    }
  }
  std::printf("unlinked %ld, failed %ld\n", n, failed);
  return failed == 0 ? 0 : 1;
}
