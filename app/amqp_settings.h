// What `serve` and `route` share for AMQP: their settings (docs/AMQP.md, docs/CONFIGURATION.md).
#pragma once

#include <string>

#include "config.h"
#include "transport/amqp.h"
#include "transport/amqp_dispatch.h"

namespace ds::app {

struct AmqpSettings {
  std::string url, queue, prefetch, exchange, exchange_type, binding_key, dead_letter_exchange;
  // `for_route`: the help texts of `route` (its queue is the ingress queue).
  void Register(Settings& s, bool for_route);
  bool enabled() const { return !url.empty(); }
  // Validates and fills consumer options. Errors name the setting.
  Status Apply(AmqpConsumerOptions* out) const;
};

}  // namespace ds::app
