#include "core/documents.h"

#include <spdlog/spdlog.h>

#include <optional>

namespace ds {

const char* SettlementName(Settlement s) {
  switch (s) {
    case Settlement::kDurable:
      return "durable";
    case Settlement::kRefused:
      return "refused";
    case Settlement::kMalformed:
      return "malformed";
    case Settlement::kRetry:
      return "retry";
  }
  return "retry";
}

std::string DocumentResult::Reason() const {
  if (!error.empty()) return error;
  if (!failures.empty())
    return "not applied: " + PrintableKey(failures.front().key) + ": " + failures.front().error;
  if (!refusals.empty()) return refusals.front().error;
  return "";
}

DocumentResult ResultOfDocument(const ParsedDocument& doc, const ApplyResult* results) {
  DocumentResult d;
  d.events = static_cast<int64_t>(doc.events.size());
  d.test_events = static_cast<int64_t>(doc.test_events);
  d.non_s3_messages = static_cast<int64_t>(doc.non_s3_messages);
  for (size_t i = 0; i < doc.events.size(); ++i) {
    const Event& ev = doc.events[i];
    const ApplyResult& r = results[i];
    switch (r.outcome) {
      case Outcome::kRemoved:
      case Outcome::kAbsent:
      case Outcome::kPublished:
        ++d.applied;
        break;
      case Outcome::kQueued:
        ++d.queued;
        d.queued_keys.emplace_back(ev.bucket, ev.key);
        break;
      case Outcome::kIgnored:
      case Outcome::kOutOfScope:
      case Outcome::kStale:
      case Outcome::kOtherVersion:
        ++d.ignored;
        break;
      case Outcome::kRefused:
        ++d.refused;
        d.refusals.push_back({ev.bucket, ev.key, r.message, r.refusal});
        break;
      case Outcome::kFailed:
        ++d.failed;
        d.failures.push_back({ev.bucket, ev.key, r.message, std::nullopt});
        break;
    }
  }
  d.settlement = d.failed > 0    ? Settlement::kRetry
                 : d.refused > 0 ? Settlement::kRefused
                                 : Settlement::kDurable;
  return d;
}

std::vector<DocumentResult> ApplyDocuments(Engine& engine,
                                           const std::vector<std::string_view>& bodies) {
  std::vector<DocumentResult> out(bodies.size());
  std::vector<std::optional<ParsedDocument>> docs(bodies.size());
  std::vector<Event> events;  // of every well-formed document, in order: one group commit
  for (size_t i = 0; i < bodies.size(); ++i) {
    Result<ParsedDocument> doc = ParseNotification(bodies[i]);
    if (!doc.ok()) {
      spdlog::warn("rejected malformed document: {}", doc.status().message());
      out[i].settlement = Settlement::kMalformed;
      out[i].error = "malformed notification: " + doc.status().message();
      continue;
    }
    events.insert(events.end(), doc->events.begin(), doc->events.end());
    docs[i] = std::move(*doc);
  }
  const std::vector<ApplyResult> results = engine.ApplyAll(events);
  size_t next = 0;
  for (size_t i = 0; i < bodies.size(); ++i) {
    if (!docs[i]) continue;
    out[i] = ResultOfDocument(*docs[i], results.data() + next);
    next += docs[i]->events.size();
  }
  return out;
}

}  // namespace ds
