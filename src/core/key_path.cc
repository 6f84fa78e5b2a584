#include "core/key_path.h"

#include "core/cache_fs.h"

namespace ds {

const char* RefusalName(KeyRefusal r) {
  switch (r) {
    case KeyRefusal::kEmpty:
      return "empty";
    case KeyRefusal::kFolderMarker:
      return "folder-marker";
    case KeyRefusal::kLeadingSlash:
      return "leading-slash";
    case KeyRefusal::kDotSegment:
      return "dot-segment";
    case KeyRefusal::kEmptySegment:
      return "empty-segment";
    case KeyRefusal::kControlByte:
      return "control-byte";
    case KeyRefusal::kSegmentTooLong:
      return "segment-too-long";
    case KeyRefusal::kPathTooLong:
      return "path-too-long";
    case KeyRefusal::kReserved:
      return "reserved";
  }
  return "unknown";
}

const char* RefusalReason(KeyRefusal r) {
  switch (r) {
    case KeyRefusal::kEmpty:
      return "the key is empty";
    case KeyRefusal::kFolderMarker:
      return "the key ends in '/' (a folder marker): no file is made";
    case KeyRefusal::kLeadingSlash:
      return "a leading '/' would make an absolute path";
    case KeyRefusal::kDotSegment:
      return "a '.' or '..' segment could leave the cache";
    case KeyRefusal::kEmptySegment:
      return "an empty segment ('//') has no file name";
    case KeyRefusal::kControlByte:
      return "NUL or another control byte cannot be in a file name";
    case KeyRefusal::kSegmentTooLong:
      return "a segment is longer than 255 bytes";
    case KeyRefusal::kPathTooLong:
      return "the path is longer than 4096 bytes";
    case KeyRefusal::kReserved:
      return "the key is inside the reserved folder .delete-sync";
  }
  return "unknown";
}

std::optional<KeyRefusal> CheckKey(std::string_view key, const KeyPathLimits& limits) {
  if (key.empty()) return KeyRefusal::kEmpty;
  for (unsigned char c : key) {
    if (c < 0x20 || c == 0x7F) return KeyRefusal::kControlByte;
  }
  if (key.front() == '/') return KeyRefusal::kLeadingSlash;
  if (key.back() == '/') return KeyRefusal::kFolderMarker;
  // root + '/' + key + NUL must fit in max_path.
  if (limits.root_length + 1 + key.size() + 1 > limits.max_path) return KeyRefusal::kPathTooLong;
  size_t start = 0;
  bool first = true;
  while (start <= key.size()) {
    size_t end = key.find('/', start);
    if (end == std::string_view::npos) end = key.size();
    std::string_view seg = key.substr(start, end - start);
    if (seg.empty()) return KeyRefusal::kEmptySegment;
    if (seg == "." || seg == "..") return KeyRefusal::kDotSegment;
    if (seg.size() > limits.max_segment) return KeyRefusal::kSegmentTooLong;
    if (first && seg == kReservedDir) return KeyRefusal::kReserved;
    first = false;
    start = end + 1;
  }
  return std::nullopt;
}

std::string PrintableKey(std::string_view key, size_t max) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(key.size() < max ? key.size() : max);
  for (unsigned char c : key) {
    if (out.size() >= max) {
      out += "...";
      break;
    }
    if (c < 0x20 || c == 0x7F || c == '\\') {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

}  // namespace ds
