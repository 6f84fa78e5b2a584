// AmqpConsumer (see amqp.h): the topology it declares, the consume loop that hands batches to
// the handler, the settling of each message by its verdict (ack, dead letter, retry), and the
// reconnects with backoff or the stop on a permanent error.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/status.h"
#include "transport/amqp.h"

namespace ds {

AmqpConsumer::AmqpConsumer(AmqpConsumerOptions opts, Handler handler)
    : AmqpConsumer(std::move(opts), [h = std::move(handler)](const std::vector<AmqpDelivery>& ds) {
        std::vector<AmqpVerdict> vs;
        vs.reserve(ds.size());
        for (const AmqpDelivery& d : ds) vs.push_back(h(d));
        return vs;
      }) {}

AmqpConsumer::AmqpConsumer(AmqpConsumerOptions opts, BatchHandler handler)
    : opts_(std::move(opts)), handler_(std::move(handler)) {
  if (opts_.dead_letter_exchange.empty()) opts_.dead_letter_exchange = opts_.queue + ".dead-letter";
}

Status AmqpConsumer::DeclareTopology(AmqpChannel& ch) const {
  const std::string& dlx = opts_.dead_letter_exchange;
  Status s = ch.DeclareExchange(dlx, "fanout");
  if (s.ok()) s = ch.DeclareQueue(dlx);
  if (s.ok()) s = ch.Bind(dlx, dlx, "");
  if (!s.ok()) return s;
  // A queue that exists (declared by the operator's tooling, perhaps with a dead-letter policy)
  // is used as it is: declaring it again with other arguments fails with 406 for ever.
  Result<bool> exists = ch.QueueExists(opts_.queue);
  if (!exists.ok()) return exists.status();
  queue_preexisting_ = *exists;
  if (*exists) {
    spdlog::info(
        "amqp: using the existing queue '{}' as it is (its arguments and policies are the "
        "broker's; dead letters are published to '{}' by delete-sync)",
        opts_.queue, dlx);
  } else {
    s = ch.DeclareQueue(opts_.queue, {{"x-dead-letter-exchange", dlx}});
  }
  if (s.ok() && !opts_.bind_exchange.empty()) {
    s = ch.DeclareExchange(opts_.bind_exchange, opts_.bind_exchange_type);
    if (s.ok()) s = ch.Bind(opts_.queue, opts_.bind_exchange, opts_.bind_key);
  }
  return s;
}

namespace {
// Sleeps up to `ms`, in short steps, returning early when `stop` is set.
void SleepUnlessStopped(int64_t ms, const std::atomic<bool>& stop) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (!stop.load() && std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}
}  // namespace

Status AmqpConsumer::Settle(AmqpChannel& ch, AmqpChannel*& dlx, const AmqpDelivery& d,
                            const AmqpVerdict& v) {
  switch (v.disposition) {
    case AmqpDisposition::kAck: {
      Status s = ch.Ack(d.tag);
      if (s.ok()) ++acked_;
      return s;
    }
    case AmqpDisposition::kRetry:
      ++retried_;
      spdlog::warn("amqp: message on '{}' failed and will be delivered again: {}", opts_.queue,
                   v.reason);
      return ch.Reject(d.tag, /*requeue=*/true);
    case AmqpDisposition::kDeadLetter: {
      ++dead_lettered_;
      spdlog::warn("amqp: message on '{}' sent to dead-letter exchange '{}': {}", opts_.queue,
                   opts_.dead_letter_exchange, v.reason);
      Status pub = Status::Unavailable("no dead-letter channel");
      if (dlx) {
        std::map<std::string, std::string> headers = d.headers;
        headers["x-delete-sync-reason"] = v.reason.substr(0, 4000);
        headers["x-delete-sync-queue"] = opts_.queue;
        if (!d.exchange.empty()) headers["x-delete-sync-exchange"] = d.exchange;
        pub = dlx->PublishConfirmed(opts_.dead_letter_exchange, d.routing_key, d.body, headers,
                                    /*mandatory=*/false);
      }
      if (!pub.ok() && queue_preexisting_) {
        // A queue delete-sync did not declare may have no dead-letter exchange of its own:
        // rejecting could drop the message. It is delivered again later instead.
        spdlog::warn(
            "amqp: cannot publish to '{}' ({}); the message goes back to '{}' and is tried "
            "again (a queue delete-sync did not declare may drop what it rejects)",
            opts_.dead_letter_exchange, pub.message(), opts_.queue);
        return ch.Reject(d.tag, /*requeue=*/true);
      }
      if (!pub.ok()) {
        // The queue's x-dead-letter-exchange still takes it, without our reason header.
        spdlog::warn("amqp: cannot publish to '{}' ({}); rejecting the message instead",
                     opts_.dead_letter_exchange, pub.message());
        return ch.Reject(d.tag, /*requeue=*/false);
      }
      return ch.Ack(d.tag);
    }
  }
  return Status::Ok();
}

Status AmqpConsumer::Session(const std::atomic<bool>& stop) {
  Result<std::unique_ptr<AmqpChannel>> ch = AmqpChannel::Open(opts_.url);
  if (!ch.ok()) return ch.status();
  Status s = DeclareTopology(**ch);
  if (s.ok()) s = (*ch)->Qos(opts_.prefetch);
  if (s.ok()) s = (*ch)->Consume(opts_.queue);
  if (!s.ok()) return s;
  // Dead letters go out on a connection of their own, so that waiting for their confirm
  // never reads (and loses) a delivery of the consuming channel.
  std::unique_ptr<AmqpChannel> dlx_channel;
  Result<std::unique_ptr<AmqpChannel>> dlx = AmqpChannel::Open(opts_.url);
  if (dlx.ok()) {
    dlx_channel = std::move(*dlx);
  } else {
    spdlog::warn("amqp: no dead-letter publisher ({}); malformed messages will be rejected",
                 dlx.status().message());
  }
  connected_ = true;
  spdlog::info("amqp: consuming queue '{}' on {} (prefetch {}, dead letters to '{}')", opts_.queue,
               RedactAmqpUrl(opts_.url), opts_.prefetch, opts_.dead_letter_exchange);
  while (!stop.load()) {
    Result<std::optional<AmqpDelivery>> d = (*ch)->Next(250);
    if (!d.ok()) return d.status();
    if (!d->has_value()) continue;
    // Take whatever else has already arrived (up to the prefetch), without waiting for more:
    // the handler applies them together (one group commit), which costs no latency.
    std::vector<AmqpDelivery> batch;
    batch.push_back(std::move(**d));
    const size_t max_batch = std::max<size_t>(1, opts_.prefetch);
    while (batch.size() < max_batch) {
      Result<std::optional<AmqpDelivery>> more = (*ch)->Next(0);
      if (!more.ok()) return more.status();  // nothing of the batch was settled: redelivered
      if (!more->has_value()) break;
      batch.push_back(std::move(**more));
    }
    std::vector<AmqpVerdict> verdicts = handler_(batch);
    if (verdicts.size() != batch.size()) {
      return Status::Internal("amqp: the handler settled " + std::to_string(verdicts.size()) +
                              " of " + std::to_string(batch.size()) + " messages");
    }
    for (const AmqpVerdict& v : verdicts) {
      if (v.disposition == AmqpDisposition::kRetry) {
        SleepUnlessStopped(opts_.retry_pause_ms, stop);
        break;
      }
    }
    AmqpChannel* dlx_ptr = dlx_channel.get();
    for (size_t i = 0; i < batch.size(); ++i) {
      s = Settle(**ch, dlx_ptr, batch[i], verdicts[i]);
      if (!s.ok()) return s;
    }
  }
  return Status::Ok();
}

void AmqpConsumer::Run(const std::atomic<bool>& stop) {
  std::mt19937_64 rng(std::random_device{}());
  int64_t backoff = opts_.reconnect_min_ms;
  int attempts = 0;
  while (!stop.load()) {
    bool was_connected = false;
    Status s = Session(stop);
    was_connected = connected_.exchange(false);
    if (stop.load()) break;
    if (!was_connected && IsPermanentAmqpError(s)) {
      // The broker refused the setup for a reason that retrying cannot change: say so once
      // and stop, instead of looping on it while the queue fills.
      std::string why = s.message() +
                        ". This is the broker's configuration (permissions, a vhost, or a queue "
                        "or exchange that exists with other settings), not a passing failure: "
                        "fix it, then restart the service";
      {
        std::lock_guard<std::mutex> l(mu_);
        stopped_error_ = why;
      }
      spdlog::error("amqp: stopped consuming '{}' on {}: {}", opts_.queue, RedactAmqpUrl(opts_.url),
                    why);
      return;
    }
    if (was_connected) {
      backoff = opts_.reconnect_min_ms;
      attempts = 0;
    }
    ++attempts;
    int64_t pause = std::uniform_int_distribution<int64_t>(backoff / 2, backoff)(rng);
    spdlog::warn("amqp: {} ({}); reconnecting in {} ms (attempt {})",
                 was_connected ? "connection lost" : "cannot consume", s.message(), pause,
                 attempts);
    SleepUnlessStopped(pause, stop);
    backoff = std::min<int64_t>(backoff * 2, opts_.reconnect_max_ms);
  }
  spdlog::info("amqp: consumer of '{}' stopped", opts_.queue);
}

std::optional<std::string> AmqpConsumer::stopped_error() const {
  std::lock_guard<std::mutex> l(mu_);
  return stopped_error_;
}

}  // namespace ds
