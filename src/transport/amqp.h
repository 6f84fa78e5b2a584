// The AMQP 0-9-1 transport (RabbitMQ, through Debian's rabbitmq-c).
//
// AmqpChannel: one connection with one channel: declare, bind, consume, ack/reject, and
// publish with publisher confirms. AmqpConsumer: the loop a worker runs: consume a queue,
// hand each message to a handler, and settle it by the handler's verdict:
//
//   kAck         the effect is durable: basic.ack.
//   kDeadLetter  the message can never succeed (malformed, refused key): it is republished to
//                the dead-letter exchange with the reason in the header "x-delete-sync-reason"
//                (publisher-confirmed), then acked. If that publish fails, it is rejected
//                without requeue when delete-sync declared the queue (its
//                x-dead-letter-exchange still takes it), and requeued when the queue existed
//                before (it may have no dead-letter exchange: rejecting could drop it).
//   kRetry       a transient failure (disk, state store, object store): after a pause it is
//                rejected with requeue, so it is delivered again.
//
// A message is never acked before its handler returned kAck or it was dead-lettered, so a
// worker that dies mid-message gets it redelivered. The consumer reconnects with exponential
// backoff (and jitter) after the broker or the network goes away, and says so in the log.
// A queue that exists is used as it is (passive declare); one that does not is declared
// durable with x-dead-letter-exchange. When the broker refuses the setup for good (403/530
// permissions or vhost, 404, 405/406 a queue or exchange with other settings), the consumer
// stops with that error (stopped_error) instead of retrying for ever.
// Passwords never reach the log: URLs are printed with RedactAmqpUrl.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace ds {

struct AmqpUrl {
  std::string host = "localhost";
  int port = 5672;
  std::string vhost = "/";
  std::string user = "guest";
  std::string password = "guest";
  bool tls = false;
};

// Parses amqp://[USER[:PASSWORD]@]HOST[:PORT][/VHOST] and amqps://... (rabbitmq-c's parser:
// "%2f" is the vhost "/", an empty path is "/").
Result<AmqpUrl> ParseAmqpUrl(const std::string& url);
// The URL with the password replaced by "***", for logs and errors.
std::string RedactAmqpUrl(const AmqpUrl& url);

struct AmqpDelivery {
  uint64_t tag = 0;
  bool redelivered = false;
  std::string exchange, routing_key, body;
  std::map<std::string, std::string> headers;  // string-valued headers only
};

// Whether an AMQP error is the broker's configuration (permissions, a missing vhost, queue or
// exchange, one that exists with other settings): retrying cannot help.
bool IsPermanentAmqpError(const Status& s);

// A queue or exchange argument ("x-dead-letter-exchange" -> "name"); string values only.
using AmqpArgs = std::map<std::string, std::string>;

class AmqpChannel {
 public:
  ~AmqpChannel();
  AmqpChannel(const AmqpChannel&) = delete;
  AmqpChannel& operator=(const AmqpChannel&) = delete;

  // Connects, logs in and opens channel 1. `heartbeat_s` 0 disables heartbeats.
  static Result<std::unique_ptr<AmqpChannel>> Open(const AmqpUrl& url, int heartbeat_s = 30,
                                                   int connect_timeout_ms = 5000);

  Status DeclareExchange(const std::string& name, const std::string& type, bool durable = true);
  Status DeclareQueue(const std::string& name, const AmqpArgs& args = {}, bool durable = true);
  Status Bind(const std::string& queue, const std::string& exchange, const std::string& key);
  Status Qos(uint16_t prefetch);
  Status Consume(const std::string& queue);
  // The next delivery, or nullopt after `timeout_ms` without one.
  Result<std::optional<AmqpDelivery>> Next(int timeout_ms);
  Status Ack(uint64_t tag);
  Status Reject(uint64_t tag, bool requeue);

  // Puts the channel in confirm mode (once); PublishConfirmed then waits for the broker's
  // ack. With `mandatory`, a message no queue would receive is an error, not an ack.
  Status EnableConfirms();
  Status PublishConfirmed(const std::string& exchange, const std::string& routing_key,
                          const std::string& body,
                          const std::map<std::string, std::string>& headers = {},
                          bool mandatory = true, int timeout_ms = 30000);

  // Whether `queue` exists (a passive declare on a channel of its own).
  Result<bool> QueueExists(const std::string& queue);
  // Messages waiting in `queue` (a passive declare); for tests, tools and benchmarks.
  Result<uint32_t> QueueDepth(const std::string& queue);
  Status DeleteQueue(const std::string& queue);
  Status DeleteExchange(const std::string& exchange);

 private:
  struct Impl;
  explicit AmqpChannel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

enum class AmqpDisposition { kAck, kDeadLetter, kRetry };
struct AmqpVerdict {
  AmqpDisposition disposition = AmqpDisposition::kAck;
  std::string reason;  // for kDeadLetter (the header) and kRetry (the log)
};

struct AmqpConsumerOptions {
  AmqpUrl url;
  std::string queue;          // consumed; declared durable (with the dead-letter args) unless
                              // it exists, then used as it is
  uint16_t prefetch = 64;     // unacked messages the broker may push ahead
  std::string bind_exchange;  // when set: declared (bind_exchange_type) and bound
  std::string bind_exchange_type = "topic";
  std::string bind_key = "#";        // binding key (a weight for x-consistent-hash)
  std::string dead_letter_exchange;  // default "<queue>.dead-letter"; a fanout exchange with
                                     // a durable queue of the same name bound to it
  int reconnect_min_ms = 200;
  int reconnect_max_ms = 30000;
  int retry_pause_ms = 1000;  // before a kRetry message is requeued
};

class AmqpConsumer {
 public:
  using Handler = std::function<AmqpVerdict(const AmqpDelivery&)>;
  // Settles a group of deliveries at once: one verdict per delivery, in order. The consumer
  // hands it every message that has already arrived (at most `prefetch`), never waiting for
  // more, so that a handler can make them durable together.
  using BatchHandler = std::function<std::vector<AmqpVerdict>(const std::vector<AmqpDelivery>&)>;
  AmqpConsumer(AmqpConsumerOptions opts, Handler handler);
  AmqpConsumer(AmqpConsumerOptions opts, BatchHandler handler);

  // Consumes until `stop` is set (checked at least every 250 ms), reconnecting as needed.
  void Run(const std::atomic<bool>& stop);

  // Declares the queue, its dead-letter exchange and queue, and the binding, as Run would.
  // For `setup`-style commands and tests.
  Status DeclareTopology(AmqpChannel& ch) const;

  uint64_t acked() const { return acked_.load(); }
  uint64_t dead_lettered() const { return dead_lettered_.load(); }
  uint64_t retried() const { return retried_.load(); }
  bool connected() const { return connected_.load(); }
  // Set when the consumer stopped for good (IsPermanentAmqpError): the broker's reason and what
  // to do. Run has returned then.
  std::optional<std::string> stopped_error() const;
  // Whether the queue existed before the consumer declared its topology.
  bool queue_preexisting() const { return queue_preexisting_.load(); }

 private:
  Status Session(const std::atomic<bool>& stop);
  Status Settle(AmqpChannel& ch, AmqpChannel*& dlx, const AmqpDelivery& d, const AmqpVerdict& v);

  AmqpConsumerOptions opts_;
  BatchHandler handler_;
  std::atomic<uint64_t> acked_{0}, dead_lettered_{0}, retried_{0};
  std::atomic<bool> connected_{false};
  mutable std::atomic<bool> queue_preexisting_{false};
  mutable std::mutex mu_;
  std::optional<std::string> stopped_error_;
};

}  // namespace ds
