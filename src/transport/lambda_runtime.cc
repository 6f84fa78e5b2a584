#include "transport/lambda_runtime.h"

#include <curl/curl.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "core/documents.h"
#include "core/key_path.h"
#include "core/parse_events.h"

namespace ds::lambda {
namespace {

using nlohmann::json;
using KeyId = std::pair<std::string, std::string>;

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// The outcome of applying one document's events, as Lambda settles it: a refused key fails the
// record too (retrying cannot help, but it then reaches the dead-letter queue and its alarm
// instead of vanishing into a log line).
struct Applied {
  std::vector<std::string> errors;  // one per event that failed or was refused
  std::vector<KeyId> queued;        // creations journaled: downloads to finish
  int64_t events = 0, applied = 0, ignored = 0;
};

Applied ApplyDocument(Engine& engine, const ParsedDocument& doc) {
  const std::vector<ApplyResult> results = engine.ApplyAll(doc.events);
  DocumentResult d = ResultOfDocument(doc, results.data());
  Applied a;
  a.events = d.events;
  a.applied = d.applied;
  a.ignored = d.ignored + d.test_events + d.non_s3_messages;
  a.queued = std::move(d.queued_keys);
  for (const KeyProblem& p : d.refusals) {
    a.errors.push_back("refused key " + PrintableKey(p.key) + ": " + p.error);
  }
  for (const KeyProblem& p : d.failures) {
    a.errors.push_back("not applied: " + PrintableKey(p.key) + ": " + p.error);
  }
  return a;
}

bool IsSqsBatch(const json& event) {
  if (!event.contains("Records") || !event["Records"].is_array() || event["Records"].empty()) {
    return false;
  }
  for (const json& r : event["Records"]) {
    if (!r.is_object() || !r.contains("eventSource") || r["eventSource"] != "aws:sqs") {
      return false;
    }
  }
  return true;
}

bool IsScheduledEvent(const json& event) {
  return event.value("source", json()) == "aws.events" &&
         event.value("detail-type", json()) == "Scheduled Event";
}

}  // namespace

std::string ErrorDocument(const std::string& type, const std::string& message) {
  return Dump(json{{"errorMessage", message}, {"errorType", type}});
}

Dispatcher::Dispatcher(Engine& engine, StateStore& state, Clock& clock, DispatchOptions opts,
                       DispatchHooks hooks)
    : sleep([](int64_t ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }),
      engine_(engine),
      state_(state),
      clock_(clock),
      opts_(opts),
      hooks_(std::move(hooks)) {}

bool Dispatcher::HaveTime(int64_t deadline_ms) {
  return deadline_ms <= 0 || clock_.NowMillis() + opts_.deadline_margin_ms < deadline_ms;
}

InvocationResult Dispatcher::Handle(const Invocation& inv) {
  json event = json::parse(inv.body, nullptr, /*allow_exceptions=*/false);
  if (event.is_discarded() || !event.is_object()) {
    spdlog::error("lambda: invocation {}: the event is not a JSON object", inv.request_id);
    return InvocationResult::Error("DeleteSync.InvalidEvent", "the event is not a JSON object");
  }
  if (event.contains("erase")) {
    if (!event["erase"].is_object()) {
      return InvocationResult::Error("DeleteSync.InvalidEvent",
                                     "erase: must be an object (an erasure request)");
    }
    if (!hooks_.erase) {
      return InvocationResult::Error("DeleteSync.Unsupported", "erasure is not enabled");
    }
    return hooks_.erase(inv, event["erase"]);
  }
  if (IsScheduledEvent(event)) {
    if (!hooks_.reconcile) {
      return InvocationResult::Error("DeleteSync.Unsupported",
                                     "scheduled reconcile is not enabled");
    }
    return hooks_.reconcile(inv);
  }
  if (IsSqsBatch(event)) return HandleSqs(inv, event);
  return HandleNotification(inv);
}

InvocationResult Dispatcher::HandleNotification(const Invocation& inv) {
  Result<ParsedDocument> doc = ParseNotification(inv.body);
  if (!doc.ok()) {
    spdlog::error("lambda: invocation {}: malformed event: {}", inv.request_id,
                  doc.status().message());
    return InvocationResult::Error("DeleteSync.InvalidEvent",
                                   "malformed notification: " + doc.status().message());
  }
  if (!HaveTime(inv.deadline_ms)) {
    return InvocationResult::Error("DeleteSync.DeadlineExceeded",
                                   "too close to the deadline to start; retry");
  }
  Applied a = ApplyDocument(engine_, *doc);
  std::map<KeyId, bool> pending;
  for (const KeyId& k : a.queued) pending.emplace(k, false);
  DrainFor(inv.deadline_ms, &pending);
  int64_t downloaded = 0;
  for (const auto& [k, done] : pending) {
    if (done) {
      ++downloaded;
    } else {
      a.errors.push_back("download of " + PrintableKey(k.second) +
                         " did not finish in this invocation");
    }
  }
  if (!a.errors.empty()) {
    std::string msg = std::to_string(a.errors.size()) + " event(s) failed: " + a.errors.front();
    spdlog::error("lambda: invocation {}: {}", inv.request_id, msg);
    return InvocationResult::Error("DeleteSync.ApplyFailed", msg);
  }
  return InvocationResult::Response(Dump(json{{"events", a.events},
                                              {"applied", a.applied},
                                              {"downloaded", downloaded},
                                              {"ignored", a.ignored}}));
}

InvocationResult Dispatcher::HandleSqs(const Invocation& inv, const json& event) {
  const json& records = event["Records"];
  // Each record's id, and the reason it failed ("" while it has not).
  std::vector<std::string> ids(records.size()), failure(records.size());
  std::vector<std::vector<KeyId>> queued(records.size());
  for (size_t i = 0; i < records.size(); ++i) {
    const json& r = records[i];
    if (!r.contains("messageId") || !r["messageId"].is_string() ||
        r["messageId"].get<std::string>().empty()) {
      // batchItemFailures cannot name it: fail the whole batch so that nothing is lost.
      spdlog::error("lambda: invocation {}: Records[{}] has no messageId", inv.request_id, i);
      return InvocationResult::Error("DeleteSync.InvalidEvent",
                                     "Records[" + std::to_string(i) + "].messageId: missing");
    }
    ids[i] = r["messageId"].get<std::string>();
    if (!HaveTime(inv.deadline_ms)) {
      failure[i] = "not started: too close to the invocation deadline";
      continue;
    }
    if (!r.contains("body") || !r["body"].is_string()) {
      failure[i] = "body: missing or not a string";
      continue;
    }
    Result<ParsedDocument> doc = ParseNotification(r["body"].get<std::string>());
    if (!doc.ok()) {
      failure[i] = "malformed body: " + doc.status().message();
      continue;
    }
    if (doc->non_s3_messages > 0) {
      spdlog::warn("lambda: SQS message {}: {} message(s) that are not S3 notifications ignored",
                   ids[i], doc->non_s3_messages);
    }
    Applied a = ApplyDocument(engine_, *doc);
    if (!a.errors.empty()) failure[i] = a.errors.front();
    queued[i] = std::move(a.queued);
  }
  std::map<KeyId, bool> pending;
  for (size_t i = 0; i < records.size(); ++i) {
    if (!failure[i].empty()) continue;
    for (const KeyId& k : queued[i]) pending.emplace(k, false);
  }
  DrainFor(inv.deadline_ms, &pending);
  json failures = json::array();
  for (size_t i = 0; i < records.size(); ++i) {
    for (const KeyId& k : queued[i]) {
      if (failure[i].empty() && !pending[k]) {
        failure[i] = "download of " + PrintableKey(k.second) + " did not finish in this invocation";
      }
    }
    if (failure[i].empty()) continue;
    spdlog::error("lambda: SQS message {} failed (it will be retried): {}", ids[i], failure[i]);
    failures.push_back({{"itemIdentifier", ids[i]}});
  }
  spdlog::info("lambda: invocation {}: SQS batch of {} record(s), {} failed", inv.request_id,
               records.size(), failures.size());
  return InvocationResult::Response(Dump(json{{"batchItemFailures", failures}}));
}

void Dispatcher::DrainFor(int64_t deadline_ms, std::map<KeyId, bool>* pending) {
  std::set<KeyId> open;
  for (const auto& [k, done] : *pending) {
    if (!done) open.insert(k);
  }
  while (!open.empty() && HaveTime(deadline_ms)) {
    Result<std::vector<FetchJob>> jobs = state_.ClaimJobs(clock_.NowMillis(), 1);
    if (!jobs.ok()) {
      spdlog::error("lambda: cannot read the job journal: {}", jobs.status().ToString());
      return;
    }
    if (jobs->empty()) {
      // Downloads of this invocation are waiting for a retry or run by another process (another
      // invocation, or a serve or apply on another host of the shared cache). A key whose job
      // has left the journal was finished there: published, gone or discarded.
      for (auto it = open.begin(); it != open.end();) {
        Result<StateStore::JobPresence> p = state_.JobOf(it->first, it->second);
        if (p.ok() && *p == StateStore::JobPresence::kNone) {
          (*pending)[*it] = true;
          it = open.erase(it);
        } else if (p.ok() && *p == StateStore::JobPresence::kFailed) {
          it = open.erase(it);  // stays false
        } else {
          ++it;
        }
      }
      if (open.empty()) break;
      sleep(opts_.poll_ms);
      continue;
    }
    for (const FetchJob& job : *jobs) {
      JobOutcome o = engine_.RunJob(job);
      KeyId k(job.bucket, job.key);
      if (!open.count(k)) continue;
      switch (o) {
        case JobOutcome::kPublished:
        case JobOutcome::kDiscarded:
        case JobOutcome::kGone:
          (*pending)[k] = true;
          open.erase(k);
          break;
        case JobOutcome::kFailed:
          open.erase(k);  // stays false
          break;
        case JobOutcome::kRetry:
          break;
      }
    }
  }
}

size_t Dispatcher::DrainDue(int64_t deadline_ms) {
  size_t ran = 0;
  while (HaveTime(deadline_ms)) {
    Result<std::vector<FetchJob>> jobs = state_.ClaimJobs(clock_.NowMillis(), 1);
    if (!jobs.ok()) {
      spdlog::error("lambda: cannot read the job journal: {}", jobs.status().ToString());
      break;
    }
    if (jobs->empty()) break;
    for (const FetchJob& job : *jobs) {
      engine_.RunJob(job);
      ++ran;
    }
  }
  return ran;
}

// ---------------------------------------------------------------------------------------------
// The Runtime API client.

namespace {

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* headers = static_cast<std::map<std::string, std::string>*>(user);
  std::string line(data, size * n);
  size_t colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = line.substr(0, colon);
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    std::string value = line.substr(colon + 1);
    auto not_space = [](unsigned char c) { return !std::isspace(c); };
    value.erase(value.begin(), std::find_if(value.begin(), value.end(), not_space));
    value.erase(std::find_if(value.rbegin(), value.rend(), not_space).base(), value.end());
    (*headers)[name] = value;
  }
  return size * n;
}

}  // namespace

RuntimeClient::RuntimeClient(std::string endpoint)
    : base_("http://" + std::move(endpoint) + "/2018-06-01/runtime") {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  curl_ = curl_easy_init();
}

RuntimeClient::~RuntimeClient() { curl_easy_cleanup(static_cast<CURL*>(curl_)); }

Result<RuntimeClient::Reply> RuntimeClient::Request(const std::string& method,
                                                    const std::string& path,
                                                    const std::string& body,
                                                    const std::string& error_type) {
  CURL* h = static_cast<CURL*>(curl_);
  if (h == nullptr) return Status::Internal("cannot initialise libcurl");
  curl_easy_reset(h);
  Reply reply;
  char errbuf[CURL_ERROR_SIZE] = {0};
  std::string url = base_ + path;
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http");
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 0L);  // next blocks until an invocation arrives
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &OnBody);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &reply.body);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &OnHeader);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &reply.headers);
  struct curl_slist* headers = nullptr;
  if (method == "POST") {
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    headers = curl_slist_append(headers, "Content-Type: application/json");
    headers = curl_slist_append(headers, "Expect:");
    if (!error_type.empty()) {
      std::string h_type = "Lambda-Runtime-Function-Error-Type: " + error_type;
      headers = curl_slist_append(headers, h_type.c_str());
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  } else {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  }
  CURLcode rc = curl_easy_perform(h);
  curl_slist_free_all(headers);
  if (rc != CURLE_OK) {
    return Status::Unavailable("Lambda Runtime API " + method + " " + url + ": " +
                               (errbuf[0] ? errbuf : curl_easy_strerror(rc)));
  }
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &reply.status);
  return reply;
}

Result<Invocation> RuntimeClient::Next() {
  Result<Reply> r = Request("GET", "/invocation/next", "", "");
  if (!r.ok()) return r.status();
  if (r->status != 200) {
    return Status::Unavailable("Lambda Runtime API: next answered " + std::to_string(r->status) +
                               ": " + r->body);
  }
  Invocation inv;
  inv.body = std::move(r->body);
  inv.request_id = r->headers["lambda-runtime-aws-request-id"];
  inv.trace_id = r->headers["lambda-runtime-trace-id"];
  inv.function_arn = r->headers["lambda-runtime-invoked-function-arn"];
  const std::string& deadline = r->headers["lambda-runtime-deadline-ms"];
  if (!deadline.empty()) {
    char* end = nullptr;
    long long v = std::strtoll(deadline.c_str(), &end, 10);
    if (end != nullptr && *end == '\0' && v > 0) inv.deadline_ms = v;
  }
  if (inv.request_id.empty()) {
    return Status::Unavailable("Lambda Runtime API: next answered without a request id");
  }
  return inv;
}

Status RuntimeClient::PostResponse(const std::string& request_id, const std::string& body) {
  Result<Reply> r = Request("POST", "/invocation/" + request_id + "/response", body, "");
  if (!r.ok()) return r.status();
  if (r->status != 202) {
    return Status::Unavailable("Lambda Runtime API: response answered " +
                               std::to_string(r->status) + ": " + r->body);
  }
  return Status::Ok();
}

Status RuntimeClient::PostError(const std::string& request_id, const std::string& type,
                                const std::string& message) {
  Result<Reply> r =
      Request("POST", "/invocation/" + request_id + "/error", ErrorDocument(type, message), type);
  if (!r.ok()) return r.status();
  if (r->status != 202) {
    return Status::Unavailable("Lambda Runtime API: error answered " + std::to_string(r->status) +
                               ": " + r->body);
  }
  return Status::Ok();
}

Status RuntimeClient::PostInitError(const std::string& type, const std::string& message) {
  Result<Reply> r = Request("POST", "/init/error", ErrorDocument(type, message), type);
  if (!r.ok()) return r.status();
  if (r->status != 202) {
    return Status::Unavailable("Lambda Runtime API: init/error answered " +
                               std::to_string(r->status) + ": " + r->body);
  }
  return Status::Ok();
}

Status RunLoop(RuntimeClient& client,
               const std::function<InvocationResult(const Invocation&)>& handle) {
  while (true) {
    Result<Invocation> inv = client.Next();
    if (!inv.ok()) return inv.status();
    spdlog::debug("lambda: invocation {} (deadline {}, trace {})", inv->request_id,
                  inv->deadline_ms, inv->trace_id);
    if (inv->trace_id.empty()) {
      unsetenv("_X_AMZN_TRACE_ID");
    } else {
      setenv("_X_AMZN_TRACE_ID", inv->trace_id.c_str(), 1);
    }
    InvocationResult r = handle(*inv);
    Status s = r.ok ? client.PostResponse(inv->request_id, r.body)
                    : client.PostError(inv->request_id, r.error_type, r.error_message);
    if (!s.ok()) {
      // The Runtime API refused this answer (e.g. too large, or the invocation timed out):
      // Lambda treats the invocation as failed, and the next one may still come.
      spdlog::error("lambda: invocation {}: {}", inv->request_id, s.message());
    }
  }
}

}  // namespace ds::lambda
