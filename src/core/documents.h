// Applying notification documents, whatever carried them, and what each came to: the one result
// that every transport maps to its own way of settling a delivery.
//
//   settlement   webhook (HTTP)   AMQP message     Lambda / SQS record         `apply`
//   kDurable     200              ack              success (once its           counted
//                                                  downloads finished)
//   kRefused     422              dead-letter      failure (to the DLQ and     counted as refused
//                                                  its alarm)
//   kMalformed   400              dead-letter      failure                     counted as failed
//   kRetry       500              requeue          failure (redelivered)       counted as failed
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/engine.h"
#include "core/key_path.h"
#include "core/parse_events.h"

namespace ds {

enum class Settlement {
  kDurable,    // every event applied, ignored or its download journaled, durably
  kRefused,    // as kDurable, except that some keys cannot be cache paths and were refused:
               // delivering the document again cannot help
  kMalformed,  // not a notification document: nothing applied; delivering it again cannot help
  kRetry,      // some events failed and nothing durable stands for them: deliver it again
};
// "durable", "refused", "malformed", "retry".
const char* SettlementName(Settlement s);

// An event of a document that was refused or failed.
struct KeyProblem {
  std::string bucket, key;
  std::string error;                  // the engine's message
  std::optional<KeyRefusal> refusal;  // why a refused key was refused
};

struct DocumentResult {
  Settlement settlement = Settlement::kDurable;
  std::string error;  // kMalformed: "malformed notification: <why>"; otherwise ""
  // Per S3 event of the document (a malformed one has none).
  int64_t events = 0, applied = 0, queued = 0, ignored = 0, refused = 0, failed = 0;
  int64_t test_events = 0;      // s3:TestEvent documents: nothing to do
  int64_t non_s3_messages = 0;  // wrapped messages that are not S3 notifications
  std::vector<KeyProblem> refusals, failures;
  // The creations journaled (bucket, key): downloads that follow.
  std::vector<std::pair<std::string, std::string>> queued_keys;
  // One line for a log, a dead-letter header or an error reply: the malformed error, else the
  // first failure, else the first refusal; "" when kDurable.
  std::string Reason() const;
};

// Parses each of `bodies` and applies the events of the well-formed ones together, as one
// group commit (Engine::ApplyAll). One result per body, in order. A malformed body is logged
// (warning) and changes nothing.
std::vector<DocumentResult> ApplyDocuments(Engine& engine,
                                           const std::vector<std::string_view>& bodies);

// The result of events already applied: `doc` and the engine's result of each of its events
// (`results` holds doc.events.size() of them).
DocumentResult ResultOfDocument(const ParsedDocument& doc, const ApplyResult* results);

}  // namespace ds
