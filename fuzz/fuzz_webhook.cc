// The webhook's request handling without a socket: HandleNotification parses a body and
// applies it with a real Engine over in-memory fakes. Whatever the body, the reply is one of
// the documented status codes with a JSON body, and a rejected body changes nothing. The same
// body also goes through HandleWebhookPost with an SnsGate (--sns-topic-arn set) whose verifier
// accepts every signature: an SNS answer (403, 400, 503, a confirmation) changes nothing.
#include <spdlog/spdlog.h>

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "core/engine.h"
#include "core/sns.h"
#include "fakes/fakes.h"
#include "fuzz_common.h"
#include "transport/http_webhook.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool quiet = [] {
    spdlog::set_level(spdlog::level::off);
    return true;
  }();
  (void)quiet;
  std::string body(reinterpret_cast<const char*>(data), size);
  ds::fakes::FakeObjectStore store;
  ds::fakes::FakeCacheFs cache;
  ds::fakes::FakeStateStore state;
  ds::fakes::FakeClock clock;
  cache.PutFile("present", "x");  // so that a removal has something to remove
  ds::EngineOptions opts;         // any bucket: every event is applied
  ds::Engine engine(&store, cache, state, clock, opts);

  ds::WebhookReply reply = ds::HandleNotification(engine, body);
  FUZZ_CHECK(
      reply.status == 200 || reply.status == 400 || reply.status == 422 || reply.status == 500,
      "a documented status code");
  nlohmann::json parsed = nlohmann::json::parse(reply.body, nullptr, /*allow_exceptions=*/false);
  FUZZ_CHECK(!parsed.is_discarded() && parsed.is_object(), "the reply body is a JSON object");
  if (reply.status == 400) {
    FUZZ_CHECK(parsed.contains("error"), "a rejection says why");
    FUZZ_CHECK(cache.Has("present") && state.Jobs().empty() && state.keys_.empty(),
               "a rejected document changes nothing");
  }
  // Creations of one key merge into one job; removals may add a resync job.
  FUZZ_CHECK(reply.queued >= 0, "a count");
  if (reply.queued > 0) FUZZ_CHECK(!state.Jobs().empty(), "a queued download is journaled");

  // Through the SNS gate.
  struct AcceptAll : ds::SnsSignatureVerifier {
    ds::Result<ds::SignatureCheck> Verify(const std::string&, int, std::string_view,
                                          const std::string&) override {
      return ds::SignatureCheck::kValid;
    }
  };
  struct Confirms : ds::HttpsGetter {
    ds::Result<Answer> Get(const std::string&) override { return Answer{200, ""}; }
  };
  static AcceptAll verifier;
  static Confirms getter;
  static ds::SnsGate gate(ds::SnsOptions{{"arn:aws:sns:us-east-1:123456789012:t"}, ""}, verifier,
                          getter);
  ds::fakes::FakeCacheFs cache2;
  ds::fakes::FakeStateStore state2;
  cache2.PutFile("present", "x");
  ds::Engine engine2(&store, cache2, state2, clock, opts);
  ds::WebhookReply sns = ds::HandleWebhookPost(engine2, &gate, body);
  FUZZ_CHECK(sns.status == 200 || sns.status == 400 || sns.status == 403 || sns.status == 422 ||
                 sns.status == 500 || sns.status == 503,
             "a documented status code");
  nlohmann::json sns_body = nlohmann::json::parse(sns.body, nullptr, false);
  FUZZ_CHECK(!sns_body.is_discarded() && sns_body.is_object(), "the reply body is a JSON object");
  if (sns.status == 400 || sns.status == 403 || sns.status == 503 || sns_body.contains("sns")) {
    FUZZ_CHECK(cache2.Has("present") && state2.Jobs().empty() && state2.keys_.empty(),
               "an SNS message that is not applied changes nothing");
  }
  return 0;
}
