// Internals of AmqpChannel shared by its source files; private to src/transport/ (nothing
// outside the AMQP transport's files includes this header). The transport is defined in several
// files, one idea each:
//  - amqp_errors.cc: the broker's or rabbitmq-c's replies as Status (declared here), and
//    IsPermanentAmqpError;
//  - amqp_url.cc: ParseAmqpUrl and RedactAmqpUrl;
//  - amqp_channel.cc: one connection and its channel: connect and log in, declare, bind, the
//    passive probes, consume (Next), ack and reject;
//  - amqp_publish.cc: publishing with publisher confirms;
//  - amqp_consumer.cc: AmqpConsumer (topology, the consume loop, dispositions, reconnects).
//
// Every AmqpChannel operation uses channel kChannel of Impl::conn; a failed RPC becomes a Status
// whose code says whether retrying can help (Check, CodeOfReply). AmqpTable borrows the strings
// it is built from: they must outlive every use of get().
//
// Helpers live in ds::amqp_internal (the library may be compiled as a unity build, in which
// anonymous-namespace names of different files must not meet).
#pragma once

#include <amqp.h>
#include <sys/time.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"
#include "transport/amqp.h"

namespace ds {
namespace amqp_internal {

inline constexpr amqp_channel_t kChannel = 1;

inline std::string BytesToString(amqp_bytes_t b) {
  return b.len == 0 ? std::string() : std::string(static_cast<const char*>(b.bytes), b.len);
}
inline amqp_bytes_t StringBytes(const std::string& s) {
  return amqp_bytes_t{s.size(), const_cast<char*>(s.data())};
}
inline timeval Millis(int ms) {
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

// ---- Replies as Status (amqp_errors.cc) ---------------------------------------------------

// The broker's or the library's reason for a failed RPC, in words.
std::string ReplyText(const amqp_rpc_reply_t& r);
// The code of a broker's reply code (403 -> kPermissionDenied, ...; see amqp_errors.cc).
Code CodeOfReply(uint16_t reply_code);
// The reply code of a channel.close or connection.close reply; 0 for anything else.
uint16_t ReplyCode(const amqp_rpc_reply_t& r);
// The error for a channel.close or connection.close frame the broker sent.
Status BrokerClosed(const amqp_frame_t& frame);
// Ok for a normal reply; otherwise "AMQP <what>: <ReplyText>" with the code of CodeOfReply.
Status Check(const amqp_rpc_reply_t& r, const std::string& what);

}  // namespace amqp_internal

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
        amqp_channel_close(conn, amqp_internal::kChannel, AMQP_REPLY_SUCCESS);
        amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
      }
      amqp_destroy_connection(conn);
    }
  }
};

}  // namespace ds
