// One request on an HttpListener (see listener_internal.h): its head and the admission (client
// certificate, Admit, 411/413), the body read or drained, the handoff to a worker lane, the reply.
#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "transport/http_listener.h"
#include "transport/listener_internal.h"
#include "transport/tls_credentials.h"

namespace ds {
namespace {

// The largest body of an unauthenticated request read (and dropped) before its 401.
constexpr uint64_t kDrainUnauthenticatedBytes = 64 * 1024;

}  // namespace

MHD_Result HttpListener::Impl::Queue(MHD_Connection* connection, const HttpReply& r) {
  MHD_Response* resp = MHD_create_response_from_buffer(
      r.body.size(), const_cast<char*>(r.body.data()), MHD_RESPMEM_MUST_COPY);
  if (resp == nullptr) return MHD_NO;
  MHD_add_response_header(resp, "Content-Type", r.content_type.c_str());
  for (const auto& [k, v] : r.headers) MHD_add_response_header(resp, k.c_str(), v.c_str());
  if (r.close) MHD_add_response_header(resp, "Connection", "close");
  MHD_Result ok = MHD_queue_response(connection, static_cast<unsigned>(r.status), resp);
  MHD_destroy_response(resp);
  return ok;
}

HttpReply HttpListener::Impl::Error(int status, const std::string& message) {
  HttpReply r;
  r.status = status;
  r.body = "{\"error\":\"" + message + "\"}";
  r.close = true;
  return r;
}

MHD_Result HttpListener::Impl::OnRequest(MHD_Connection* connection, const char* url,
                                         const char* method, const char* upload_data,
                                         size_t* upload_data_size, void** con_cls) {
  auto* req = static_cast<Req*>(*con_cls);
  if (req == nullptr) return OnHead(connection, url, method, con_cls);
  if (*upload_data_size > 0 && req->state == Req::kDraining) {
    *upload_data_size = 0;
    return MHD_YES;
  }
  if (req->state == Req::kDraining) {
    req->state = Req::kDone;
    return Queue(connection, req->reply);
  }
  if (*upload_data_size > 0) {
    if (!req->too_large && req->body.size() + *upload_data_size <= opts.max_body) {
      req->body.append(upload_data, *upload_data_size);
    } else {
      req->too_large = true;
      req->body.clear();
    }
    *upload_data_size = 0;
    return MHD_YES;
  }
  if (req->state == Req::kReading) {
    if (req->too_large) {
      req->state = Req::kDone;
      return Queue(connection, Error(413, "request body over the size limit"));
    }
    req->state = Req::kWorking;
    {
      std::lock_guard<std::mutex> l(mu);
      if (req->conn) {
        req->conn->reading_body = false;
        req->conn->working = true;
      }
    }
    // Suspended before its job is queued (the job resumes it), and never after Stop began:
    // a connection left suspended when the daemon stops would never be released.
    std::lock_guard<std::mutex> l(dispatch_mu);
    if (closing) {
      req->state = Req::kDone;
      HttpReply r = Error(503, "the service is stopping; retry");
      r.headers.push_back({"Retry-After", "5"});
      return Queue(connection, r);
    }
    MHD_suspend_connection(connection);
    listener_internal::Lanes& lane = req->lane == Lane::kOperators ? operators : senders;
    lane.Enqueue([this, req, connection] {
      req->reply = handler.Handle(req->head, std::move(req->body));
      req->state = Req::kDone;
      MHD_resume_connection(connection);
    });
    return MHD_YES;
  }
  if (req->state == Req::kDone) return Queue(connection, req->reply);
  return MHD_YES;
}

MHD_Result HttpListener::Impl::OnHead(MHD_Connection* connection, const char* url,
                                      const char* method, void** con_cls) {
  auto* req = new Req;
  *con_cls = req;
  const MHD_ConnectionInfo* ctx_info =
      MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  req->conn = ctx_info ? static_cast<Conn*>(ctx_info->socket_context) : nullptr;
  RequestHead& h = req->head;
  h.method = method ? method : "";
  h.path = url ? url : "";
  if (req->conn) h.remote_addr = req->conn->addr;
  if (const char* v = MHD_lookup_connection_value(connection, MHD_HEADER_KIND, "Authorization"))
    h.authorization = v;
  if (const char* v = MHD_lookup_connection_value(connection, MHD_GET_ARGUMENT_KIND, "token"))
    h.token_param = v;
  const char* te = MHD_lookup_connection_value(connection, MHD_HEADER_KIND, "Transfer-Encoding");
  h.chunked = te != nullptr && listener_internal::EqualsIgnoringCase(te, "chunked");
  if (const char* cl = MHD_lookup_connection_value(connection, MHD_HEADER_KIND, "Content-Length")) {
    char* end = nullptr;
    errno = 0;
    unsigned long long n = std::strtoull(cl, &end, 10);
    if (errno == 0 && end != cl && *end == '\0') h.content_length = n;
  }

  Admission a;
  if (std::optional<HttpReply> refused = CheckClientCertificate(connection, req->conn, h)) {
    a.reply = std::move(refused);
  } else {
    a = handler.Admit(h);
    if (a.reply && a.reply->status == 401) CountUnauthorisedAndLog(h);
  }
  const bool wants_body = h.method == "POST" || h.method == "PUT" || h.method == "PATCH";
  const bool has_body = h.chunked || (h.content_length && *h.content_length > 0);
  if (!a.reply && wants_body && !h.content_length && !h.chunked) {
    a.reply = Error(411, "Content-Length required");
  } else if (!a.reply && h.content_length && *h.content_length > opts.max_body) {
    a.reply = Error(
        413, "request body over the size limit of " + std::to_string(opts.max_body) + " bytes");
  }
  // A refused body small enough is read and dropped before the answer (the client, still
  // sending, would otherwise see a reset instead of it); a larger one is not read at all.
  const uint64_t drain_limit =
      a.authenticated ? std::max<uint64_t>(opts.max_body, 1) * 2 : kDrainUnauthenticatedBytes;
  const bool drain = a.reply && has_body && !h.chunked && *h.content_length <= drain_limit;
  {
    std::lock_guard<std::mutex> l(mu);
    if (req->conn) {
      // The token shown makes the connection trusted; a wrong one (401) makes it untrusted
      // again; a request that needs none (/healthz, /readyz) changes nothing.
      if (a.authenticated) {
        SetAuthenticatedLocked(req->conn, true);
      } else if (a.reply && a.reply->status == 401) {
        SetAuthenticatedLocked(req->conn, false);
      }
      if (!a.reply || drain) {
        req->conn->reading_body = true;
        req->conn->since_ms = listener_internal::NowMs();
      }
    }
  }
  if (a.reply) {
    req->reply = *a.reply;
    if (has_body || req->reply.status == 401) req->reply.close = true;
    if (drain) {
      req->state = Req::kDraining;
      return MHD_YES;
    }
    req->state = Req::kDone;
    return Queue(connection, req->reply);
  }
  req->lane = a.lane;
  return MHD_YES;
}

// With a client CA: a 403 for a connection without an accepted client certificate (checked
// once per connection); nullopt otherwise.
std::optional<HttpReply> HttpListener::Impl::CheckClientCertificate(MHD_Connection* connection,
                                                                    Conn* conn,
                                                                    const RequestHead& h) {
  if (!opts.tls || !opts.tls->requires_client_certificate()) return std::nullopt;
  if (conn != nullptr && conn->client_verified) return std::nullopt;
  const MHD_ConnectionInfo* info =
      MHD_get_connection_info(connection, MHD_CONNECTION_INFO_GNUTLS_SESSION);
  Status st = info && info->tls_session
                  ? opts.tls->VerifyClient(static_cast<gnutls_session_t>(info->tls_session))
                  : Status::Denied("no TLS session");
  if (st.ok()) {
    if (conn != nullptr) conn->client_verified = true;
    return std::nullopt;
  }
  ++no_client_cert;
  int64_t now = listener_internal::NowMs();
  int64_t last = last_403_log_ms.load();
  if (now - last >= 1000 && last_403_log_ms.compare_exchange_strong(last, now)) {
    spdlog::warn("{}: refused {} {} from {}: {}", opts.setting, h.method, h.path, h.remote_addr,
                 st.message());
  }
  return Error(403, "a client certificate accepted by " + opts.tls->files().flag_prefix +
                        "-client-ca is required");
}

void HttpListener::Impl::CountUnauthorisedAndLog(const RequestHead& h) {
  ++unauthorised;
  // One line per second at most: a flood of bad tokens must not flood the log.
  int64_t now = listener_internal::NowMs();
  int64_t last = last_401_log_ms.load();
  if (now - last >= 1000 && last_401_log_ms.compare_exchange_strong(last, now)) {
    int64_t more = unlogged_401.exchange(0);
    spdlog::warn("{}: unauthorised {} {} from {} (missing or wrong token){}", opts.setting,
                 h.method, h.path, h.remote_addr,
                 more > 0 ? fmt::format("; {} more since the last such line", more) : "");
  } else {
    ++unlogged_401;
  }
}

void HttpListener::Impl::OnCompleted(void** con_cls) {
  auto* req = static_cast<Req*>(*con_cls);
  if (req == nullptr) return;
  *con_cls = nullptr;
  {
    std::lock_guard<std::mutex> l(mu);
    if (req->conn) {
      req->conn->reading_body = false;
      req->conn->working = false;
      // A whole request arrived in time: the next one (on a kept-alive connection) gets a
      // deadline of its own.
      req->conn->since_ms = listener_internal::NowMs();
    }
  }
  if (req->reply.after) req->reply.after();
  delete req;
}

}  // namespace ds
