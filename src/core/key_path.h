// Key -> cache path mapping. The cache copy of key K is <cache-root>/K, '/' making folders.
// Keys that cannot safely be paths are refused with a reason; they are never written or deleted.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace ds {

enum class KeyRefusal {
  kEmpty,           // "" is not a key
  kFolderMarker,    // ends in '/': a folder marker, no file is made
  kLeadingSlash,    // "/x" would be an absolute path
  kDotSegment,      // a "." or ".." segment
  kEmptySegment,    // "a//b"
  kControlByte,     // NUL or another control byte (0x01-0x1F, 0x7F)
  kSegmentTooLong,  // a segment over 255 bytes
  kPathTooLong,     // the whole path over 4096 bytes
  kReserved,        // inside the reserved folder (.delete-sync)
};

// Stable machine name of a refusal, used in logs, counters and JSON: "dot-segment", ...
const char* RefusalName(KeyRefusal r);
// One-line human explanation, e.g. "a '..' or '.' segment could leave the cache".
const char* RefusalReason(KeyRefusal r);

struct KeyPathLimits {
  size_t max_segment = 255;  // NAME_MAX
  size_t max_path = 4096;    // PATH_MAX, counted over <root>/<key>
  size_t root_length = 0;    // bytes of the cache root path, counted into max_path
};

// Returns nullopt when `key` maps to a safe relative path (the key itself), else the reason.
std::optional<KeyRefusal> CheckKey(std::string_view key, const KeyPathLimits& limits = {});

// True when `key` is under `prefix` (plain byte prefix, as S3 prefixes are). "" matches all.
inline bool KeyUnderPrefix(std::string_view key, std::string_view prefix) {
  return key.substr(0, prefix.size()) == prefix;
}

// For logs: the key with control bytes and non-printable bytes escaped as \xNN, truncated
// to `max` bytes with "..." so that a hostile key cannot forge log lines.
std::string PrintableKey(std::string_view key, size_t max = 512);

}  // namespace ds
