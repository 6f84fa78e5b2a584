// AmqpChannel (see amqp.h, amqp_internal.h): connecting and logging in, declarations, bindings,
// the passive probes (QueueExists, QueueDepth), consuming (Next), ack and reject, deletions.
#include <amqp.h>
#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "common/status.h"
#include "transport/amqp.h"
#include "transport/amqp_internal.h"

namespace ds {

AmqpChannel::AmqpChannel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
AmqpChannel::~AmqpChannel() = default;

Result<std::unique_ptr<AmqpChannel>> AmqpChannel::Open(const AmqpUrl& url, int heartbeat_s,
                                                       int connect_timeout_ms) {
  auto impl = std::make_unique<Impl>();
  impl->conn = amqp_new_connection();
  if (!impl->conn) return Status::Internal("AMQP: out of memory");
  const std::string where = RedactAmqpUrl(url);
  amqp_socket_t* sock = nullptr;
  if (url.tls) {
    sock = amqp_ssl_socket_new(impl->conn);
    if (sock) {
      amqp_ssl_socket_set_verify_peer(sock, 1);
      amqp_ssl_socket_set_verify_hostname(sock, 1);
      const char* ca = std::getenv("SSL_CERT_FILE");
      if (!ca || !*ca) ca = "/etc/ssl/certs/ca-certificates.crt";
      if (access(ca, R_OK) == 0) amqp_ssl_socket_set_cacert(sock, ca);
    }
  } else {
    sock = amqp_tcp_socket_new(impl->conn);
  }
  if (!sock) return Status::Internal("AMQP: cannot create a socket");
  timeval tv = amqp_internal::Millis(connect_timeout_ms);
  int rc = amqp_socket_open_noblock(sock, url.host.c_str(), url.port, &tv);
  if (rc != AMQP_STATUS_OK) {
    return Status::Unavailable("AMQP: cannot connect to " + where + ": " + amqp_error_string2(rc));
  }
  // A broker that accepts the connection but never finishes the handshake must not hold the
  // consumer for ever.
  amqp_set_handshake_timeout(impl->conn, &tv);
  amqp_rpc_reply_t r = amqp_login(impl->conn, url.vhost.c_str(), 0, 131072, heartbeat_s,
                                  AMQP_SASL_METHOD_PLAIN, url.user.c_str(), url.password.c_str());
  if (r.reply_type != AMQP_RESPONSE_NORMAL) {
    return Status(amqp_internal::CodeOfReply(amqp_internal::ReplyCode(r)),
                  "AMQP: login to " + where +
                      " failed (check user, password and vhost): " + amqp_internal::ReplyText(r));
  }
  impl->logged_in = true;
  amqp_channel_open(impl->conn, amqp_internal::kChannel);
  Status s = amqp_internal::Check(amqp_get_rpc_reply(impl->conn), "channel.open on " + where);
  if (!s.ok()) return s;
  return std::unique_ptr<AmqpChannel>(new AmqpChannel(std::move(impl)));
}

Status AmqpChannel::DeclareExchange(const std::string& name, const std::string& type,
                                    bool durable) {
  amqp_exchange_declare(impl_->conn, amqp_internal::kChannel, amqp_internal::StringBytes(name),
                        amqp_internal::StringBytes(type), 0, durable ? 1 : 0, 0, 0,
                        amqp_empty_table);
  return amqp_internal::Check(amqp_get_rpc_reply(impl_->conn),
                              "exchange.declare '" + name + "' (type " + type + ")");
}

Status AmqpChannel::DeclareQueue(const std::string& name, const AmqpArgs& args, bool durable) {
  amqp_internal::AmqpTable t(args);
  amqp_queue_declare(impl_->conn, amqp_internal::kChannel, amqp_internal::StringBytes(name), 0,
                     durable ? 1 : 0, 0, 0, t.get());
  return amqp_internal::Check(amqp_get_rpc_reply(impl_->conn), "queue.declare '" + name + "'");
}

Status AmqpChannel::Bind(const std::string& queue, const std::string& exchange,
                         const std::string& key) {
  amqp_queue_bind(impl_->conn, amqp_internal::kChannel, amqp_internal::StringBytes(queue),
                  amqp_internal::StringBytes(exchange), amqp_internal::StringBytes(key),
                  amqp_empty_table);
  return amqp_internal::Check(amqp_get_rpc_reply(impl_->conn),
                              "queue.bind '" + queue + "' to '" + exchange + "'");
}

Status AmqpChannel::Qos(uint16_t prefetch) {
  amqp_basic_qos(impl_->conn, amqp_internal::kChannel, 0, prefetch, 0);
  return amqp_internal::Check(amqp_get_rpc_reply(impl_->conn), "basic.qos");
}

Status AmqpChannel::Consume(const std::string& queue) {
  amqp_basic_consume(impl_->conn, amqp_internal::kChannel, amqp_internal::StringBytes(queue),
                     amqp_empty_bytes, 0,
                     /*no_ack=*/0, 0, amqp_empty_table);
  return amqp_internal::Check(amqp_get_rpc_reply(impl_->conn), "basic.consume '" + queue + "'");
}

Result<std::optional<AmqpDelivery>> AmqpChannel::Next(int timeout_ms) {
  amqp_maybe_release_buffers(impl_->conn);
  amqp_envelope_t env{};
  timeval tv = amqp_internal::Millis(timeout_ms);
  amqp_rpc_reply_t r = amqp_consume_message(impl_->conn, &env, &tv, 0);
  if (r.reply_type == AMQP_RESPONSE_NORMAL) {
    AmqpDelivery d;
    d.tag = env.delivery_tag;
    d.redelivered = env.redelivered != 0;
    d.exchange = amqp_internal::BytesToString(env.exchange);
    d.routing_key = amqp_internal::BytesToString(env.routing_key);
    d.body = amqp_internal::BytesToString(env.message.body);
    const amqp_basic_properties_t& p = env.message.properties;
    if (p._flags & AMQP_BASIC_HEADERS_FLAG) {
      for (int i = 0; i < p.headers.num_entries; ++i) {
        const amqp_table_entry_t& e = p.headers.entries[i];
        if (e.value.kind == AMQP_FIELD_KIND_UTF8 || e.value.kind == AMQP_FIELD_KIND_BYTES) {
          d.headers[amqp_internal::BytesToString(e.key)] =
              amqp_internal::BytesToString(e.value.value.bytes);
        }
      }
    }
    amqp_destroy_envelope(&env);
    return std::optional<AmqpDelivery>(std::move(d));
  }
  if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && r.library_error == AMQP_STATUS_TIMEOUT) {
    return std::optional<AmqpDelivery>();
  }
  if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
      r.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
    // A frame other than a delivery: find out what the broker said.
    amqp_frame_t frame;
    timeval zero = amqp_internal::Millis(0);
    if (amqp_simple_wait_frame_noblock(impl_->conn, &frame, &zero) != AMQP_STATUS_OK) {
      return std::optional<AmqpDelivery>();
    }
    if (frame.frame_type == AMQP_FRAME_METHOD) {
      switch (frame.payload.method.id) {
        case AMQP_BASIC_CANCEL_METHOD:
          return Status::Unavailable("AMQP: the broker cancelled the consumer (queue deleted?)");
        case AMQP_CHANNEL_CLOSE_METHOD:
        case AMQP_CONNECTION_CLOSE_METHOD:
          return amqp_internal::BrokerClosed(frame);
        default:
          break;
      }
    }
    return std::optional<AmqpDelivery>();
  }
  return Status::Unavailable("AMQP: consume: " + amqp_internal::ReplyText(r));
}

Status AmqpChannel::Ack(uint64_t tag) {
  int rc = amqp_basic_ack(impl_->conn, amqp_internal::kChannel, tag, 0);
  if (rc != AMQP_STATUS_OK) {
    return Status::Unavailable(std::string("AMQP: basic.ack: ") + amqp_error_string2(rc));
  }
  return Status::Ok();
}

Status AmqpChannel::Reject(uint64_t tag, bool requeue) {
  int rc = amqp_basic_reject(impl_->conn, amqp_internal::kChannel, tag, requeue ? 1 : 0);
  if (rc != AMQP_STATUS_OK) {
    return Status::Unavailable(std::string("AMQP: basic.reject: ") + amqp_error_string2(rc));
  }
  return Status::Ok();
}

Result<uint32_t> AmqpChannel::QueueDepth(const std::string& queue) {
  amqp_queue_declare_ok_t* ok =
      amqp_queue_declare(impl_->conn, amqp_internal::kChannel, amqp_internal::StringBytes(queue),
                         /*passive=*/1, 0, 0, 0, amqp_empty_table);
  Status s = amqp_internal::Check(amqp_get_rpc_reply(impl_->conn),
                                  "queue.declare (passive) '" + queue + "'");
  if (!s.ok()) return s;
  return ok->message_count;
}

Result<bool> AmqpChannel::QueueExists(const std::string& queue) {
  // On a channel of its own: the broker closes the channel of a passive declare that finds
  // nothing (404), and channel 1 must stay open.
  constexpr amqp_channel_t kProbe = 2;
  amqp_channel_open(impl_->conn, kProbe);
  DS_RETURN_IF_ERROR(amqp_internal::Check(amqp_get_rpc_reply(impl_->conn), "channel.open (probe)"));
  amqp_queue_declare(impl_->conn, kProbe, amqp_internal::StringBytes(queue), /*passive=*/1, 0, 0, 0,
                     amqp_empty_table);
  amqp_rpc_reply_t r = amqp_get_rpc_reply(impl_->conn);
  if (r.reply_type == AMQP_RESPONSE_NORMAL) {
    amqp_channel_close(impl_->conn, kProbe, AMQP_REPLY_SUCCESS);
    return true;
  }
  if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && r.reply.id == AMQP_CHANNEL_CLOSE_METHOD &&
      amqp_internal::ReplyCode(r) == 404) {
    amqp_channel_close_ok_t close_ok{};
    amqp_send_method(impl_->conn, kProbe, AMQP_CHANNEL_CLOSE_OK_METHOD, &close_ok);
    return false;
  }
  return amqp_internal::Check(r, "queue.declare (passive) '" + queue + "'");
}

Status AmqpChannel::DeleteQueue(const std::string& queue) {
  amqp_queue_delete(impl_->conn, amqp_internal::kChannel, amqp_internal::StringBytes(queue), 0, 0);
  return amqp_internal::Check(amqp_get_rpc_reply(impl_->conn), "queue.delete '" + queue + "'");
}

Status AmqpChannel::DeleteExchange(const std::string& exchange) {
  amqp_exchange_delete(impl_->conn, amqp_internal::kChannel, amqp_internal::StringBytes(exchange),
                       0);
  return amqp_internal::Check(amqp_get_rpc_reply(impl_->conn),
                              "exchange.delete '" + exchange + "'");
}

}  // namespace ds
