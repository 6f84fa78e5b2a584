#include "s3/xml.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>
#include <pugixml.hpp>

namespace ds::s3 {
namespace {

constexpr char kS3Namespace[] = "http://s3.amazonaws.com/doc/2006-03-01/";

// Keeps whitespace-only text that is an element's only child: a key " " must survive.
constexpr unsigned kParseOptions = pugi::parse_default | pugi::parse_ws_pcdata_single;

bool IsUnreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string StripQuotes(std::string s) {
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') return s.substr(1, s.size() - 2);
  return s;
}

uint64_t ParseSize(const char* text) {
  uint64_t v = 0;
  const char* end = text + std::strlen(text);
  auto [ptr, ec] = std::from_chars(text, end, v);
  if (ec != std::errc()) return 0;
  return v;
}

Result<pugi::xml_document*> Load(pugi::xml_document& doc, std::string_view xml, const char* what) {
  pugi::xml_parse_result r = doc.load_buffer(xml.data(), xml.size(), kParseOptions);
  if (!r) {
    return Status::Internal(std::string("malformed ") + what + " response from the store: " +
                            r.description() + " at offset " + std::to_string(r.offset));
  }
  return &doc;
}

Result<std::string> MaybeDecode(const char* text, bool encoded, const char* what) {
  if (!encoded) return std::string(text);
  Result<std::string> d = UriDecode(text, /*plus_is_space=*/true);
  if (!d.ok()) {
    return Status::Internal(std::string("store sent an undecodable url-encoded ") + what + ": " +
                            d.status().message());
  }
  return d;
}

struct StringWriter : pugi::xml_writer {
  std::string out;
  void write(const void* data, size_t size) override {
    out.append(static_cast<const char*>(data), size);
  }
};

std::string Serialize(const pugi::xml_document& doc) {
  StringWriter w;
  doc.save(w, "", pugi::format_raw, pugi::encoding_utf8);
  return std::move(w.out);
}

pugi::xml_document NewDocument(const char* root_name, pugi::xml_node* root) {
  pugi::xml_document doc;
  pugi::xml_node decl = doc.append_child(pugi::node_declaration);
  decl.append_attribute("version") = "1.0";
  decl.append_attribute("encoding") = "UTF-8";
  *root = doc.append_child(root_name);
  root->append_attribute("xmlns") = kS3Namespace;
  return doc;
}

}  // namespace

std::string UriEncode(std::string_view s, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size() * 3);
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (IsUnreserved(c) || (keep_slash && c == '/')) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
    }
  }
  return out;
}

Result<std::string> UriDecode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size()) {
        return Status::Invalid("truncated %-escape at offset " + std::to_string(i));
      }
      int hi = HexValue(s[i + 1]);
      int lo = HexValue(s[i + 2]);
      if (hi < 0 || lo < 0) {
        return Status::Invalid("bad %-escape at offset " + std::to_string(i));
      }
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string BuildQuery(QueryParams params) {
  for (auto& [name, value] : params) {
    name = UriEncode(name, false);
    value = UriEncode(value, false);
  }
  std::sort(params.begin(), params.end());
  std::string out;
  for (const auto& [name, value] : params) {
    if (!out.empty()) out.push_back('&');
    out += name;
    out.push_back('=');
    out += value;
  }
  return out;
}

std::optional<ErrorBody> ParseErrorBody(std::string_view xml) {
  if (xml.empty()) return std::nullopt;
  pugi::xml_document doc;
  if (!doc.load_buffer(xml.data(), xml.size(), kParseOptions)) return std::nullopt;
  pugi::xml_node e = doc.child("Error");
  if (!e) return std::nullopt;
  ErrorBody b;
  b.code = e.child_value("Code");
  b.message = e.child_value("Message");
  b.request_id = e.child_value("RequestId");
  return b;
}

Result<ListObjectsPage> ParseListObjectsV2(std::string_view xml) {
  pugi::xml_document doc;
  DS_RETURN_IF_ERROR(Load(doc, xml, "ListObjectsV2").status());
  pugi::xml_node root = doc.child("ListBucketResult");
  if (!root) {
    return Status::Internal(
        "unexpected ListObjectsV2 response from the store: no ListBucketResult");
  }
  ListObjectsPage page;
  page.url_encoded = EqualsIgnoreCase(root.child_value("EncodingType"), "url");
  page.truncated = EqualsIgnoreCase(root.child_value("IsTruncated"), "true");
  page.next_continuation_token = root.child_value("NextContinuationToken");
  for (pugi::xml_node c : root.children("Contents")) {
    Result<std::string> key = MaybeDecode(c.child_value("Key"), page.url_encoded, "key");
    if (!key.ok()) return key.status();
    ObjectInfo info;
    info.key = std::move(key).value();
    info.size = ParseSize(c.child_value("Size"));
    info.etag = StripQuotes(c.child_value("ETag"));
    info.last_modified = c.child_value("LastModified");
    page.objects.push_back(std::move(info));
  }
  return page;
}

Result<ListVersionsPage> ParseListObjectVersions(std::string_view xml) {
  pugi::xml_document doc;
  DS_RETURN_IF_ERROR(Load(doc, xml, "ListObjectVersions").status());
  pugi::xml_node root = doc.child("ListVersionsResult");
  if (!root) {
    return Status::Internal(
        "unexpected ListObjectVersions response from the store: no ListVersionsResult");
  }
  ListVersionsPage page;
  page.url_encoded = EqualsIgnoreCase(root.child_value("EncodingType"), "url");
  page.truncated = EqualsIgnoreCase(root.child_value("IsTruncated"), "true");
  Result<std::string> marker =
      MaybeDecode(root.child_value("NextKeyMarker"), page.url_encoded, "key marker");
  if (!marker.ok()) return marker.status();
  page.next_key_marker = std::move(marker).value();
  page.next_version_id_marker = root.child_value("NextVersionIdMarker");
  for (pugi::xml_node c : root.children()) {
    bool is_marker = std::strcmp(c.name(), "DeleteMarker") == 0;
    if (!is_marker && std::strcmp(c.name(), "Version") != 0) continue;
    Result<std::string> key = MaybeDecode(c.child_value("Key"), page.url_encoded, "key");
    if (!key.ok()) return key.status();
    ObjectVersion v;
    v.key = std::move(key).value();
    v.version_id = c.child_value("VersionId");
    v.is_latest = EqualsIgnoreCase(c.child_value("IsLatest"), "true");
    v.is_delete_marker = is_marker;
    v.last_modified = c.child_value("LastModified");
    if (!is_marker) {
      v.size = ParseSize(c.child_value("Size"));
      v.etag = StripQuotes(c.child_value("ETag"));
    }
    page.versions.push_back(std::move(v));
  }
  return page;
}

Result<std::vector<DeleteOutcome>> ParseDeleteResult(std::string_view xml) {
  pugi::xml_document doc;
  DS_RETURN_IF_ERROR(Load(doc, xml, "DeleteObjects").status());
  pugi::xml_node root = doc.child("DeleteResult");
  if (!root) {
    return Status::Internal("unexpected DeleteObjects response from the store: no DeleteResult");
  }
  std::vector<DeleteOutcome> out;
  for (pugi::xml_node c : root.children()) {
    bool deleted = std::strcmp(c.name(), "Deleted") == 0;
    if (!deleted && std::strcmp(c.name(), "Error") != 0) continue;
    DeleteOutcome o;
    o.id.key = c.child_value("Key");
    o.id.version_id = c.child_value("VersionId");
    o.deleted = deleted;
    if (!deleted) {
      o.error_code = c.child_value("Code");
      o.error_message = c.child_value("Message");
    }
    out.push_back(std::move(o));
  }
  return out;
}

std::string BuildDeleteRequest(const std::vector<ObjectId>& ids, bool quiet) {
  pugi::xml_node root;
  pugi::xml_document doc = NewDocument("Delete", &root);
  root.append_child("Quiet").text().set(quiet ? "true" : "false");
  for (const ObjectId& id : ids) {
    pugi::xml_node o = root.append_child("Object");
    o.append_child("Key").text().set(id.key.c_str());
    if (!id.version_id.empty()) o.append_child("VersionId").text().set(id.version_id.c_str());
  }
  return Serialize(doc);
}

bool IsXmlSafe(std::string_view key) {
  for (char ch : key) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 && c != '\t' && c != '\n') return false;
  }
  return true;
}

namespace {
// The entries of one *Configuration element that delete-sync compares.
NotificationTarget ReadTarget(pugi::xml_node c, const std::string& kind) {
  NotificationTarget t;
  t.kind = kind;
  t.id = c.child_value("Id");
  t.arn = c.child_value(kind.c_str());
  for (pugi::xml_node e : c.children("Event")) t.events.push_back(e.child_value());
  for (pugi::xml_node r : c.child("Filter").child("S3Key").children("FilterRule")) {
    std::string name = r.child_value("Name");
    for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (name == "prefix") t.prefix = r.child_value("Value");
  }
  return t;
}
}  // namespace

Result<std::string> MergeNotificationConfiguration(std::string_view existing,
                                                   const NotificationTarget& target,
                                                   bool* changed) {
  if (existing.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    existing = R"(<NotificationConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"/>)";
  }
  pugi::xml_document doc;
  DS_RETURN_IF_ERROR(Load(doc, existing, "GetBucketNotificationConfiguration").status());
  pugi::xml_node root = doc.child("NotificationConfiguration");
  if (!root) {
    return Status::Internal("unexpected notification configuration: no NotificationConfiguration");
  }
  const std::string element = target.kind + "Configuration";
  bool same = false;
  std::vector<pugi::xml_node> drop;
  for (pugi::xml_node c : root.children()) {
    std::string name = c.name();
    if (name.size() < 13 || name.compare(name.size() - 13, 13, "Configuration") != 0) continue;
    if (std::string(c.child_value("Id")) != target.id) continue;
    NotificationTarget old = ReadTarget(c, name.substr(0, name.size() - 13));
    std::vector<std::string> a = old.events, b = target.events;
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    bool filter_other = false;  // rules other than prefix: not ours, replace
    for (pugi::xml_node r : c.child("Filter").children())
      filter_other |= std::strcmp(r.name(), "S3Key") != 0;
    same = name == element && old.arn == target.arn && a == b && old.prefix == target.prefix &&
           !filter_other;
    drop.push_back(c);
  }
  if (changed) *changed = !(same && drop.size() == 1);
  for (pugi::xml_node c : drop) root.remove_child(c);
  pugi::xml_node c = root.append_child(element.c_str());
  c.append_child("Id").text().set(target.id.c_str());
  c.append_child(target.kind.c_str()).text().set(target.arn.c_str());
  for (const std::string& e : target.events) c.append_child("Event").text().set(e.c_str());
  if (!target.prefix.empty()) {
    pugi::xml_node rule = c.append_child("Filter").append_child("S3Key").append_child("FilterRule");
    rule.append_child("Name").text().set("prefix");
    rule.append_child("Value").text().set(target.prefix.c_str());
  }
  return Serialize(doc);
}

Result<std::string> ParseCreateTopicArn(std::string_view xml) {
  pugi::xml_document doc;
  DS_RETURN_IF_ERROR(Load(doc, xml, "CreateTopic").status());
  std::string arn =
      doc.child("CreateTopicResponse").child("CreateTopicResult").child_value("TopicArn");
  if (arn.empty()) return Status::Internal("no TopicArn in the CreateTopic answer");
  return arn;
}

Result<std::vector<TopicInfo>> ParseListTopics(std::string_view xml, std::string* next_token) {
  pugi::xml_document doc;
  DS_RETURN_IF_ERROR(Load(doc, xml, "ListTopics").status());
  pugi::xml_node result = doc.child("ListTopicsResponse").child("ListTopicsResult");
  if (!result) return Status::Internal("no ListTopicsResult in the ListTopics answer");
  std::vector<TopicInfo> out;
  for (pugi::xml_node m : result.child("Topics").children("member")) {
    TopicInfo t;
    t.arn = m.child_value("TopicArn");
    t.name = m.child_value("Name");
    if (t.name.empty()) {  // AWS: the name is the ARN's last part
      size_t colon = t.arn.rfind(':');
      t.name = colon == std::string::npos ? t.arn : t.arn.substr(colon + 1);
    }
    pugi::xml_node ep = m.child("EndPoint");
    t.push_endpoint = ep.child_value("EndpointAddress");
    std::string persistent = ep.child_value("Persistent");
    for (char& c : persistent) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    t.persistent = persistent == "true";
    std::string_view args = ep.child_value("EndpointArgs");
    while (!args.empty()) {
      size_t amp = args.find('&');
      std::string_view pair = args.substr(0, amp);
      size_t eq = pair.find('=');
      if (eq != std::string_view::npos) {
        t.args[std::string(pair.substr(0, eq))] = std::string(pair.substr(eq + 1));
      }
      if (amp == std::string_view::npos) break;
      args.remove_prefix(amp + 1);
    }
    out.push_back(std::move(t));
  }
  *next_token = result.child_value("NextToken");
  return out;
}

std::string BuildVersioningConfiguration(bool enabled) {
  pugi::xml_node root;
  pugi::xml_document doc = NewDocument("VersioningConfiguration", &root);
  root.append_child("Status").text().set(enabled ? "Enabled" : "Suspended");
  return Serialize(doc);
}

std::string BuildCreateBucketConfiguration(const std::string& region) {
  pugi::xml_node root;
  pugi::xml_document doc = NewDocument("CreateBucketConfiguration", &root);
  root.append_child("LocationConstraint").text().set(region.c_str());
  return Serialize(doc);
}

bool IsRetryableHttp(long http_status, std::string_view code) {
  if (http_status >= 500 || http_status == 429) return true;
  return code == "SlowDown" || code == "RequestTimeout" || code == "InternalError" ||
         code == "ServiceUnavailable" || code == "Throttling" || code == "ThrottlingException" ||
         code == "RequestThrottled" || code == "TooManyRequests";
}

std::string DescribeTarget(const RequestTarget& t) {
  std::string s = "s3://";
  s += t.bucket;
  if (!t.key.empty()) {
    s += '/';
    s += t.key;
  }
  if (!t.version_id.empty()) {
    s += " (version ";
    s += t.version_id;
    s += ')';
  }
  return s;
}

Status HttpErrorToStatus(const RequestTarget& t, long http_status, const ErrorBody& err,
                         int attempts) {
  const std::string where = DescribeTarget(t);
  // "HTTP 403 AccessDenied: message" / "HTTP 403 AccessDenied" / "HTTP 403".
  std::string detail = "HTTP " + std::to_string(http_status);
  if (!err.code.empty()) detail += " " + err.code;
  if (!err.message.empty()) detail += ": " + err.message;
  const std::string op = std::string(t.method) + " " + where;

  if (err.code == "NoSuchBucket") {
    return Status::NotFound("bucket '" + std::string(t.bucket) + "' does not exist (NoSuchBucket)");
  }
  if (err.code == "NoSuchKey" || err.code == "NoSuchVersion" ||
      (http_status == 404 && err.code.empty() && !t.key.empty())) {
    std::string m = where + ": not found";
    if (err.code == "NoSuchVersion") m += " (NoSuchVersion)";
    return Status::NotFound(m);
  }
  if (http_status == 404) return Status::NotFound(op + ": " + detail);
  if (http_status == 401 || http_status == 403) {
    return Status::Denied(op + ": access denied (" + detail + ")");
  }
  if (IsRetryableHttp(http_status, err.code)) {
    return Status::Unavailable(op + ": " + detail + " (after " + std::to_string(attempts) +
                               (attempts == 1 ? " attempt)" : " attempts)"));
  }
  if (http_status == 409) return Status::Conflict(op + ": " + detail);
  return Status::Invalid(op + ": " + detail);
}

}  // namespace ds::s3
