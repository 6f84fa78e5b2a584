// The AWS Lambda custom-runtime transport: the Runtime API client (libcurl) and the dispatch of
// one invocation's event to the engine. Dispatch is separate from the HTTP loop so that it can
// be tested without sockets.
//
// Event kinds (docs/OPERATIONS.md, "Lambda mode"):
//  - an S3 notification document (anything ParseNotification accepts): applied; any failure is
//    an invocation error, so that Lambda retries the whole event;
//  - an SQS batch (Records[].eventSource "aws:sqs"): each body (an S3 notification or an SNS
//    envelope of one) applied on its own; the answer {"batchItemFailures":[...]} names exactly
//    the records that failed (malformed, refused, not applied, download not done in time);
//  - an EventBridge "Scheduled Event" (source aws.events): one reconcile pass;
//  - {"erase": {...}}: an erasure request; the answer is the receipt.
// Creations are downloaded inside the invocation (the sandbox is frozen after the answer): a
// record whose download did not finish before the deadline margin is reported failed.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "common/clock.h"
#include "common/status.h"
#include "core/engine.h"
#include "core/state_store.h"

namespace ds::lambda {

// One invocation as handed out by GET /2018-06-01/runtime/invocation/next.
struct Invocation {
  std::string request_id;    // Lambda-Runtime-Aws-Request-Id
  std::string body;          // the event (JSON)
  int64_t deadline_ms = 0;   // Lambda-Runtime-Deadline-Ms (Unix ms); 0 when absent: no deadline
  std::string trace_id;      // Lambda-Runtime-Trace-Id
  std::string function_arn;  // Lambda-Runtime-Invoked-Function-Arn
};

// What one invocation answers: a response body, or an error.
struct InvocationResult {
  bool ok = true;
  std::string body;           // JSON response when ok
  std::string error_type;     // when !ok, e.g. "DeleteSync.ApplyFailed"
  std::string error_message;  // when !ok

  static InvocationResult Response(std::string b) { return {true, std::move(b), "", ""}; }
  static InvocationResult Error(std::string type, std::string message) {
    return {false, "", std::move(type), std::move(message)};
  }
};

// The error document the Runtime API expects: {"errorMessage":..,"errorType":..}.
std::string ErrorDocument(const std::string& type, const std::string& message);

struct DispatchOptions {
  // No new work (records, downloads) is started later than this before the deadline.
  int64_t deadline_margin_ms = 5000;
  // How long to wait when a download of this invocation is not due yet (retry backoff) or is
  // being run by another process.
  int64_t poll_ms = 100;
};

// Hooks for the kinds of events whose runners live in the application (reconcile, erase).
// An unset hook answers an error naming the event kind.
struct DispatchHooks {
  std::function<InvocationResult(const Invocation&)> reconcile;
  std::function<InvocationResult(const Invocation&, const nlohmann::json& request)> erase;
};

// Applies invocation events to one engine. Thread-compatible: one invocation at a time.
class Dispatcher {
 public:
  Dispatcher(Engine& engine, StateStore& state, Clock& clock, DispatchOptions opts,
             DispatchHooks hooks);

  InvocationResult Handle(const Invocation& inv);

  // Runs journaled downloads (of this invocation first in line or not) until every key in
  // `pending` is settled or the deadline margin is reached. On return `pending` maps each key
  // (bucket, key) to true when its download settled well (published, superseded by a removal
  // or a newer download, or gone from the store), false when it failed or did not finish.
  void DrainFor(int64_t deadline_ms, std::map<std::pair<std::string, std::string>, bool>* pending);

  // Runs due downloads, whatever queued them, until none is due or the deadline margin is
  // reached; returns how many ran. Jobs left are kept in the journal for the next invocation.
  size_t DrainDue(int64_t deadline_ms);

  // True when work may still be started before `deadline_ms` (0: no deadline).
  bool HaveTime(int64_t deadline_ms);

  // Sleeps `ms` (tests replace it to advance a fake clock).
  std::function<void(int64_t ms)> sleep;

 private:
  InvocationResult HandleNotification(const Invocation& inv);
  InvocationResult HandleSqs(const Invocation& inv, const nlohmann::json& event);

  Engine& engine_;
  StateStore& state_;
  Clock& clock_;
  DispatchOptions opts_;
  DispatchHooks hooks_;
};

// A client of the Lambda Runtime API at `endpoint` (host:port, from AWS_LAMBDA_RUNTIME_API).
class RuntimeClient {
 public:
  explicit RuntimeClient(std::string endpoint);
  ~RuntimeClient();
  RuntimeClient(const RuntimeClient&) = delete;
  RuntimeClient& operator=(const RuntimeClient&) = delete;

  // Blocks until the next invocation.
  Result<Invocation> Next();
  Status PostResponse(const std::string& request_id, const std::string& body);
  Status PostError(const std::string& request_id, const std::string& type,
                   const std::string& message);
  // Reports a failed initialisation (bad configuration); the process should exit afterwards.
  Status PostInitError(const std::string& type, const std::string& message);

 private:
  struct Reply {
    long status = 0;
    std::string body;
    std::map<std::string, std::string> headers;  // names lower-cased
  };
  Result<Reply> Request(const std::string& method, const std::string& path, const std::string& body,
                        const std::string& error_type);

  std::string base_;
  void* curl_ = nullptr;  // CURL*, reused so that the connection is kept alive
};

// The loop: next -> set _X_AMZN_TRACE_ID -> handle -> response or error. Returns only when the
// Runtime API cannot be reached (the process should then exit non-zero).
Status RunLoop(RuntimeClient& client,
               const std::function<InvocationResult(const Invocation&)>& handle);

}  // namespace ds::lambda
