#include "amqp_settings.h"

namespace ds::app {

void AmqpSettings::Register(Settings& s, bool for_route) {
  s.Add("amqp-url", &url,
        for_route ? "broker to route on: amqp://USER:PASSWORD@HOST:PORT/VHOST (or amqps://)"
                  : "consume notifications from this AMQP broker: "
                    "amqp://USER:PASSWORD@HOST:PORT/VHOST (or amqps://)");
  s.Add("amqp-queue", &queue,
        for_route ? "the ingress queue to route from (declared durable)"
                  : "the queue to consume (declared durable; required with --amqp-url)");
  s.Add("amqp-prefetch", &prefetch, "unacknowledged messages the broker may send ahead", "64");
  s.Add("amqp-exchange", &exchange,
        for_route ? "bind the ingress queue to this exchange (where the store publishes)"
                  : "bind the queue to this exchange (declared if missing); for a partitioned "
                    "worker, the consistent-hash exchange that `route` publishes to");
  s.Add("amqp-exchange-type", &exchange_type,
        "type of --amqp-exchange when it is declared: topic, fanout, direct, x-consistent-hash",
        "topic");
  s.Add("amqp-binding-key", &binding_key,
        "binding key to --amqp-exchange (a weight such as 1 for x-consistent-hash); default # "
        "for topic, 1 for x-consistent-hash, empty otherwise");
  s.Add("amqp-dead-letter-exchange", &dead_letter_exchange,
        "where malformed or refused messages go, with the reason in the header "
        "x-delete-sync-reason (default <queue>.dead-letter, with a queue of that name)");
}

Status AmqpSettings::Apply(AmqpConsumerOptions* out) const {
  Result<AmqpUrl> u = ParseAmqpUrl(url);
  if (!u.ok()) return Status::Invalid("--amqp-url: " + u.status().message());
  if (queue.empty()) return Status::Invalid("--amqp-url needs --amqp-queue (the queue to consume)");
  Result<int64_t> p = ParseInt("amqp-prefetch", prefetch, 1, 65535);
  if (!p.ok()) return p.status();
  static const char* kTypes[] = {"topic", "fanout", "direct", "headers", "x-consistent-hash"};
  bool known = false;
  for (const char* t : kTypes) known = known || exchange_type == t;
  if (!known) {
    return Status::Invalid("--amqp-exchange-type: unknown exchange type '" + exchange_type +
                           "' (topic, fanout, direct, headers, x-consistent-hash)");
  }
  out->url = *u;
  out->queue = queue;
  out->prefetch = static_cast<uint16_t>(*p);
  out->bind_exchange = exchange;
  out->bind_exchange_type = exchange_type;
  if (!binding_key.empty()) {
    out->bind_key = binding_key;
  } else if (exchange_type == "topic") {
    out->bind_key = "#";
  } else if (exchange_type == "x-consistent-hash") {
    out->bind_key = "1";
  } else {
    out->bind_key = "";
  }
  if (exchange_type == "x-consistent-hash") {
    Result<int64_t> w = ParseInt("amqp-binding-key", out->bind_key, 1, 1000000);
    if (!w.ok()) {
      return Status::Invalid(
          "--amqp-binding-key: with an x-consistent-hash exchange the binding key is the "
          "queue's weight, a positive integer");
    }
  }
  out->dead_letter_exchange = dead_letter_exchange;
  return Status::Ok();
}

}  // namespace ds::app
