// The audit log's line format (record.h). The format is specified in docs/AUDIT_FORMAT.md; keep
// the two in step.
#include "audit/record.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <climits>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string_view>

#include "crypto/digest.h"

namespace ds::audit_internal {
namespace {

using ojson = nlohmann::ordered_json;

// A line with an HMAC ends with these 75 bytes: ,"hmac":"<64 hex>"}
constexpr std::string_view kHmacPrefix = ",\"hmac\":\"";
constexpr size_t kHmacSuffixLen = 9 + kHashHexLen + 2;
constexpr size_t kMaxTypeLen = 64;

using crypto::Base64;
std::string HmacHex(const std::string& key, std::string_view data) {
  return crypto::HmacSha256Hex(key, data);
}

// RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF.
bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len = 0;
    uint32_t cp = 0;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
      cp = c & 0x1Fu;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      cp = c & 0x0Fu;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      cp = c & 0x07u;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3Fu);
    }
    if (len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) return false;
    if (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) return false;
    i += len;
  }
  return true;
}

bool IsLowerHex64(const std::string& s) {
  return s.size() == kHashHexLen && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// "YYYY-MM-DDTHH:MM:SS.mmmZ"
bool IsUtcMillis(const std::string& s) {
  static const char kPattern[] = "dddd-dd-ddTdd:dd:dd.dddZ";
  if (s.size() != sizeof kPattern - 1) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (kPattern[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != kPattern[i]) return false;
  }
  return true;
}

}  // namespace

bool IsTypeName(const std::string& s) {
  if (s.empty() || s.size() > kMaxTypeLen || s[0] < 'a' || s[0] > 'z') return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

bool IsReservedField(const std::string& name) {
  return name == "seq" || name == "time" || name == "prev" || name == "type" || name == "hmac";
}

std::string JsonStr(const std::string& s) { return nlohmann::json(s).dump(); }

void AddStringField(std::string* out, const char* name, const std::string& value) {
  *out += ",\"";
  *out += name;
  if (IsValidUtf8(value)) {
    *out += "\":";
    *out += JsonStr(value);
  } else {
    *out += "_b64\":\"";
    *out += Base64(value);
    *out += '"';
  }
}

std::string BuildLine(int64_t seq, const std::string& time_json, const std::string& prev,
                      const std::string& type, const std::string& fields,
                      const std::optional<std::string>& hmac_key) {
  std::string line = "{\"seq\":" + std::to_string(seq) + ",\"time\":" + time_json + ",\"prev\":\"" +
                     prev + "\",\"type\":" + JsonStr(type) + fields;
  if (hmac_key) {
    std::string mac = HmacHex(*hmac_key, line);
    line += kHmacPrefix;
    line += mac;
    line += '"';
  }
  line += '}';
  return line;
}

std::string ParseEnvelope(const std::string& line, Envelope* e) {
  *e = Envelope{};
  ojson j;
  try {
    j = ojson::parse(line);
  } catch (const nlohmann::json::parse_error& ex) {
    return "not valid JSON (error at byte " + std::to_string(ex.byte) + " of the line)";
  }
  if (!j.is_object()) return "not a JSON object";
  static const char* const kHead[] = {"seq", "time", "prev", "type"};
  auto it = j.begin();
  for (const char* name : kHead) {
    if (it == j.end() || it.key() != name) {
      return "the record does not begin with the members seq, time, prev, type in this order";
    }
    ++it;
  }
  const ojson& seq = j["seq"];
  if (!seq.is_number_integer()) return "seq is not an integer";
  if (seq.is_number_unsigned() ? seq.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)
                               : seq.get<int64_t>() < 1) {
    return "seq is out of range";
  }
  e->seq = seq.get<int64_t>();
  if (!j["time"].is_string() || !IsUtcMillis(j["time"].get<std::string>())) {
    return "time is not a UTC timestamp YYYY-MM-DDTHH:MM:SS.mmmZ";
  }
  if (!j["prev"].is_string() || !IsLowerHex64(j["prev"].get<std::string>())) {
    return "prev is not 64 lowercase hex digits";
  }
  e->prev = j["prev"].get<std::string>();
  if (!j["type"].is_string() || !IsTypeName(j["type"].get<std::string>())) {
    return "type is not a record type name ([a-z][a-z0-9-]*)";
  }
  auto h = j.find("hmac");
  if (h != j.end()) {
    if (std::next(h) != j.end()) return "hmac is not the last member";
    if (!h->is_string() || !IsLowerHex64(h->get<std::string>())) {
      return "hmac is not 64 lowercase hex digits";
    }
    e->has_hmac = true;
    e->hmac = h->get<std::string>();
  }
  if (HasFloat(j)) return "holds a floating-point number (only integers are allowed)";
  if (j.dump() != line) {
    return "not in canonical form (its spacing, escaping or numbers differ from the canonical "
           "serialisation)";
  }
  return "";
}

// HMAC-SHA-256 over the line's bytes before ,"hmac": (the line ends with kHmacSuffixLen bytes).
bool HmacMatches(const std::string& key, const std::string& line, const Envelope& e) {
  if (!e.has_hmac || line.size() < kHmacSuffixLen) return false;
  std::string want = HmacHex(key, std::string_view(line).substr(0, line.size() - kHmacSuffixLen));
  return CRYPTO_memcmp(want.data(), e.hmac.data(), kHashHexLen) == 0;
}

}  // namespace ds::audit_internal
