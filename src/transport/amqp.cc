#include "transport/amqp.h"

#include <amqp.h>
#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <spdlog/spdlog.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

namespace ds {
namespace {

constexpr amqp_channel_t kChannel = 1;

std::string BytesToString(amqp_bytes_t b) {
  return b.len == 0 ? std::string() : std::string(static_cast<const char*>(b.bytes), b.len);
}
amqp_bytes_t StringBytes(const std::string& s) {
  return amqp_bytes_t{s.size(), const_cast<char*>(s.data())};
}
timeval Millis(int ms) {
  timeval tv{};
  tv.tv_sec = ms / 1000;
  tv.tv_usec = (ms % 1000) * 1000;
  return tv;
}

// An AMQP string table over caller-owned strings.
class AmqpTable {
 public:
  explicit AmqpTable(const std::map<std::string, std::string>& kv) {
    entries_.reserve(kv.size());
    for (const auto& [k, v] : kv) {
      amqp_table_entry_t e{};
      e.key = StringBytes(k);
      e.value.kind = AMQP_FIELD_KIND_UTF8;
      e.value.value.bytes = StringBytes(v);
      entries_.push_back(e);
    }
  }
  amqp_table_t get() {
    return amqp_table_t{static_cast<int>(entries_.size()),
                        entries_.empty() ? nullptr : entries_.data()};
  }

 private:
  std::vector<amqp_table_entry_t> entries_;
};

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

}  // namespace

bool IsPermanentAmqpError(const Status& s) {
  return s.code() == Code::kPermissionDenied || s.code() == Code::kNotFound ||
         s.code() == Code::kConflict;
}

Result<AmqpUrl> ParseAmqpUrl(const std::string& url) {
  if (url.rfind("amqp://", 0) != 0 && url.rfind("amqps://", 0) != 0) {
    return Status::Invalid("an AMQP URL must start with amqp:// or amqps:// (got '" +
                           url.substr(0, url.find(':')) + ":...')");
  }
  std::vector<char> buf(url.begin(), url.end());
  buf.push_back('\0');
  amqp_connection_info info{};
  if (amqp_parse_url(buf.data(), &info) != AMQP_STATUS_OK || info.host == nullptr ||
      *info.host == '\0') {
    return Status::Invalid(
        "cannot parse the AMQP URL: expected amqp://USER:PASSWORD@HOST:PORT/VHOST");
  }
  AmqpUrl u;
  u.host = info.host;
  u.port = info.port;
  u.vhost = info.vhost ? info.vhost : "/";
  if (u.vhost.empty()) u.vhost = "/";
  u.user = info.user ? info.user : "guest";
  u.password = info.password ? info.password : "guest";
  u.tls = info.ssl != 0;
  return u;
}

std::string RedactAmqpUrl(const AmqpUrl& u) {
  std::string vhost = u.vhost == "/" ? "%2f" : u.vhost;
  return std::string(u.tls ? "amqps://" : "amqp://") + u.user + ":***@" + u.host + ":" +
         std::to_string(u.port) + "/" + vhost;
}

struct AmqpChannel::Impl {
  amqp_connection_state_t conn = nullptr;
  bool confirms = false;
  uint64_t published = 0;  // delivery tags of confirm mode: 1, 2, ...

  bool logged_in = false;

  ~Impl() {
    if (conn) {
      // A broker that closed the connection (a refused login, a vhost it does not have, an
      // error mid-session) never answers these: wait for it a little, not for ever.
      timeval tv{2, 0};
      amqp_set_rpc_timeout(conn, &tv);
      if (logged_in) {
        amqp_channel_close(conn, kChannel, AMQP_REPLY_SUCCESS);
        amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
      }
      amqp_destroy_connection(conn);
    }
  }
};

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
  timeval tv = Millis(connect_timeout_ms);
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
    return Status(
        CodeOfReply(ReplyCode(r)),
        "AMQP: login to " + where + " failed (check user, password and vhost): " + ReplyText(r));
  }
  impl->logged_in = true;
  amqp_channel_open(impl->conn, kChannel);
  Status s = Check(amqp_get_rpc_reply(impl->conn), "channel.open on " + where);
  if (!s.ok()) return s;
  return std::unique_ptr<AmqpChannel>(new AmqpChannel(std::move(impl)));
}

Status AmqpChannel::DeclareExchange(const std::string& name, const std::string& type,
                                    bool durable) {
  amqp_exchange_declare(impl_->conn, kChannel, StringBytes(name), StringBytes(type), 0,
                        durable ? 1 : 0, 0, 0, amqp_empty_table);
  return Check(amqp_get_rpc_reply(impl_->conn),
               "exchange.declare '" + name + "' (type " + type + ")");
}

Status AmqpChannel::DeclareQueue(const std::string& name, const AmqpArgs& args, bool durable) {
  AmqpTable t(args);
  amqp_queue_declare(impl_->conn, kChannel, StringBytes(name), 0, durable ? 1 : 0, 0, 0, t.get());
  return Check(amqp_get_rpc_reply(impl_->conn), "queue.declare '" + name + "'");
}

Status AmqpChannel::Bind(const std::string& queue, const std::string& exchange,
                         const std::string& key) {
  amqp_queue_bind(impl_->conn, kChannel, StringBytes(queue), StringBytes(exchange),
                  StringBytes(key), amqp_empty_table);
  return Check(amqp_get_rpc_reply(impl_->conn), "queue.bind '" + queue + "' to '" + exchange + "'");
}

Status AmqpChannel::Qos(uint16_t prefetch) {
  amqp_basic_qos(impl_->conn, kChannel, 0, prefetch, 0);
  return Check(amqp_get_rpc_reply(impl_->conn), "basic.qos");
}

Status AmqpChannel::Consume(const std::string& queue) {
  amqp_basic_consume(impl_->conn, kChannel, StringBytes(queue), amqp_empty_bytes, 0,
                     /*no_ack=*/0, 0, amqp_empty_table);
  return Check(amqp_get_rpc_reply(impl_->conn), "basic.consume '" + queue + "'");
}

Result<std::optional<AmqpDelivery>> AmqpChannel::Next(int timeout_ms) {
  amqp_maybe_release_buffers(impl_->conn);
  amqp_envelope_t env{};
  timeval tv = Millis(timeout_ms);
  amqp_rpc_reply_t r = amqp_consume_message(impl_->conn, &env, &tv, 0);
  if (r.reply_type == AMQP_RESPONSE_NORMAL) {
    AmqpDelivery d;
    d.tag = env.delivery_tag;
    d.redelivered = env.redelivered != 0;
    d.exchange = BytesToString(env.exchange);
    d.routing_key = BytesToString(env.routing_key);
    d.body = BytesToString(env.message.body);
    const amqp_basic_properties_t& p = env.message.properties;
    if (p._flags & AMQP_BASIC_HEADERS_FLAG) {
      for (int i = 0; i < p.headers.num_entries; ++i) {
        const amqp_table_entry_t& e = p.headers.entries[i];
        if (e.value.kind == AMQP_FIELD_KIND_UTF8 || e.value.kind == AMQP_FIELD_KIND_BYTES) {
          d.headers[BytesToString(e.key)] = BytesToString(e.value.value.bytes);
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
    timeval zero = Millis(0);
    if (amqp_simple_wait_frame_noblock(impl_->conn, &frame, &zero) != AMQP_STATUS_OK) {
      return std::optional<AmqpDelivery>();
    }
    if (frame.frame_type == AMQP_FRAME_METHOD) {
      switch (frame.payload.method.id) {
        case AMQP_BASIC_CANCEL_METHOD:
          return Status::Unavailable("AMQP: the broker cancelled the consumer (queue deleted?)");
        case AMQP_CHANNEL_CLOSE_METHOD:
        case AMQP_CONNECTION_CLOSE_METHOD:
          return BrokerClosed(frame);
        default:
          break;
      }
    }
    return std::optional<AmqpDelivery>();
  }
  return Status::Unavailable("AMQP: consume: " + ReplyText(r));
}

Status AmqpChannel::Ack(uint64_t tag) {
  int rc = amqp_basic_ack(impl_->conn, kChannel, tag, 0);
  if (rc != AMQP_STATUS_OK) {
    return Status::Unavailable(std::string("AMQP: basic.ack: ") + amqp_error_string2(rc));
  }
  return Status::Ok();
}

Status AmqpChannel::Reject(uint64_t tag, bool requeue) {
  int rc = amqp_basic_reject(impl_->conn, kChannel, tag, requeue ? 1 : 0);
  if (rc != AMQP_STATUS_OK) {
    return Status::Unavailable(std::string("AMQP: basic.reject: ") + amqp_error_string2(rc));
  }
  return Status::Ok();
}

Status AmqpChannel::EnableConfirms() {
  if (impl_->confirms) return Status::Ok();
  amqp_confirm_select(impl_->conn, kChannel);
  Status s = Check(amqp_get_rpc_reply(impl_->conn), "confirm.select");
  if (s.ok()) impl_->confirms = true;
  return s;
}

Status AmqpChannel::PublishConfirmed(const std::string& exchange, const std::string& routing_key,
                                     const std::string& body,
                                     const std::map<std::string, std::string>& headers,
                                     bool mandatory, int timeout_ms) {
  Status s = EnableConfirms();
  if (!s.ok()) return s;
  AmqpTable t(headers);
  amqp_basic_properties_t props{};
  props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG;
  props.delivery_mode = 2;  // persistent
  props.content_type = amqp_cstring_bytes("application/json");
  if (!headers.empty()) {
    props._flags |= AMQP_BASIC_HEADERS_FLAG;
    props.headers = t.get();
  }
  int rc =
      amqp_basic_publish(impl_->conn, kChannel, StringBytes(exchange), StringBytes(routing_key),
                         mandatory ? 1 : 0, 0, &props, StringBytes(body));
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
    timeval tv = Millis(static_cast<int>(left));
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
        return_text = std::to_string(m->reply_code) + " " + BytesToString(m->reply_text);
        amqp_message_t msg;
        amqp_rpc_reply_t r = amqp_read_message(impl_->conn, frame.channel, &msg, 0);
        if (r.reply_type != AMQP_RESPONSE_NORMAL) return Check(r, "reading a returned message");
        amqp_destroy_message(&msg);
        continue;
      }
      case AMQP_CHANNEL_CLOSE_METHOD:
      case AMQP_CONNECTION_CLOSE_METHOD:
        return BrokerClosed(frame);
      default:
        continue;
    }
  }
}

Result<uint32_t> AmqpChannel::QueueDepth(const std::string& queue) {
  amqp_queue_declare_ok_t* ok = amqp_queue_declare(impl_->conn, kChannel, StringBytes(queue),
                                                   /*passive=*/1, 0, 0, 0, amqp_empty_table);
  Status s = Check(amqp_get_rpc_reply(impl_->conn), "queue.declare (passive) '" + queue + "'");
  if (!s.ok()) return s;
  return ok->message_count;
}

Result<bool> AmqpChannel::QueueExists(const std::string& queue) {
  // On a channel of its own: the broker closes the channel of a passive declare that finds
  // nothing (404), and channel 1 must stay open.
  constexpr amqp_channel_t kProbe = 2;
  amqp_channel_open(impl_->conn, kProbe);
  DS_RETURN_IF_ERROR(Check(amqp_get_rpc_reply(impl_->conn), "channel.open (probe)"));
  amqp_queue_declare(impl_->conn, kProbe, StringBytes(queue), /*passive=*/1, 0, 0, 0,
                     amqp_empty_table);
  amqp_rpc_reply_t r = amqp_get_rpc_reply(impl_->conn);
  if (r.reply_type == AMQP_RESPONSE_NORMAL) {
    amqp_channel_close(impl_->conn, kProbe, AMQP_REPLY_SUCCESS);
    return true;
  }
  if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && r.reply.id == AMQP_CHANNEL_CLOSE_METHOD &&
      ReplyCode(r) == 404) {
    amqp_channel_close_ok_t close_ok{};
    amqp_send_method(impl_->conn, kProbe, AMQP_CHANNEL_CLOSE_OK_METHOD, &close_ok);
    return false;
  }
  return Check(r, "queue.declare (passive) '" + queue + "'");
}

Status AmqpChannel::DeleteQueue(const std::string& queue) {
  amqp_queue_delete(impl_->conn, kChannel, StringBytes(queue), 0, 0);
  return Check(amqp_get_rpc_reply(impl_->conn), "queue.delete '" + queue + "'");
}

Status AmqpChannel::DeleteExchange(const std::string& exchange) {
  amqp_exchange_delete(impl_->conn, kChannel, StringBytes(exchange), 0);
  return Check(amqp_get_rpc_reply(impl_->conn), "exchange.delete '" + exchange + "'");
}

// ---------------------------------------------------------------- consumer

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
