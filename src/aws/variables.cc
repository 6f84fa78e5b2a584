// The helpers of variables.h.
#include "aws/variables.h"

#include <cctype>
#include <cerrno>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>

#include "fs/posix.h"

namespace ds::aws {

std::string TrimSpace(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

std::string LowerAscii(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string Get(const Variables& vars, const char* name) {
  auto it = vars.find(name);
  return it == vars.end() ? std::string() : TrimSpace(it->second);
}

std::string ExpandHome(const std::string& path, const std::string& home) {
  if (path == "~" || path.rfind("~/", 0) == 0) {
    if (home.empty()) return "";
    return home + path.substr(1);
  }
  return path;
}

Result<std::string> ReadSmallFile(const std::string& path, const std::string& what,
                                  size_t max_bytes) {
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    int err = errno;
    if (err == ENOENT) return Status::NotFound(what + " " + path + " does not exist");
    return posix::IoError("read " + what + " " + path, err == 0 ? EIO : err);
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return posix::IoError("read " + what + " " + path, EIO);
  std::string s = text.str();
  if (s.size() > max_bytes) {
    return Status::Invalid(what + " " + path + " is larger than " + std::to_string(max_bytes) +
                           " bytes");
  }
  return s;
}

std::string StsEndpointFor(const std::string& region) {
  if (region.empty()) return "https://sts.amazonaws.com";
  if (region.rfind("cn-", 0) == 0) return "https://sts." + region + ".amazonaws.com.cn";
  return "https://sts." + region + ".amazonaws.com";
}

}  // namespace ds::aws
