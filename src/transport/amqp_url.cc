// AMQP URLs: ParseAmqpUrl (rabbitmq-c's parser) and RedactAmqpUrl (no password in logs).
#include <amqp.h>

#include <string>
#include <vector>

#include "common/status.h"
#include "transport/amqp.h"

namespace ds {

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
  // One assignment: GCC 12 at -O3 reports a false -Wrestrict on assigning "/" over the
  // string just assigned (GCC bug 105329).
  u.vhost = info.vhost != nullptr && *info.vhost != '\0' ? info.vhost : "/";
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

}  // namespace ds
