// A Lambda Runtime API (2018-06-01) emulator for integration tests: the real binary in Lambda
// mode long-polls it for invocations and posts their answers.
#pragma once

#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace ds::itest {

// A Lambda Runtime API (2018-06-01) emulator: hands out queued events on GET .../next and
// records each invocation's answer.
class RuntimeApiServer {
 public:
  struct Answer {
    bool error = false;
    std::string body;
    std::string error_type_header;  // Lambda-Runtime-Function-Error-Type
  };

  RuntimeApiServer() {
    const std::string base = "/2018-06-01/runtime";
    srv_.Get(base + "/invocation/next", [this](const httplib::Request&, httplib::Response& res) {
      std::unique_lock<std::mutex> l(mu_);
      // A long poll, as the real API: returns when an event is queued (or the test ends).
      cv_.wait(l, [&] { return stopping_ || !events_.empty(); });
      if (stopping_) {
        res.status = 500;
        return;
      }
      auto [id, body] = events_.front();
      events_.pop_front();
      res.set_header("Lambda-Runtime-Aws-Request-Id", id);
      res.set_header("Lambda-Runtime-Deadline-Ms",
                     std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count() +
                                    60000));
      res.set_header("Lambda-Runtime-Invoked-Function-Arn",
                     "arn:aws:lambda:us-east-1:123456789012:function:delete-sync");
      res.set_header("Lambda-Runtime-Trace-Id",
                     "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1");
      res.set_content(body, "application/json");
    });
    srv_.Post(base + R"(/invocation/([^/]+)/(response|error))",
              [this](const httplib::Request& req, httplib::Response& res) {
                std::lock_guard<std::mutex> l(mu_);
                Answer a;
                a.error = req.matches[2] == "error";
                a.body = req.body;
                a.error_type_header = req.get_header_value("Lambda-Runtime-Function-Error-Type");
                answers_[req.matches[1]] = a;
                cv_.notify_all();
                res.status = 202;
                res.set_content(R"({"status":"OK"})", "application/json");
              });
    srv_.Post(base + "/init/error", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard<std::mutex> l(mu_);
      init_error_ = req.body;
      init_error_type_ = req.get_header_value("Lambda-Runtime-Function-Error-Type");
      cv_.notify_all();
      res.status = 202;
      res.set_content(R"({"status":"OK"})", "application/json");
    });
    port_ = srv_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { srv_.listen_after_bind(); });
  }
  ~RuntimeApiServer() {
    {
      std::lock_guard<std::mutex> l(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    srv_.stop();
    thread_.join();
  }

  std::string Endpoint() const { return "127.0.0.1:" + std::to_string(port_); }

  // Queues an event and waits for its answer; a missing answer fails the test.
  Answer Invoke(const std::string& body) {
    std::optional<Answer> a = TryInvoke(body, std::chrono::seconds(60));
    EXPECT_TRUE(a.has_value()) << "no answer to an invocation";
    return a ? *a : Answer{true, "", "no answer"};
  }

  // Queues an event and waits up to `timeout` for its answer; none when the function did not
  // answer (e.g. it was killed holding the invocation: Lambda would invoke again). An event not
  // yet taken when the timeout passes is withdrawn.
  std::optional<Answer> TryInvoke(const std::string& body, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> l(mu_);
    std::string id = "req-" + std::to_string(++next_id_);
    events_.emplace_back(id, body);
    cv_.notify_all();
    if (!cv_.wait_for(l, timeout, [&] { return answers_.count(id) > 0; })) {
      for (auto it = events_.begin(); it != events_.end(); ++it) {
        if (it->first == id) {
          events_.erase(it);
          break;
        }
      }
      return std::nullopt;
    }
    return answers_[id];
  }

  // Waits for a POST to /init/error; returns its body ("" when none came).
  std::string WaitInitError(std::string* type) {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait_for(l, std::chrono::seconds(30), [&] { return !init_error_.empty(); });
    *type = init_error_type_;
    return init_error_;
  }

 private:
  httplib::Server srv_;
  std::thread thread_;
  int port_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  int next_id_ = 0;
  std::deque<std::pair<std::string, std::string>> events_;
  std::map<std::string, Answer> answers_;
  std::string init_error_, init_error_type_;
};

}  // namespace ds::itest
