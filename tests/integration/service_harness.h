// Runs the real `delete-sync serve` binary against the real local Ceph RGW, with the bucket's
// notifications pushed to its webhook, for integration tests.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "child_process.h"
#include "fakes/test_ca.h"
#include "fakes/test_files.h"
#include "rgw_env.h"
#include "s3/client.h"

namespace ds::itest {

using testfiles::Exists;
using testfiles::ReadFile;

// The export lines written by `scripts/rgw-local.sh start`; empty when it is not running.
inline std::map<std::string, std::string> ReadRgwEnv() {
  return testenv::ParseEnvExports(testfiles::ReadFile(testenv::RgwEnvFile()));
}

inline std::string RandomSuffix() {
  std::random_device rd;
  std::mt19937_64 rng(rd());
  static const char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string s;
  for (int i = 0; i < 10; ++i) s += kAlphabet[rng() % 36];
  return s;
}

// A port that was free a moment ago (bound to port 0, then closed).
inline int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  int port = -1;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

// Polls `pred` every 20 ms until it holds or `timeout` passes; returns its last value.
inline bool WaitFor(const std::function<bool()>& pred,
                    std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pred();
}

// Runs a command (argv, looked up in PATH) with extra environment and stdin from /dev/null;
// returns its exit code and output.
inline int RunCommand(const std::vector<std::string>& argv,
                      const std::map<std::string, std::string>& env, std::string* output) {
  std::string out_path = "/tmp/ds-itest-cmd-" + RandomSuffix() + ".out";
  ChildProcess p;
  p.Start(argv,
          ChildOptions().SearchPath().Env(env).Log(out_path).TruncateLog().Stdin("/dev/null"));
  const int rc = p.Wait();
  if (output) *output = ReadFile(out_path);
  std::filesystem::remove(out_path);
  return rc;
}

// A bucket of its own on the local RGW for one test, and an S3 client for it. Create() fails
// the test (fatally) when the RGW lab is not there or the bucket cannot be made. At the end,
// when the test has not failed, the bucket goes (its notification configuration, every version
// and delete marker, then the bucket); a failure to delete it is printed, not a test failure.
class RgwBucket {
 public:
  RgwBucket() = default;
  RgwBucket(const RgwBucket&) = delete;
  RgwBucket& operator=(const RgwBucket&) = delete;
  ~RgwBucket() {
    if (!s3_ || name_.empty() || keep_ || ::testing::Test::HasFailure()) return;
    (void)s3_->PutBucketNotification(
        name_, R"(<NotificationConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"/>)");
    Status s = testenv::EmptyAndDeleteBucket(*s3_, name_);
    if (!s.ok() && s.code() != Code::kNotFound) {
      std::fprintf(stderr, "cannot delete bucket %s: %s\n", name_.c_str(), s.ToString().c_str());
    }
  }

  // Reads the RGW lab's env file, then creates bucket `name` (with versioning when asked).
  void Create(const std::string& name, bool versioned = false) {
    env_ = ReadRgwEnv();
    ASSERT_FALSE(env_.empty())
        << "no RGW env file: run `scripts/rgw-local.sh start` first (scripts/test.sh does)";
    Result<S3Config> cfg = S3Config::FromVariables(env_);
    ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
    s3_ = std::make_unique<S3Client>(*cfg);
    ASSERT_TRUE(s3_->CreateBucket(name).ok()) << name;
    name_ = name;
    if (versioned) {
      ASSERT_TRUE(s3_->SetBucketVersioning(name_, true).ok());
    }
  }
  // The bucket stays at the end even when the test passes.
  void Keep() { keep_ = true; }

  S3Client& s3() const { return *s3_; }
  const std::string& name() const { return name_; }
  // The RGW lab's variables (AWS_ENDPOINT_URL_S3, keys, ...).
  const std::map<std::string, std::string>& env() const { return env_; }

 private:
  std::map<std::string, std::string> env_;
  std::unique_ptr<S3Client> s3_;
  std::string name_;
  bool keep_ = false;
};

// One bucket on the local RGW with its notifications pushed to one running `delete-sync serve`.
class ServiceHarness {
 public:
  explicit ServiceHarness(bool versioned = false) : versioned_(versioned) {}
  ~ServiceHarness() { Stop(); }

  // Creates the bucket, starts serve, wires the notifications. Fails the test on error.
  void Start(const std::vector<std::string>& extra_args = {}) {
    bucket_.Create("ds-it-" + RandomSuffix(), versioned_);
    ASSERT_FALSE(::testing::Test::HasFatalFailure());
    env_ = bucket_.env();
    dir_ = std::filesystem::temp_directory_path() / ("ds-it-" + RandomSuffix());
    std::filesystem::create_directories(dir_);
    cache_ = dir_ + "/cache";
    log_ = dir_ + "/serve.log";
    token_ = "tok-" + RandomSuffix();
    if (use_token_file_) {
      token_file_ = dir_ + "/webhook.token";
      std::ofstream(token_file_) << token_ << "\n";
    }
    if (use_tls_) {
      ASSERT_TRUE(env_.count("DS_RGW_CA_CERT") && env_.count("DS_RGW_CA_KEY"))
          << "the RGW lab has no CA that radosgw trusts (scripts/rgw-local.sh start makes one "
             "when run as root)";
      std::filesystem::create_directories(tls_dir());
      IssueWebhookCertificate("delete-sync webhook");
    }
    port_ = FreePort();
    extra_args_ = extra_args;
    Spawn();
    ASSERT_FALSE(::testing::Test::HasFatalFailure());
    std::string out;
    std::string endpoint = std::string(use_tls_ ? "https" : "http") +
                           "://127.0.0.1:" + std::to_string(port_) + "/?token=" + token_;
    int rc = RunCommand({std::string(DS_SOURCE_DIR) + "/scripts/rgw-local.sh", "notify", bucket(),
                         "t-" + bucket(), endpoint},
                        {}, &out);
    ASSERT_EQ(rc, 0) << out;
    topic_ = "t-" + bucket();
  }

  // Kills serve with SIGKILL (no clean stop) and waits for it to die.
  void Kill() { proc_.Kill(); }

  // Starts serve again on the same cache, port and settings (after Kill or a stop); its log is
  // appended to the same file. Fails the test when it does not come up.
  void Restart() {
    ASSERT_FALSE(proc_.live()) << "serve is still running";
    Spawn();
  }

  // The keys of the cache (files below the root, reserved folder excluded) and their contents.
  std::map<std::string, std::string> CacheContents() const { return testfiles::CacheTree(cache_); }

 private:
  void Spawn() {
    std::vector<std::string> argv = {
        DS_BINARY,
        "serve",
        "--cache",
        cache_,
        "--bucket",
        bucket(),
        "--webhook-listen",
        "127.0.0.1:" + std::to_string(port_),
        token_file_.empty() ? "--webhook-token" : "--webhook-token-file",
        token_file_.empty() ? token_ : token_file_,
        "--log-level",
        "debug"};
    if (use_tls_) {
      const std::vector<std::string> tls = {"--webhook-tls-cert", tls_dir() + "/webhook.pem",
                                            "--webhook-tls-key", tls_dir() + "/webhook.key"};
      argv.insert(argv.end(), tls.begin(), tls.end());
    }
    argv.insert(argv.end(), extra_args_.begin(), extra_args_.end());
    proc_.Start(argv, ChildOptions().Launcher(launcher_).Env(env_).Env(serve_env_).Log(log_));
    httplib::Client c("127.0.0.1", port_);
    ASSERT_TRUE(WaitFor([&] {
      if (use_tls_) return Curl({"/healthz"}) == 0;
      auto r = c.Get("/healthz");
      return r && r->status == 200;
    })) << "serve did not come up; log:\n"
        << ReadFile(log_);
  }

 public:
  // Stops serve with SIGTERM (a clean stop) and waits for it; its exit code, -1 when none ran.
  int Terminate() {
    if (!proc_.live()) return -1;
    if (launcher_.empty()) return proc_.Terminate();
    // A launcher such as unshare --fork ignores SIGTERM while it waits: stop serve, its child.
    for (pid_t child : proc_.Children()) kill(child, SIGTERM);
    return proc_.Wait();
  }

  // Waits up to `timeout` for serve (or its launcher) to exit by itself: its exit code (128 +
  // the signal when killed), or -1 when it is still running.
  int WaitExit(std::chrono::seconds timeout) { return proc_.Wait(timeout).value_or(-1); }

  // Hands the running serve (or launcher) process over to the caller without stopping it, so
  // that the next Restart starts another beside it (the caller's object kills it at its end).
  ChildProcess Detach() { return std::move(proc_); }

  // Before Start: serve reads its token from <dir>/webhook.token (token_file()) instead of
  // --webhook-token, so that a test can rotate it (write the file, then Hup()).
  void UseTokenFile() { use_token_file_ = true; }
  // Before Start: the webhook serves TLS with a certificate for 127.0.0.1 issued by the RGW
  // lab's CA (<dir>/tls/webhook.pem and .key), and RGW pushes to https:// with verify-ssl on
  // (its default). The lab's CA is the one radosgw trusts (scripts/rgw-local.sh).
  void UseTls() { use_tls_ = true; }
  std::string tls_dir() const { return dir_ + "/tls"; }
  std::string lab_ca_file() const { return env_.at("DS_RGW_CA_CERT"); }
  // Writes a new webhook certificate (and key) issued by the lab's CA over the files serve
  // reads; it serves them after Hup().
  void IssueWebhookCertificate(const std::string& common_name) {
    testing::TestCa ca(ReadFile(env_.at("DS_RGW_CA_CERT")), ReadFile(env_.at("DS_RGW_CA_KEY")));
    testing::TestCert c = ca.Issue(common_name);
    std::ofstream(tls_dir() + "/webhook.pem", std::ios::trunc) << c.cert_pem;
    std::ofstream(tls_dir() + "/webhook.key", std::ios::trunc) << c.key_pem;
  }
  // Runs curl against the webhook over TLS, trusting the lab's CA: `args` are the path (first)
  // and curl's own options; its exit code (0: a 2xx answer) and its output.
  int Curl(const std::vector<std::string>& args, std::string* out = nullptr) const {
    std::vector<std::string> argv = {"curl", "-sS", "--noproxy", "*",          "--fail-with-body",
                                     "-m",   "20",  "--cacert",  lab_ca_file()};
    argv.insert(argv.end(), args.begin() + 1, args.end());
    argv.push_back("https://127.0.0.1:" + std::to_string(port_) + args.front());
    return RunCommand(argv, {}, out);
  }
  const std::string& token_file() const { return token_file_; }
  // Sends SIGHUP to serve (it reopens its log file and re-reads the token file).
  void Hup() { proc_.Signal(SIGHUP); }

  // A variable set for serve's next starts, over the RGW lab's (e.g. AWS_ENDPOINT_URL_S3 pointed
  // at a proxy, DELETE_SYNC_CRASH_AT); UnsetServeEnv drops it again.
  void SetServeEnv(const std::string& name, const std::string& value) { serve_env_[name] = value; }
  void UnsetServeEnv(const std::string& name) { serve_env_.erase(name); }
  // A command serve's next starts run under (its full path first, e.g. /usr/bin/unshare and its
  // flags); empty: serve is started directly. Kill signals the launcher (which must then kill
  // serve, as unshare --kill-child does), Terminate its children (serve).
  void SetLauncher(std::vector<std::string> prefix) { launcher_ = std::move(prefix); }

  void Stop() {
    Terminate();
    if (!dir_.empty() && !::testing::Test::HasFailure()) {
      std::filesystem::remove_all(dir_);
    } else if (!dir_.empty()) {
      std::fprintf(stderr, "---- serve log (%s) ----\n%s\n", log_.c_str(), ReadFile(log_).c_str());
    }
    dir_.clear();
  }

  std::string Path(const std::string& key) const { return cache_ + "/" + key; }
  bool WaitContent(const std::string& key, const std::string& content) {
    return WaitFor([&] { return Exists(Path(key)) && ReadFile(Path(key)) == content; });
  }
  bool WaitGone(const std::string& key) {
    return WaitFor([&] { return !Exists(Path(key)); });
  }

  // Runs the AWS CLI against the lab RGW.
  int Aws(const std::vector<std::string>& args, std::string* out = nullptr) {
    std::vector<std::string> argv = {"/usr/bin/aws", "--endpoint-url",
                                     env_.at("AWS_ENDPOINT_URL_S3")};
    argv.insert(argv.end(), args.begin(), args.end());
    std::map<std::string, std::string> env = env_;
    return RunCommand(argv, env, out);
  }

  httplib::Client Client() const { return httplib::Client("127.0.0.1", port_); }

  S3Client& s3() { return bucket_.s3(); }
  const std::string& bucket() const { return bucket_.name(); }
  const std::string& cache() const { return cache_; }
  const std::string& token() const { return token_; }
  const std::string& dir() const { return dir_; }
  int port() const { return port_; }
  std::string Log() const { return ReadFile(log_); }
  const std::map<std::string, std::string>& env() const { return env_; }

 private:
  bool versioned_;
  RgwBucket bucket_;
  std::map<std::string, std::string> env_;
  std::string topic_, dir_, cache_, log_, token_, token_file_;
  bool use_token_file_ = false;
  bool use_tls_ = false;
  std::vector<std::string> extra_args_;
  std::map<std::string, std::string> serve_env_;
  std::vector<std::string> launcher_;
  int port_ = 0;
  ChildProcess proc_;
};

}  // namespace ds::itest
