// Publishing on an AmqpChannel with publisher confirms (EnableConfirms, PublishConfirmed; see
// amqp.h): persistent messages, string headers, and the broker's ack, nack or return awaited.
#include <amqp.h>
#include <sys/time.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>

#include "common/status.h"
#include "transport/amqp.h"
#include "transport/amqp_internal.h"

namespace ds {

Status AmqpChannel::EnableConfirms() {
  if (impl_->confirms) return Status::Ok();
  amqp_confirm_select(impl_->conn, amqp_internal::kChannel);
  Status s = amqp_internal::Check(amqp_get_rpc_reply(impl_->conn), "confirm.select");
  if (s.ok()) impl_->confirms = true;
  return s;
}

Status AmqpChannel::PublishConfirmed(const std::string& exchange, const std::string& routing_key,
                                     const std::string& body,
                                     const std::map<std::string, std::string>& headers,
                                     bool mandatory, int timeout_ms) {
  Status s = EnableConfirms();
  if (!s.ok()) return s;
  amqp_internal::AmqpTable t(headers);
  amqp_basic_properties_t props{};
  props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG;
  props.delivery_mode = 2;  // persistent
  props.content_type = amqp_cstring_bytes("application/json");
  if (!headers.empty()) {
    props._flags |= AMQP_BASIC_HEADERS_FLAG;
    props.headers = t.get();
  }
  int rc =
      amqp_basic_publish(impl_->conn, amqp_internal::kChannel, amqp_internal::StringBytes(exchange),
                         amqp_internal::StringBytes(routing_key), mandatory ? 1 : 0, 0, &props,
                         amqp_internal::StringBytes(body));
  if (rc != AMQP_STATUS_OK) {
    return Status::Unavailable(std::string("AMQP: basic.publish: ") + amqp_error_string2(rc));
  }
  const uint64_t seq = ++impl_->published;
  bool returned = false;
  std::string return_text;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) {
      return Status::Unavailable("AMQP: no publisher confirm from the broker within " +
                                 std::to_string(timeout_ms) + " ms");
    }
    amqp_frame_t frame;
    timeval tv = amqp_internal::Millis(static_cast<int>(left));
    rc = amqp_simple_wait_frame_noblock(impl_->conn, &frame, &tv);
    if (rc == AMQP_STATUS_TIMEOUT) continue;
    if (rc != AMQP_STATUS_OK) {
      return Status::Unavailable(std::string("AMQP: waiting for the publisher confirm: ") +
                                 amqp_error_string2(rc));
    }
    if (frame.frame_type != AMQP_FRAME_METHOD) continue;
    switch (frame.payload.method.id) {
      case AMQP_BASIC_ACK_METHOD: {
        auto* m = static_cast<amqp_basic_ack_t*>(frame.payload.method.decoded);
        if (m->delivery_tag < seq && !m->multiple) continue;
        if (returned) {
          return Status::Unavailable("AMQP: exchange '" + exchange +
                                     "' routed the message to no queue (" + return_text +
                                     "): bind a queue to it first");
        }
        return Status::Ok();
      }
      case AMQP_BASIC_NACK_METHOD:
        return Status::Unavailable("AMQP: the broker refused the message (basic.nack)");
      case AMQP_BASIC_RETURN_METHOD: {
        auto* m = static_cast<amqp_basic_return_t*>(frame.payload.method.decoded);
        returned = true;
        return_text =
            std::to_string(m->reply_code) + " " + amqp_internal::BytesToString(m->reply_text);
        amqp_message_t msg;
        amqp_rpc_reply_t r = amqp_read_message(impl_->conn, frame.channel, &msg, 0);
        if (r.reply_type != AMQP_RESPONSE_NORMAL)
          return amqp_internal::Check(r, "reading a returned message");
        amqp_destroy_message(&msg);
        continue;
      }
      case AMQP_CHANNEL_CLOSE_METHOD:
      case AMQP_CONNECTION_CLOSE_METHOD:
        return amqp_internal::BrokerClosed(frame);
      default:
        continue;
    }
  }
}

}  // namespace ds
