// delete-sync route: the partitioner in front of several workers (docs/AMQP.md). Consumes the
// documents the object store publishes (an ingress queue), splits them into one message per
// record, and publishes each to a consistent-hash exchange keyed by bucket + key, so that all
// events of one key go to the same worker. A message is acked only after every part of it was
// confirmed by the broker.
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "amqp_settings.h"
#include "command.h"
#include "runtime.h"

namespace ds::app {
namespace {

class RouteCommand : public Command {
 public:
  CLI::App* Register(CLI::App& parent) override {
    cmd_ = parent.add_subcommand(
        "route",
        "Partition notifications for several workers: consume an ingress queue and publish "
        "each record to a consistent-hash exchange keyed by bucket + key");
    settings_ = std::make_unique<Settings>(cmd_);
    amqp_.Register(*settings_, /*for_route=*/true);
    settings_->Add("route-to", &route_to_,
                   "the x-consistent-hash exchange the workers' queues are bound to (declared "
                   "if missing)");
    settings_->Add("log-level", &log_level_, "trace, debug, info, warn, error, off", "info");
    return cmd_;
  }

  Status Check() override {
    DS_RETURN_IF_ERROR(settings_->Resolve());
    DS_RETURN_IF_ERROR(SetupLogging(log_level_));
    if (!amqp_.enabled()) return Status::Invalid("--amqp-url is required");
    if (route_to_.empty()) return Status::Invalid("--route-to is required");
    DS_RETURN_IF_ERROR(amqp_.Apply(&opts_));
    if (opts_.bind_exchange == route_to_) {
      return Status::Invalid("--amqp-exchange and --route-to must differ (a loop)");
    }
    return Status::Ok();
  }

  Result<RunEnd> Run() override {
    const AmqpConsumerOptions& opts = opts_;

    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
    signal(SIGPIPE, SIG_IGN);

    // The output exchange is checked once before consuming, so that a missing plugin or a
    // wrong type is a clear error at start rather than a retry loop.
    {
      Result<std::unique_ptr<AmqpChannel>> ch = AmqpChannel::Open(opts.url);
      if (ch.ok()) {
        Status s = (*ch)->DeclareExchange(route_to_, "x-consistent-hash");
        if (!s.ok()) {
          return Status::Invalid(s.message() +
                                 " (is the rabbitmq_consistent_hash_exchange plugin "
                                 "enabled, and is the exchange not of another type?)");
        }
      } else {
        spdlog::warn("route: broker not reachable yet ({}); will keep trying",
                     ch.status().message());
      }
    }

    std::unique_ptr<AmqpChannel> out;
    uint64_t published = 0;
    AmqpConsumer consumer(opts, [&](const AmqpDelivery& d) -> AmqpVerdict {
      if (!out) {
        Result<std::unique_ptr<AmqpChannel>> ch = AmqpChannel::Open(opts.url);
        if (!ch.ok()) return {AmqpDisposition::kRetry, ch.status().message()};
        out = std::move(*ch);
      }
      AmqpVerdict v = RouteDocument(*out, route_to_, d.body, &published);
      if (v.disposition == AmqpDisposition::kRetry) out.reset();  // reopen after a failure
      return v;
    });
    std::atomic<bool> stop{false};
    std::thread runner([&] {
      consumer.Run(stop);
      // Stopped for good (the broker's configuration): end route with that error.
      if (consumer.stopped_error()) kill(getpid(), SIGTERM);
    });
    spdlog::info("route: {} -> exchange '{}' (x-consistent-hash)", opts.queue, route_to_);
    int sig = 0;
    sigwait(&stop_signals, &sig);
    spdlog::info("route: stopping (signal {})", sig);
    stop = true;
    runner.join();
    spdlog::info("route: {} message(s) acked, {} published, {} dead-lettered", consumer.acked(),
                 published, consumer.dead_lettered());
    if (std::optional<std::string> err = consumer.stopped_error()) {
      return Status::Unavailable("route: " + *err);
    }
    return RunEnd::kOk;
  }

 private:
  CLI::App* cmd_ = nullptr;
  std::unique_ptr<Settings> settings_;
  AmqpSettings amqp_;
  std::string route_to_, log_level_;
  AmqpConsumerOptions opts_;  // checked by Check()
};

}  // namespace

std::unique_ptr<Command> MakeRouteCommand() { return std::make_unique<RouteCommand>(); }

}  // namespace ds::app
