// The key-to-path mapping: a key CheckKey accepts must be a relative path that stays inside
// the cache root, whatever bytes it holds; S3 key decoding and log escaping must not crash and
// PrintableKey must never emit a control byte.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "core/cache_fs.h"
#include "core/key_path.h"
#include "core/parse_events.h"
#include "fuzz_common.h"

namespace {

void CheckAccepted(std::string_view key, const ds::KeyPathLimits& limits) {
  FUZZ_CHECK(!key.empty(), "an accepted key is not empty");
  FUZZ_CHECK(key.front() != '/', "an accepted key is relative");
  FUZZ_CHECK(key.back() != '/', "an accepted key is not a folder marker");
  FUZZ_CHECK(key.size() + limits.root_length + 1 <= limits.max_path, "path length bounded");
  size_t start = 0;
  bool first = true;
  while (start <= key.size()) {
    size_t end = key.find('/', start);
    if (end == std::string_view::npos) end = key.size();
    std::string_view seg = key.substr(start, end - start);
    FUZZ_CHECK(!seg.empty(), "no empty segment");
    FUZZ_CHECK(seg != "." && seg != "..", "no dot segment");
    FUZZ_CHECK(seg.size() <= limits.max_segment, "segment length bounded");
    if (first) FUZZ_CHECK(seg != ds::kReservedDir, "not inside the reserved folder");
    first = false;
    start = end + 1;
  }
  for (char c : key) {
    auto u = static_cast<unsigned char>(c);
    FUZZ_CHECK(u >= 0x20 && u != 0x7F, "no control byte");
  }
  // Lexically, <root>/<key> stays under <root>.
  std::filesystem::path root("/cache-root");
  std::filesystem::path joined = (root / std::string(key)).lexically_normal();
  std::filesystem::path rel = joined.lexically_relative(root);
  FUZZ_CHECK(!rel.empty() && *rel.begin() != "..", "the path stays under the root");
  FUZZ_CHECK(rel.string() == key, "the path is the key itself");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view key(reinterpret_cast<const char*>(data), size);
  ds::KeyPathLimits limits;
  limits.root_length = 11;  // "/cache-root"
  if (!ds::CheckKey(key, limits)) CheckAccepted(key, limits);
  // Small limits reach the length refusals with short inputs.
  ds::KeyPathLimits tight{8, 24, 4};
  if (!ds::CheckKey(key, tight)) CheckAccepted(key, tight);

  std::string printable = ds::PrintableKey(key, 64);
  for (char c : printable) {
    auto u = static_cast<unsigned char>(c);
    FUZZ_CHECK(u >= 0x20 && u != 0x7F, "PrintableKey emits no control byte");
  }
  FUZZ_CHECK(printable.size() <= 64 + 6, "PrintableKey output is bounded");

  ds::Result<std::string> decoded = ds::DecodeS3Key(key);
  if (decoded.ok()) FUZZ_CHECK(decoded->size() <= key.size(), "decoding never grows a key");
  return 0;
}
