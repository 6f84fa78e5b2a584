#include "transport/amqp_dispatch.h"

#include <nlohmann/json.hpp>

#include "core/parse_events.h"
#include "crypto/digest.h"

namespace ds {

AmqpVerdict VerdictFor(const DocumentResult& result) {
  switch (result.settlement) {
    case Settlement::kDurable:
      return {AmqpDisposition::kAck, ""};
    case Settlement::kMalformed:
    case Settlement::kRefused:
      return {AmqpDisposition::kDeadLetter, result.Reason()};
    case Settlement::kRetry:
      break;
  }
  return {AmqpDisposition::kRetry, result.Reason()};
}

std::string PartitionKey(const std::string& bucket, const std::string& key) {
  return crypto::Sha256Hex(bucket + "/" + key).substr(0, 32);
}

AmqpVerdict RouteDocument(AmqpChannel& out, const std::string& exchange, const std::string& body,
                          uint64_t* published) {
  using nlohmann::json;
  Result<ParsedDocument> doc = ParseNotification(body);
  if (!doc.ok()) {
    return {AmqpDisposition::kDeadLetter,
            json{{"error", "malformed notification: " + doc.status().message()}}.dump(
                -1, ' ', false, json::error_handler_t::replace)};
  }
  if (doc->events.empty()) return {AmqpDisposition::kAck, ""};  // test events, nothing to do

  // One message per record, so that every record goes to the worker that owns its key.
  std::vector<std::pair<std::string, std::string>> parts;  // routing key, body
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_object() && j.contains("Records") && j["Records"].is_array() &&
      j["Records"].size() > 1) {
    for (const json& rec : j["Records"]) {
      std::string part;
      try {
        part = json{{"Records", json::array({rec})}}.dump(-1, ' ', false,
                                                          json::error_handler_t::strict);
      } catch (const json::exception& e) {
        return {AmqpDisposition::kDeadLetter,
                std::string("cannot split the document: ") + e.what()};
      }
      Result<ParsedDocument> one = ParseNotification(part);
      if (!one.ok()) {
        return {AmqpDisposition::kDeadLetter,
                "a record did not parse on its own: " + one.status().message()};
      }
      if (one->events.empty()) continue;
      parts.emplace_back(PartitionKey(one->events.front().bucket, one->events.front().key),
                         std::move(part));
    }
  } else {
    // A single record, or a wrapper whose events all come together: keyed by its first event.
    parts.emplace_back(PartitionKey(doc->events.front().bucket, doc->events.front().key), body);
  }
  for (const auto& [key, part] : parts) {
    Status s = out.PublishConfirmed(exchange, key, part);
    if (!s.ok())
      return {AmqpDisposition::kRetry, "cannot publish to '" + exchange + "': " + s.message()};
    if (published) ++*published;
  }
  return {AmqpDisposition::kAck, ""};
}

}  // namespace ds
