// delete-sync setup-notifications: points a bucket's notifications at delete-sync.
//
//   --store rgw    Ceph RGW: CreateTopic through its SNS-compatible API (push-endpoint http(s)://
//                  for the webhook, amqp(s):// for RabbitMQ with --amqp-exchange), then the
//                  bucket's notification configuration for ObjectCreated/ObjectRemoved.
//   --store aws    AWS S3: a QueueConfiguration to --queue-arn (SQS) for ObjectCreated,
//                  ObjectRemoved and LifecycleExpiration.
//   --store minio  MinIO: the `mc event add` command for --queue-arn (a target configured on the
//                  server, arn:minio:sqs::ID:webhook|amqp), and the same QueueConfiguration put
//                  through the S3 API.
//
// Converges: on RGW the topic's attributes (endpoint, token, persistence, AMQP settings) are
// compared with the wanted ones and the topic is written only when one differs; the
// configuration entry with our --id is replaced, other entries are kept; and since RGW 16.2
// keeps its own copy of the topic inside the bucket's notification, a changed topic makes the
// notification be written again even when its entry is unchanged. Nothing is written when
// everything is already as wanted ("unchanged"). --dry-run prints what would change.
#include <iostream>
#include <regex>

#include "command.h"
#include "runtime.h"
#include "s3/client.h"
#include "s3/xml.h"
#include "transport/amqp.h"
#include "transport/ops_http.h"

namespace ds::app {
namespace {

// A push endpoint for printing: the token query parameter and any password hidden.
std::string RedactEndpoint(const std::string& url) {
  std::string out = std::regex_replace(url, std::regex("([?&]token=)[^&]*"), "$1***");
  return std::regex_replace(out, std::regex("^([a-z]+://[^:/@]+):[^@/]*@"), "$1:***@");
}

// What differs between the topic as it is and the attributes wanted, one line each, secrets
// hidden ("push-endpoint http://h/?token=*** -> http://h/?token=*** (the token differs)").
// Empty when nothing does.
std::vector<std::string> TopicDifferences(
    const TopicInfo& now, const std::vector<std::pair<std::string, std::string>>& want) {
  std::vector<std::string> out;
  for (const auto& [key, value] : want) {
    std::string have;
    if (key == "push-endpoint") {
      have = now.push_endpoint;
    } else if (key == "persistent") {
      have = now.persistent ? "true" : "false";
    } else {
      auto it = now.args.find(key);
      have = it == now.args.end() ? "" : it->second;
    }
    if (have == value) continue;
    if (key == "push-endpoint") {
      std::string a = RedactEndpoint(have), b = RedactEndpoint(value);
      out.push_back("push-endpoint " + a + " -> " + b +
                    (a == b ? " (the token or password differs)" : ""));
    } else {
      out.push_back(key + " " + (have.empty() ? "(unset)" : have) + " -> " + value);
    }
  }
  return out;
}

class SetupNotificationsCommand : public Command {
 public:
  CLI::App* Register(CLI::App& parent) override {
    cmd_ = parent.add_subcommand(
        "setup-notifications",
        "Configure the bucket to send its notifications to delete-sync (Ceph RGW topic, AWS "
        "SQS queue, MinIO target); idempotent");
    settings_ = std::make_unique<Settings>(cmd_);
    settings_->Add("store", &store_, "rgw, aws or minio", "rgw");
    settings_->Add("bucket", &bucket_, "the bucket (required)");
    settings_->Add("prefix", &prefix_, "only keys under this prefix");
    settings_->Add("id", &id_, "Id of the notification configuration entry", "delete-sync");
    settings_->Add("topic", &topic_, "rgw: topic name [default: delete-sync-<bucket>]");
    settings_->Add("push-endpoint", &push_endpoint_,
                   "rgw: where RGW pushes: http(s)://HOST:PORT/?token=TOKEN (serve's webhook) "
                   "or amqp://HOST:PORT/VHOST (RabbitMQ; with --amqp-exchange)");
    settings_->Add("amqp-exchange", &amqp_exchange_,
                   "rgw with an amqp push endpoint: the exchange RGW publishes to (it must "
                   "exist; the topic name is the routing key)");
    settings_->Add("amqp-ack-level", &amqp_ack_level_,
                   "rgw with amqp: none, broker (the PUT waits for the broker's confirm) or "
                   "routable",
                   "broker");
    settings_->Add("persistent", &persistent_,
                   "rgw: persistent topic (RGW queues and retries deliveries; the PUT does not "
                   "wait): true or false",
                   "false");
    settings_->Add("queue-arn", &queue_arn_,
                   "aws: the SQS queue ARN; minio: the target ARN (arn:minio:sqs::ID:TYPE)");
    settings_->Add("minio-alias", &minio_alias_, "minio: the mc alias in the printed command",
                   "myminio");
    settings_->AddFlag("dry-run", &dry_run_, "print what would be done, change nothing");
    settings_->Add("log-level", &log_level_, "trace, debug, info, warn, error, off", "warn");
    return cmd_;
  }

  Status Check() override {
    DS_RETURN_IF_ERROR(settings_->Resolve());
    DS_RETURN_IF_ERROR(SetupLogging(log_level_));
    if (bucket_.empty()) return Status::Invalid("--bucket is required");
    s3::NotificationTarget& target = target_;
    std::vector<std::pair<std::string, std::string>>& topic_attrs = topic_attrs_;
    target.id = id_;
    target.prefix = prefix_;
    if (store_ == "rgw") {
      if (push_endpoint_.empty()) {
        return Status::Invalid("--store rgw needs --push-endpoint (http(s):// or amqp://)");
      }
      if (topic_.empty()) topic_ = "delete-sync-" + bucket_;
      Result<bool> persistent = ParseBool("persistent", persistent_);
      if (!persistent.ok()) return persistent.status();
      topic_attrs = {{"push-endpoint", push_endpoint_},
                     {"persistent", *persistent ? "true" : "false"}};
      const bool amqp =
          push_endpoint_.rfind("amqp://", 0) == 0 || push_endpoint_.rfind("amqps://", 0) == 0;
      if (amqp) {
        Result<AmqpUrl> u = ParseAmqpUrl(push_endpoint_);
        if (!u.ok()) return Status::Invalid("--push-endpoint: " + u.status().message());
        if (amqp_exchange_.empty()) {
          return Status::Invalid("an amqp push endpoint needs --amqp-exchange");
        }
        if (amqp_ack_level_ != "none" && amqp_ack_level_ != "broker" &&
            amqp_ack_level_ != "routable") {
          return Status::Invalid("--amqp-ack-level: none, broker or routable");
        }
        topic_attrs.emplace_back("amqp-exchange", amqp_exchange_);
        topic_attrs.emplace_back("amqp-ack-level", amqp_ack_level_);
      } else if (push_endpoint_.rfind("http://", 0) != 0 &&
                 push_endpoint_.rfind("https://", 0) != 0) {
        return Status::Invalid("--push-endpoint must be http(s):// or amqp(s)://");
      } else if (push_endpoint_.find("token=") == std::string::npos) {
        std::cerr << "delete-sync setup-notifications: warning: the push endpoint carries no "
                     "?token=; serve's webhook will answer 401\n";
      }
      if (push_endpoint_.rfind("http://", 0) == 0) {
        // The host of http://HOST[:PORT]/...: the token crosses the network in clear unless
        // RGW and serve share the host.
        std::string host = push_endpoint_.substr(7);
        host = host.substr(0, host.find('/'));
        if (!host.empty() && host.front() == '[') {
          host = host.substr(0, host.find(']') + 1);
        } else {
          host = host.substr(0, host.find(':'));
        }
        if (!IsLoopbackHost(host)) {
          std::cerr << "delete-sync setup-notifications: warning: http:// to " << host
                    << " sends the token and the notifications in clear; serve the webhook "
                       "with --webhook-tls-cert/--webhook-tls-key and push to https:// (RGW "
                       "verifies the certificate: verify-ssl is on by default)\n";
        }
      }
      target.kind = "Topic";
      target.events = {"s3:ObjectCreated:*", "s3:ObjectRemoved:*"};
    } else if (store_ == "aws" || store_ == "minio") {
      if (queue_arn_.empty()) {
        return Status::Invalid("--store " + store_ + " needs --queue-arn");
      }
      target.kind = "Queue";
      target.arn = queue_arn_;
      target.events = {"s3:ObjectCreated:*", "s3:ObjectRemoved:*"};
      if (store_ == "aws") target.events.push_back("s3:LifecycleExpiration:*");
    } else {
      return Status::Invalid("--store: rgw, aws or minio (got '" + store_ + "')");
    }

    Result<S3Config> cfg = S3Config::FromEnvironment();
    if (!cfg.ok()) return cfg.status();
    s3_config_ = std::move(cfg).value();
    return Status::Ok();
  }

  Result<RunEnd> Run() override {
    s3::NotificationTarget& target = target_;
    const std::vector<std::pair<std::string, std::string>>& topic_attrs = topic_attrs_;
    const char* would = dry_run_ ? "would " : "";
    if (store_ == "minio") {
      std::cout << "mc equivalent: mc event add " << minio_alias_ << "/" << bucket_ << " "
                << queue_arn_ << " --event put,delete"
                << (prefix_.empty() ? "" : " --prefix " + prefix_) << "\n";
    }

    S3Client s3(s3_config_);

    // RGW 16.2 keeps its own copy of the topic inside the bucket's notification: when the topic
    // changes, the notification must be written again for the change to take effect.
    bool topic_changed = false;
    if (!topic_attrs.empty()) {
      Result<std::vector<TopicInfo>> topics = s3.ListTopics();
      if (!topics.ok()) return topics.status();
      const TopicInfo* now = nullptr;
      for (const TopicInfo& t : *topics) {
        if (t.name == topic_) now = &t;
      }
      std::vector<std::string> diffs;
      if (now != nullptr) diffs = TopicDifferences(*now, topic_attrs);
      if (now != nullptr && diffs.empty()) {
        std::cout << "topic " << topic_ << ": " << now->arn << " (unchanged)\n";
        target.arn = now->arn;
      } else {
        topic_changed = true;
        if (now == nullptr) {
          std::cout << would << "create topic " << topic_ << " (push-endpoint "
                    << RedactEndpoint(push_endpoint_);
          for (size_t i = 1; i < topic_attrs.size(); ++i) {
            std::cout << ", " << topic_attrs[i].first << "=" << topic_attrs[i].second;
          }
          std::cout << ")\n";
        } else {
          std::cout << would << "update topic " << topic_ << ":";
          for (const std::string& d : diffs) std::cout << " " << d << ";";
          std::cout << "\n";
        }
        if (dry_run_) {
          target.arn = now != nullptr ? now->arn : "<TopicArn of " + topic_ + ">";
        } else {
          Result<std::string> arn = s3.CreateTopic(topic_, topic_attrs);
          if (!arn.ok()) return arn.status();
          target.arn = *arn;
          std::cout << "topic " << topic_ << ": " << target.arn << "\n";
        }
      }
    }

    Result<std::string> existing = s3.GetBucketNotification(bucket_);
    if (!existing.ok()) return existing.status();
    bool changed = true;
    Result<std::string> merged = s3::MergeNotificationConfiguration(*existing, target, &changed);
    if (!merged.ok()) return merged.status();
    std::string events;
    for (const std::string& e : target.events) events += (events.empty() ? "" : ",") + e;
    if (!changed && !topic_changed) {
      std::cout << "bucket " << bucket_ << ": notification " << id_ << " already sends " << events
                << " to " << target.arn << " (unchanged)\n";
      return RunEnd::kOk;
    }
    if (!changed) {
      std::cout << would << "write notification " << id_ << " on bucket " << bucket_
                << " again: RGW keeps a copy of the topic in it, and the topic changed\n";
      if (dry_run_) return RunEnd::kOk;
      DS_RETURN_IF_ERROR(s3.PutBucketNotification(bucket_, *merged));
      return RunEnd::kOk;
    }
    std::cout << would << "put notification " << id_ << " on bucket " << bucket_ << ": " << events
              << (prefix_.empty() ? "" : " under '" + prefix_ + "'") << " -> " << target.arn
              << "\n";
    if (dry_run_) return RunEnd::kOk;
    DS_RETURN_IF_ERROR(s3.PutBucketNotification(bucket_, *merged));
    return RunEnd::kOk;
  }

 private:
  CLI::App* cmd_ = nullptr;
  std::unique_ptr<Settings> settings_;
  std::string store_, bucket_, prefix_, id_, topic_, push_endpoint_, amqp_exchange_,
      amqp_ack_level_, persistent_, queue_arn_, minio_alias_, log_level_;
  bool dry_run_ = false;
  // Checked by Check().
  s3::NotificationTarget target_;
  std::vector<std::pair<std::string, std::string>> topic_attrs_;
  S3Config s3_config_;
};

}  // namespace

std::unique_ptr<Command> MakeSetupNotificationsCommand() {
  return std::make_unique<SetupNotificationsCommand>();
}

}  // namespace ds::app
