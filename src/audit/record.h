// Private to src/audit/: one record of the audit log as a line of bytes, as specified in
// docs/AUDIT_FORMAT.md (keep the two in step). Building a line (the envelope, the fields, the
// HMAC), the rules its fields follow, and reading back a line's envelope as a verifier does.
// Pure functions of their arguments: no files, no clock, no locks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace ds::audit_internal {

inline constexpr size_t kHashHexLen = 64;
// The "prev" of the first record, and the head hash of an empty log.
inline const std::string kZeroHash(kHashHexLen, '0');
inline constexpr size_t kMaxRecordBytes = 1u << 20;

// A record type name: [a-z][a-z0-9-]* of at most 64 bytes.
bool IsTypeName(const std::string& s);

// The envelope's names, which a record's own fields may not use.
bool IsReservedField(const std::string& name);

// Whether a JSON value (nlohmann::json or ordered_json) holds a floating-point number anywhere.
template <typename J>
bool HasFloat(const J& j) {
  if (j.is_number_float()) return true;
  if (j.is_structured()) {
    for (const auto& v : j) {
      if (HasFloat(v)) return true;
    }
  }
  return false;
}

// A string as canonical JSON (the string must be valid UTF-8).
std::string JsonStr(const std::string& s);

// ,"name":"value" or, when value is not valid UTF-8, ,"name_b64":"<base64>"
void AddStringField(std::string* out, const char* name, const std::string& value);

// The line of record `seq` without its newline: {"seq":..,"time":<time_json>,"prev":"<prev>",
// "type":<type> then `fields` (members each starting with ','), then with `hmac_key` the
// ,"hmac":"<64 hex>" over the bytes before it, and '}'. `time_json` is a JSON string.
std::string BuildLine(int64_t seq, const std::string& time_json, const std::string& prev,
                      const std::string& type, const std::string& fields,
                      const std::optional<std::string>& hmac_key);

// What a verifier reads from a record's line: the envelope members.
struct Envelope {
  int64_t seq = 0;
  std::string prev;
  bool has_hmac = false;
  std::string hmac;
};

// Checks that `line` (without its newline) is one canonical record; returns "" or the reason.
// On failure `e->seq` is the record's seq when it could be read, else 0.
std::string ParseEnvelope(const std::string& line, Envelope* e);

// Whether `e` (parsed from `line`) carries an HMAC and it is the HMAC-SHA-256 with `key` of the
// line's bytes before ,"hmac":. Compared in constant time.
bool HmacMatches(const std::string& key, const std::string& line, const Envelope& e);

}  // namespace ds::audit_internal
