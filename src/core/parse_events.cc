// Parsers for every notification shape delete-sync accepts, normalised into ds::Event.
//
// Shapes: AWS S3 {"Records":[...]} (also MinIO and Ceph RGW records), SNS envelopes (raw
// {"Type":"Notification","Message":...} and the Lambda form Records[].Sns.Message), SQS batches
// (Records[].body), s3:TestEvent and EventBridge "aws.s3" events. Wrappers are unpacked
// recursively (SQS -> SNS -> S3) up to a small depth.
//
// Key encoding by source:
//  - aws:s3, minio:s3 and records without eventSource: form-URL-encoded ('+' is a space).
//  - ceph:s3: raw UTF-8, never decoded.
//  - EventBridge (aws.s3): raw. AWS does not document it; a real capture shows an unescaped ':'
//    (S3 notifications escape it) and a public fix (guidance-for-medialake-on-aws PR #21) had to
//    stop decoding EventBridge keys to ingest keys such as "%2B%20%%%.png".
#include "core/parse_events.h"

#include <cctype>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace ds {
namespace {

using json = nlohmann::json;

// SQS -> SNS -> S3 is two levels of wrapping; allow a little more, refuse anything deeper.
constexpr int kMaxWrapperDepth = 4;

constexpr std::string_view kUnrecognised =
    "unrecognised document: expected Records, an SNS envelope, an EventBridge event or "
    "s3:TestEvent";

bool IsHexDigit(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return c - 'A' + 10;
}

bool IsHex(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!IsHexDigit(c)) return false;
  }
  return true;
}

std::string Join(const std::string& path, std::string_view name) {
  if (path.empty()) return std::string(name);
  std::string out = path;
  out += '.';
  out += name;
  return out;
}

std::string Index(const std::string& path, std::string_view name, size_t i) {
  return Join(path, name) + "[" + std::to_string(i) + "]";
}

Status Err(const std::string& path, std::string_view what) {
  if (path.empty()) return Status::Invalid(std::string(what));
  return Status::Invalid(path + ": " + std::string(what));
}

// The member `name` of `obj` (an object), or nullptr when absent.
const json* Member(const json& obj, const char* name) {
  auto it = obj.find(name);
  return it == obj.end() ? nullptr : &*it;
}

// The member as a string when it is one; nullptr otherwise (absent, null, other types).
const std::string* StringMember(const json& obj, const char* name) {
  const json* v = Member(obj, name);
  return (v != nullptr && v->is_string()) ? v->get_ptr<const std::string*>() : nullptr;
}

Status RequiredObject(const json& obj, const char* name, const std::string& path,
                      const json** out) {
  const json* v = Member(obj, name);
  if (v == nullptr) return Err(Join(path, name), "missing");
  if (!v->is_object()) return Err(Join(path, name), "not an object");
  *out = v;
  return Status::Ok();
}

Status RequiredString(const json& obj, const char* name, const std::string& path,
                      std::string* out) {
  const json* v = Member(obj, name);
  if (v == nullptr) return Err(Join(path, name), "missing");
  if (!v->is_string()) return Err(Join(path, name), "not a string");
  *out = v->get<std::string>();
  return Status::Ok();
}

// Absent or null: nullopt. A string: its value. Anything else is malformed.
Status OptionalString(const json& obj, const char* name, const std::string& path,
                      std::optional<std::string>* out) {
  const json* v = Member(obj, name);
  if (v == nullptr || v->is_null()) {
    out->reset();
    return Status::Ok();
  }
  if (!v->is_string()) return Err(Join(path, name), "not a string");
  *out = v->get<std::string>();
  return Status::Ok();
}

// Size as a non-negative integer or a string of decimal digits (Ceph RGW). Absent or null: none.
Status OptionalSize(const json& obj, const char* name, const std::string& path,
                    std::optional<uint64_t>* out) {
  const json* v = Member(obj, name);
  out->reset();
  if (v == nullptr || v->is_null()) return Status::Ok();
  if (v->is_number_unsigned()) {
    *out = v->get<uint64_t>();
    return Status::Ok();
  }
  if (v->is_number_integer()) {
    if (v->get<int64_t>() < 0) return Err(Join(path, name), "negative");
    *out = static_cast<uint64_t>(v->get<int64_t>());
    return Status::Ok();
  }
  if (v->is_string()) {
    const auto& s = v->get_ref<const std::string&>();
    if (s.empty() || s.size() > 20) return Err(Join(path, name), "not a number");
    uint64_t n = 0;
    for (char c : s) {
      if (c < '0' || c > '9') return Err(Join(path, name), "not a number");
      const uint64_t d = static_cast<uint64_t>(c - '0');
      if (n > (UINT64_MAX - d) / 10) return Err(Join(path, name), "not a number");
      n = n * 10 + d;
    }
    *out = n;
    return Status::Ok();
  }
  if (v->is_number_float()) return Err(Join(path, name), "not an integer");
  return Err(Join(path, name), "not a number");
}

std::string StripQuotes(std::string s) {
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') return s.substr(1, s.size() - 2);
  return s;
}

std::string_view StripS3Prefix(std::string_view name) {
  if (name.substr(0, 3) == "s3:") name.remove_prefix(3);
  return name;
}

// Sets action and delete_marker from a normalised S3 event name.
void Classify(Event& e) {
  const std::string& n = e.name;
  e.delete_marker = false;
  // MinIO sends these under ObjectCreated:* although they change only retention, legal hold
  // or tags, never the content: nothing to download.
  static const char* const kMetadataOnly[] = {
      "ObjectCreated:PutRetention", "ObjectCreated:PutLegalHold", "ObjectCreated:PutTagging",
      "ObjectCreated:DeleteTagging"};
  for (const char* m : kMetadataOnly) {
    if (n == m) {
      e.action = EventAction::kIgnore;
      return;
    }
  }
  if (n.size() > 14 && n.compare(0, 14, "ObjectCreated:") == 0) {
    e.action = EventAction::kCreate;
  } else if (n == "ObjectRemoved:Delete" || n == "LifecycleExpiration:Delete" ||
             n == "ObjectRemoved:DeleteAllVersions") {  // MinIO: every version is gone
    e.action = EventAction::kRemove;
  } else if (n == "ObjectRemoved:DeleteMarkerCreated" ||
             n == "LifecycleExpiration:DeleteMarkerCreated") {
    e.action = EventAction::kRemove;
    e.delete_marker = true;
  } else {
    e.action = EventAction::kIgnore;
  }
}

// "key"/"val" pairs (Ceph RGW). Entries of another shape are skipped: nothing depends on them.
void ReadPairs(const json* arr, std::vector<std::pair<std::string, std::string>>* out) {
  if (arr == nullptr || !arr->is_array()) return;
  for (const json& item : *arr) {
    if (!item.is_object()) continue;
    const std::string* k = StringMember(item, "key");
    const std::string* v = StringMember(item, "val");
    if (k == nullptr || v == nullptr) continue;
    out->emplace_back(*k, *v);
  }
}

// A MinIO-style {"name":"value"} object.
void ReadMap(const json* obj, std::vector<std::pair<std::string, std::string>>* out) {
  if (obj == nullptr || !obj->is_object()) return;
  for (const auto& [k, v] : obj->items()) {
    if (v.is_string()) out->emplace_back(k, v.get<std::string>());
  }
}

// "syntax error while parsing value - invalid literal at byte 12", without nlohmann's id prefix,
// position prefix and the echo of the bytes read (which may be long or not UTF-8).
std::string JsonErrorText(const json::parse_error& e) {
  std::string what = e.what();
  const std::string marker = "parse error";
  size_t pos = what.find("] ");
  if (pos != std::string::npos) what = what.substr(pos + 2);
  if (what.compare(0, marker.size(), marker) == 0) {
    pos = what.find(": ");
    if (pos != std::string::npos) what = what.substr(pos + 2);
  }
  pos = what.find("; last read: '");
  if (pos != std::string::npos) {
    const size_t end = what.find("'", pos + 14);
    std::string rest = end == std::string::npos ? "" : what.substr(end + 1);
    what = what.substr(0, pos) + rest;
  }
  return "not JSON: " + what + " at byte " + std::to_string(e.byte);
}

class Parser {
 public:
  explicit Parser(ParsedDocument* out) : out_(out) {}

  // A JSON document at `path` (empty at the top), found `depth` wrappers deep. An unrecognised
  // document is an error at the top and a non-S3 message inside a wrapper.
  Status Document(const json& doc, const std::string& path, int depth) {
    const bool nested = depth > 0;
    if (!doc.is_object()) return Unrecognised(path, nested);
    if (doc.contains("Records")) return Records(doc, path, depth);
    if (const std::string* ev = StringMember(doc, "Event");
        ev != nullptr && *ev == "s3:TestEvent") {
      ++out_->test_events;
      return Status::Ok();
    }
    const std::string* type = StringMember(doc, "Type");
    if (type != nullptr &&
        (*type == "SubscriptionConfirmation" || *type == "UnsubscribeConfirmation")) {
      ++out_->non_s3_messages;  // SNS housekeeping, not S3
      return Status::Ok();
    }
    if (type != nullptr && *type == "Notification") {
      const json* msg = Member(doc, "Message");
      if (msg == nullptr) return Err(Join(path, "Message"), "missing");
      if (!msg->is_string()) return Err(Join(path, "Message"), "not a string");
      return Wrapped(msg->get_ref<const std::string&>(), Join(path, "Message"), depth);
    }
    if (doc.contains("detail-type")) {
      const std::string* source = StringMember(doc, "source");
      if (source != nullptr && *source == "aws.s3") return EventBridge(doc, path);
    }
    return Unrecognised(path, nested);
  }

  // The string payload of an SNS Message or an SQS body at `path`.
  Status Wrapped(const std::string& text, const std::string& path, int depth) {
    if (depth + 1 > kMaxWrapperDepth) return Err(path, "wrappers nested too deeply");
    size_t i = 0;
    while (i < text.size() &&
           (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r')) {
      ++i;
    }
    if (i == text.size() || (text[i] != '{' && text[i] != '[')) {
      ++out_->non_s3_messages;  // a plain-text message
      return Status::Ok();
    }
    json doc;
    try {
      doc = json::parse(text);
    } catch (const json::parse_error& e) {
      return Err(path, JsonErrorText(e));
    }
    return Document(doc, path, depth + 1);
  }

 private:
  Status Unrecognised(const std::string& path, bool nested) {
    if (nested) {
      ++out_->non_s3_messages;
      return Status::Ok();
    }
    return Err(path, kUnrecognised);
  }

  enum class RecordKind { kS3, kSqs, kSns, kForeign };

  static RecordKind KindOf(const json& rec) {
    const std::string* source = StringMember(rec, "eventSource");
    if (source != nullptr && *source == "aws:sqs") return RecordKind::kSqs;
    if (rec.contains("Sns")) return RecordKind::kSns;
    const std::string* source2 = StringMember(rec, "EventSource");
    if (source2 != nullptr && *source2 == "aws:sns") return RecordKind::kSns;
    if (rec.contains("s3") || rec.contains("eventName")) return RecordKind::kS3;
    if (source != nullptr && source->size() >= 3 &&
        source->compare(source->size() - 3, 3, ":s3") == 0) {
      return RecordKind::kS3;
    }
    if (source == nullptr && rec.contains("body")) return RecordKind::kSqs;
    return RecordKind::kForeign;
  }

  Status Records(const json& doc, const std::string& path, int depth) {
    const json& records = doc["Records"];
    if (!records.is_array()) return Err(Join(path, "Records"), "not an array");
    // Inside a wrapper, a Records document of another service (DynamoDB, Kinesis...) is simply
    // not S3.
    if (depth > 0 && !records.empty()) {
      bool all_foreign = true;
      for (const json& rec : records) {
        if (!rec.is_object() || KindOf(rec) != RecordKind::kForeign) {
          all_foreign = false;
          break;
        }
      }
      if (all_foreign) {
        ++out_->non_s3_messages;
        return Status::Ok();
      }
    }
    for (size_t i = 0; i < records.size(); ++i) {
      const json& rec = records[i];
      const std::string rpath = Index(path, "Records", i);
      if (!rec.is_object()) return Err(rpath, "not an object");
      switch (KindOf(rec)) {
        case RecordKind::kS3: {
          Event e;
          DS_RETURN_IF_ERROR(S3Record(rec, rpath, &e));
          out_->events.push_back(std::move(e));
          break;
        }
        case RecordKind::kSqs: {
          const json* body = Member(rec, "body");
          if (body == nullptr) return Err(Join(rpath, "body"), "missing");
          if (!body->is_string()) return Err(Join(rpath, "body"), "not a string");
          DS_RETURN_IF_ERROR(
              Wrapped(body->get_ref<const std::string&>(), Join(rpath, "body"), depth));
          break;
        }
        case RecordKind::kSns: {
          const json* sns = nullptr;
          DS_RETURN_IF_ERROR(RequiredObject(rec, "Sns", rpath, &sns));
          const std::string spath = Join(rpath, "Sns");
          const json* msg = Member(*sns, "Message");
          if (msg == nullptr) return Err(Join(spath, "Message"), "missing");
          if (!msg->is_string()) return Err(Join(spath, "Message"), "not a string");
          DS_RETURN_IF_ERROR(
              Wrapped(msg->get_ref<const std::string&>(), Join(spath, "Message"), depth));
          break;
        }
        case RecordKind::kForeign:
          return Err(rpath, "not an S3 record, an SQS message or an SNS message");
      }
    }
    return Status::Ok();
  }

  static Status S3Record(const json& rec, const std::string& path, Event* e) {
    std::optional<std::string> source;
    DS_RETURN_IF_ERROR(OptionalString(rec, "eventSource", path, &source));
    e->source = source.value_or("");

    std::string name;
    DS_RETURN_IF_ERROR(RequiredString(rec, "eventName", path, &name));
    e->name = std::string(StripS3Prefix(name));
    // Without a name nothing says what happened; "" (or a bare "s3:") is malformed, not ignorable.
    if (e->name.empty()) return Err(Join(path, "eventName"), "empty");
    Classify(*e);

    const json* s3 = nullptr;
    DS_RETURN_IF_ERROR(RequiredObject(rec, "s3", path, &s3));
    const std::string s3path = Join(path, "s3");
    const json* bucket = nullptr;
    DS_RETURN_IF_ERROR(RequiredObject(*s3, "bucket", s3path, &bucket));
    const std::string bpath = Join(s3path, "bucket");
    DS_RETURN_IF_ERROR(RequiredString(*bucket, "name", bpath, &e->bucket));
    const json* object = nullptr;
    DS_RETURN_IF_ERROR(RequiredObject(*s3, "object", s3path, &object));
    const std::string opath = Join(s3path, "object");
    std::string key;
    DS_RETURN_IF_ERROR(RequiredString(*object, "key", opath, &key));

    const bool acts = e->action != EventAction::kIgnore;
    if (acts && e->bucket.empty()) return Err(Join(bpath, "name"), "empty");
    if (acts && key.empty()) return Err(Join(opath, "key"), "empty");
    if (e->source == "ceph:s3") {
      e->key = std::move(key);
    } else {
      Result<std::string> decoded = DecodeS3Key(key);
      if (!decoded.ok()) return Err(Join(opath, "key"), decoded.status().message());
      e->key = std::move(decoded).value();
    }

    DS_RETURN_IF_ERROR(OptionalSize(*object, "size", opath, &e->size));
    std::optional<std::string> version;
    DS_RETURN_IF_ERROR(OptionalString(*object, "versionId", opath, &version));
    if (version && !version->empty()) e->version_id = std::move(version);
    std::optional<std::string> etag;
    const char* etag_field = object->contains("eTag") ? "eTag" : "etag";
    DS_RETURN_IF_ERROR(OptionalString(*object, etag_field, opath, &etag));
    e->etag = StripQuotes(etag.value_or(""));
    std::optional<std::string> sequencer;
    DS_RETURN_IF_ERROR(OptionalString(*object, "sequencer", opath, &sequencer));
    e->sequencer = sequencer.value_or("");
    e->ordered = e->source == "aws:s3" && IsHex(e->sequencer);

    if (const std::string* t = StringMember(rec, "eventTime")) e->event_time = *t;
    if (const std::string* id = StringMember(rec, "eventId"); id != nullptr && !id->empty()) {
      e->event_id = *id;
    } else if (const json* re = Member(rec, "responseElements"); re != nullptr && re->is_object()) {
      if (const std::string* rid = StringMember(*re, "x-amz-request-id");
          rid != nullptr && !rid->empty()) {
        e->event_id = *rid;
        if (!e->sequencer.empty()) e->event_id += ":" + e->sequencer;
      }
    }
    ReadPairs(Member(*object, "metadata"), &e->metadata);
    ReadMap(Member(*object, "userMetadata"), &e->metadata);
    ReadPairs(Member(*object, "tags"), &e->tags);
    return Status::Ok();
  }

  Status EventBridge(const json& doc, const std::string& path) {
    Event e;
    e.source = "aws.s3";
    const std::string detail_type =
        doc["detail-type"].is_string() ? doc["detail-type"].get<std::string>() : std::string();
    if (detail_type.empty()) return Err(Join(path, "detail-type"), "not a non-empty string");
    const json* detail = nullptr;
    DS_RETURN_IF_ERROR(RequiredObject(doc, "detail", path, &detail));
    const std::string dpath = Join(path, "detail");
    const std::string* reason = StringMember(*detail, "reason");
    const std::string* deletion = StringMember(*detail, "deletion-type");
    const bool marker = deletion != nullptr && *deletion == "Delete Marker Created";

    if (detail_type == "Object Created") {
      e.action = EventAction::kCreate;
      const std::string r = reason ? *reason : "";
      if (r == "PutObject") {
        e.name = "ObjectCreated:Put";
      } else if (r == "POST Object") {
        e.name = "ObjectCreated:Post";
      } else if (r == "CopyObject") {
        e.name = "ObjectCreated:Copy";
      } else if (r == "CompleteMultipartUpload") {
        e.name = "ObjectCreated:CompleteMultipartUpload";
      } else {
        e.name = "ObjectCreated:" + (r.empty() ? std::string("Unknown") : r);
      }
    } else if (detail_type == "Object Deleted") {
      e.action = EventAction::kRemove;
      e.delete_marker = marker;
      const bool lifecycle = reason != nullptr && *reason == "Lifecycle Expiration";
      e.name = std::string(lifecycle ? "LifecycleExpiration:" : "ObjectRemoved:") +
               (marker ? "DeleteMarkerCreated" : "Delete");
    } else {
      e.action = EventAction::kIgnore;
      e.name = detail_type;
    }

    const bool acts = e.action != EventAction::kIgnore;
    const json* bucket = Member(*detail, "bucket");
    const json* object = Member(*detail, "object");
    if (acts) {
      DS_RETURN_IF_ERROR(RequiredObject(*detail, "bucket", dpath, &bucket));
      DS_RETURN_IF_ERROR(RequiredString(*bucket, "name", Join(dpath, "bucket"), &e.bucket));
      if (e.bucket.empty()) return Err(Join(dpath, "bucket.name"), "empty");
      DS_RETURN_IF_ERROR(RequiredObject(*detail, "object", dpath, &object));
      DS_RETURN_IF_ERROR(RequiredString(*object, "key", Join(dpath, "object"), &e.key));
      if (e.key.empty()) return Err(Join(dpath, "object.key"), "empty");
    } else {
      if (bucket != nullptr && bucket->is_object()) {
        if (const std::string* n = StringMember(*bucket, "name")) e.bucket = *n;
      }
      if (object != nullptr && object->is_object()) {
        if (const std::string* k = StringMember(*object, "key")) e.key = *k;
      } else {
        object = nullptr;
      }
    }
    if (object != nullptr) {
      const std::string opath = Join(dpath, "object");
      DS_RETURN_IF_ERROR(OptionalSize(*object, "size", opath, &e.size));
      std::optional<std::string> version;
      DS_RETURN_IF_ERROR(OptionalString(*object, "version-id", opath, &version));
      if (version && !version->empty()) e.version_id = std::move(version);
      std::optional<std::string> etag;
      DS_RETURN_IF_ERROR(OptionalString(*object, "etag", opath, &etag));
      e.etag = StripQuotes(etag.value_or(""));
      std::optional<std::string> sequencer;
      DS_RETURN_IF_ERROR(OptionalString(*object, "sequencer", opath, &sequencer));
      e.sequencer = sequencer.value_or("");
    }
    e.ordered = IsHex(e.sequencer);
    if (const std::string* t = StringMember(doc, "time")) e.event_time = *t;
    if (const std::string* id = StringMember(doc, "id")) e.event_id = *id;
    out_->events.push_back(std::move(e));
    return Status::Ok();
  }

  ParsedDocument* out_;
};

}  // namespace

Result<ParsedDocument> ParseNotification(std::string_view body) {
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    return Status::Invalid("not JSON: empty document");
  }
  json doc;
  try {
    doc = json::parse(body.begin(), body.end());
  } catch (const json::parse_error& e) {
    return Status::Invalid(JsonErrorText(e));
  } catch (const json::exception& e) {
    return Status::Invalid(std::string("not JSON: ") + e.what());
  }
  ParsedDocument out;
  Parser parser(&out);
  try {
    DS_RETURN_IF_ERROR(parser.Document(doc, "", 0));
  } catch (const json::exception& e) {
    // Every access above is type-checked; this is a safety net, not a path.
    return Status::Invalid(std::string("malformed document: ") + e.what());
  }
  return out;
}

Result<std::string> DecodeS3Key(std::string_view encoded) {
  std::string out;
  out.reserve(encoded.size());
  for (size_t i = 0; i < encoded.size(); ++i) {
    const char c = encoded[i];
    if (c == '+') {
      out += ' ';
    } else if (c == '%') {
      if (encoded.size() - i < 3 || !IsHexDigit(encoded[i + 1]) || !IsHexDigit(encoded[i + 2])) {
        return Status::Invalid("invalid %-escape at offset " + std::to_string(i));
      }
      out += static_cast<char>(HexValue(encoded[i + 1]) * 16 + HexValue(encoded[i + 2]));
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

std::optional<int> CompareSequencers(std::string_view a, std::string_view b) {
  if (!IsHex(a) || !IsHex(b)) return std::nullopt;
  const size_t n = a.size() > b.size() ? a.size() : b.size();
  for (size_t i = 0; i < n; ++i) {
    const int x = i < a.size() ? HexValue(a[i]) : 0;
    const int y = i < b.size() ? HexValue(b[i]) : 0;
    if (x != y) return x < y ? -1 : 1;
  }
  return 0;
}

}  // namespace ds
