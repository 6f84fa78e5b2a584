// File helpers shared by the unit and integration tests: read and write a whole file, whether a
// path exists (without following a symlink), and the keys of a cache with their contents.
// Header-only; test code only (no error is reported: a missing file reads as "").
#pragma once

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <system_error>

#include "core/cache_fs.h"

namespace ds::testfiles {

// The whole file; "" when it cannot be read.
inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Replaces the file's contents (creates it).
inline void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
}

// Whether anything (a symlink too, dangling or not) is at `path`.
inline bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

// The regular files below the cache root `root`, by path relative to it (the key), with their
// contents; the reserved folder at the top (kReservedDir) is left out. Empty when `root` does not
// exist; a folder removed while it is read is skipped.
inline std::map<std::string, std::string> CacheTree(const std::string& root) {
  namespace fs = std::filesystem;
  std::map<std::string, std::string> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const fs::path rel = it->path().lexically_relative(root);
    if (it.depth() == 0 && rel == kReservedDir) {
      it.disable_recursion_pending();
      continue;
    }
    std::error_code type_ec;
    if (it->is_regular_file(type_ec)) out[rel.string()] = ReadFile(it->path());
  }
  return out;
}

}  // namespace ds::testfiles
