// The AMQP transport's errors: rabbitmq-c's and the broker's replies as Status (see
// amqp_internal.h), and whether an error is the broker's configuration (IsPermanentAmqpError).
#include <amqp.h>

#include <cstdint>
#include <string>

#include "common/status.h"
#include "transport/amqp.h"
#include "transport/amqp_internal.h"

namespace ds {
namespace amqp_internal {

// The broker's or the library's reason for a failed RPC, in words.
std::string ReplyText(const amqp_rpc_reply_t& r) {
  switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL:
      return "ok";
    case AMQP_RESPONSE_NONE:
      return "missing RPC reply";
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
      return amqp_error_string2(r.library_error);
    case AMQP_RESPONSE_SERVER_EXCEPTION:
      if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
        auto* m = static_cast<amqp_connection_close_t*>(r.reply.decoded);
        return "broker closed the connection: " + std::to_string(m->reply_code) + " " +
               BytesToString(m->reply_text);
      }
      if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        auto* m = static_cast<amqp_channel_close_t*>(r.reply.decoded);
        return "broker closed the channel: " + std::to_string(m->reply_code) + " " +
               BytesToString(m->reply_text);
      }
      return "broker error (method " + std::to_string(r.reply.id) + ")";
  }
  return "unknown AMQP reply";
}

// The code of a broker's reply: 403 ACCESS_REFUSED and 530 NOT_ALLOWED (a vhost the user may
// not open, or that does not exist) are permissions, 404 NOT_FOUND a missing queue or
// exchange, 405 RESOURCE_LOCKED and 406 PRECONDITION_FAILED a queue or exchange that exists
// with other settings: none of them passes by retrying. Anything else may.
Code CodeOfReply(uint16_t reply_code) {
  switch (reply_code) {
    case 403:
    case 530:
      return Code::kPermissionDenied;
    case 404:
      return Code::kNotFound;
    case 405:
    case 406:
      return Code::kConflict;
    default:
      return Code::kUnavailable;
  }
}

uint16_t ReplyCode(const amqp_rpc_reply_t& r) {
  if (r.reply_type != AMQP_RESPONSE_SERVER_EXCEPTION) return 0;
  if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD)
    return static_cast<amqp_connection_close_t*>(r.reply.decoded)->reply_code;
  if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD)
    return static_cast<amqp_channel_close_t*>(r.reply.decoded)->reply_code;
  return 0;
}

// The error for a channel.close or connection.close frame the broker sent.
Status BrokerClosed(const amqp_frame_t& frame) {
  if (frame.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD) {
    auto* m = static_cast<amqp_channel_close_t*>(frame.payload.method.decoded);
    return Status(CodeOfReply(m->reply_code),
                  "AMQP: broker closed the channel: " + std::to_string(m->reply_code) + " " +
                      BytesToString(m->reply_text));
  }
  auto* m = static_cast<amqp_connection_close_t*>(frame.payload.method.decoded);
  return Status(CodeOfReply(m->reply_code),
                "AMQP: broker closed the connection: " + std::to_string(m->reply_code) + " " +
                    BytesToString(m->reply_text));
}

Status Check(const amqp_rpc_reply_t& r, const std::string& what) {
  if (r.reply_type == AMQP_RESPONSE_NORMAL) return Status::Ok();
  return Status(CodeOfReply(ReplyCode(r)), "AMQP " + what + ": " + ReplyText(r));
}

}  // namespace amqp_internal

bool IsPermanentAmqpError(const Status& s) {
  return s.code() == Code::kPermissionDenied || s.code() == Code::kNotFound ||
         s.code() == Code::kConflict;
}

}  // namespace ds
