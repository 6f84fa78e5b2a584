// Integration tests against the local Ceph RGW started by `scripts/rgw-local.sh start`:
// reading its env file into an S3Config, and throw-away buckets with unique names.
// Header-only. The tests never start RGW themselves.
#pragma once

#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "s3/client.h"

namespace ds::testenv {

// $DS_RGW_ENV_FILE, default /tmp/delete-sync-rgw/env.
inline std::string RgwEnvFile() {
  const char* p = std::getenv("DS_RGW_ENV_FILE");
  return (p != nullptr && *p != '\0') ? p : "/tmp/delete-sync-rgw/env";
}

// Parses shell assignments such as `export A=1 B='two words'` (one or several per line, values
// unquoted, 'single-quoted' or "double-quoted" with backslash escapes). Comments and other
// lines are ignored.
inline std::map<std::string, std::string> ParseEnvExports(const std::string& text) {
  std::map<std::string, std::string> vars;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    std::vector<std::string> words;
    std::string word;
    bool in_word = false;
    for (size_t i = 0; i < line.size(); ++i) {
      char c = line[i];
      if (c == '#' && !in_word) break;
      if (std::isspace(static_cast<unsigned char>(c))) {
        if (in_word) words.push_back(word);
        word.clear();
        in_word = false;
        continue;
      }
      in_word = true;
      if (c == '\'') {
        size_t end = line.find('\'', i + 1);
        if (end == std::string::npos) end = line.size();
        word += line.substr(i + 1, end - i - 1);
        i = end;
      } else if (c == '"') {
        for (++i; i < line.size() && line[i] != '"'; ++i) {
          if (line[i] == '\\' && i + 1 < line.size()) ++i;
          word += line[i];
        }
      } else if (c == '\\' && i + 1 < line.size()) {
        word += line[++i];
      } else {
        word += c;
      }
    }
    if (in_word) words.push_back(word);
    for (const std::string& w : words) {
      size_t eq = w.find('=');
      if (eq == std::string::npos || eq == 0) continue;  // "export", flags
      vars[w.substr(0, eq)] = w.substr(eq + 1);
    }
  }
  return vars;
}

// The RGW lab's S3Config. An error (never a skip) when the env file is missing: the test
// command must run `scripts/rgw-local.sh start` first.
inline Result<S3Config> LoadRgwConfig() {
  const std::string path = RgwEnvFile();
  std::ifstream in(path);
  if (!in) {
    return Status::NotFound("RGW env file " + path +
                            " not found: run `scripts/rgw-local.sh start` before the integration "
                            "tests (or point DS_RGW_ENV_FILE at the env file)");
  }
  std::stringstream text;
  text << in.rdbuf();
  Result<S3Config> c = S3Config::FromVariables(ParseEnvExports(text.str()));
  if (!c.ok()) {
    return Status(c.status().code(), "RGW env file " + path + ": " + c.status().message() +
                                         " (re-run `scripts/rgw-local.sh start`)");
  }
  return c;
}

// "ds-<prefix>-<pid>-<time>-<counter><random>": lowercase, [a-z0-9-], 3..63 characters.
inline std::string UniqueBucketName(std::string_view prefix) {
  static std::atomic<unsigned> counter{0};
  std::string clean;
  for (char c : prefix) {
    char l = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    clean += ((l >= 'a' && l <= 'z') || (l >= '0' && l <= '9')) ? l : '-';
  }
  if (clean.size() > 24) clean.resize(24);
  std::mt19937 rng(std::random_device{}());
  auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  std::ostringstream s;
  s << "ds-" << clean << "-" << ::getpid() << "-" << std::hex << now << "-" << counter++
    << (rng() % 0xFFFF);
  std::string name = s.str();
  if (name.size() > 63) name.resize(63);
  while (!name.empty() && name.back() == '-') name.pop_back();
  return name;
}

inline Result<std::string> CreateUniqueBucket(S3Client& client, std::string_view prefix) {
  std::string name = UniqueBucketName(prefix);
  Status s = client.CreateBucket(name);
  if (!s.ok()) return s;
  return name;
}

// Deletes every version and delete marker, then the bucket.
inline Status EmptyAndDeleteBucket(S3Client& client, const std::string& bucket) {
  Result<std::vector<ObjectVersion>> versions = client.ListObjectVersions(bucket, "");
  if (!versions.ok()) return versions.status();
  std::vector<ObjectId> ids;
  for (const ObjectVersion& v : *versions) ids.push_back({v.key, v.version_id});
  if (!ids.empty()) {
    Result<std::vector<DeleteOutcome>> r = client.DeleteObjects(bucket, ids);
    if (!r.ok()) return r.status();
    for (const DeleteOutcome& o : *r) {
      if (!o.deleted) {
        return Status::Internal("cannot delete s3://" + bucket + "/" + o.id.key + ": " +
                                o.error_code + " " + o.error_message);
      }
    }
  }
  return client.DeleteBucket(bucket);
}

}  // namespace ds::testenv
