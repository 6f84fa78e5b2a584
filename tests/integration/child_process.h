// One way for the integration tests to start a process (the real `delete-sync` binary, a
// launcher around it, or a helper such as `sleep`) and to stop it.
//
// Contract:
//  - Start(argv, options) forks and executes argv: options.launcher (a command such as
//    /usr/bin/unshare and its flags) goes in front of it, and the file executed is
//    options.program when set, else the first word of the whole command, taken as a path
//    (execv) or looked up in PATH when options.search_path is set (execvp). The child gets the
//    test's environment (or none with options.clear_env), then options.env set over it and
//    options.unset_env removed; stdout and stderr go to options.log (appended, or truncated
//    with options.truncate_log; inherited when empty), stdin comes from options.stdin_file
//    (inherited when empty); with options.new_process_group the child leads a new process
//    group and every signal this class sends goes to that group. Everything is prepared before
//    the fork; the child only opens files, moves descriptors and calls exec. When it cannot set
//    itself up or exec, the child exits with 127.
//  - A ChildProcess is "live" from Start until the child has been reaped (by Wait, Kill,
//    Terminate, or Running seeing it gone); pid() is its pid while live, else -1. Start on a
//    live ChildProcess fails the test and starts nothing.
//  - Exit codes are the child's exit status, or 128 + the signal that killed it; wait_status()
//    keeps the raw status (waitpid) of the last child reaped.
//  - On destruction a live child is, by options.at_exit: killed with SIGKILL and reaped (kKill,
//    the default), stopped with SIGTERM and waited for without limit (kTerminate), or left alone
//    and not reaped (kLeave, for a process that must outlive the test's object). Release()
//    forgets the child the same way. A ChildProcess can be moved, not copied.
//  - Not thread-safe: one thread drives one ChildProcess.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "fakes/test_files.h"

extern char** environ;

namespace ds::itest {

// How ChildProcess::Start runs a command. Set fields directly or chain the setters:
// ChildOptions().Env(env).Log(path).TruncateLog().
struct ChildOptions {
  // What the destructor (and Release) does with a live child.
  enum class AtExit { kKill, kTerminate, kLeave };

  std::vector<std::string> launcher;       // put in front of argv
  std::string program;                     // the file executed; empty: the command's first word
  bool search_path = false;                // look the program up in PATH (execvp)
  bool clear_env = false;                  // start from an empty environment
  std::map<std::string, std::string> env;  // set over the environment
  std::vector<std::string> unset_env;      // removed from it (after env is set)
  std::string chdir;                       // the child's working folder; empty: the test's
  std::string log;                         // stdout and stderr; empty: inherited
  bool truncate_log = false;               // truncate the log instead of appending to it
  std::string stdin_file;                  // opened read-only as stdin; empty: inherited
  bool new_process_group = false;
  AtExit at_exit = AtExit::kKill;

  ChildOptions& Launcher(std::vector<std::string> v) {
    launcher = std::move(v);
    return *this;
  }
  ChildOptions& Program(std::string v) {
    program = std::move(v);
    return *this;
  }
  ChildOptions& SearchPath() {
    search_path = true;
    return *this;
  }
  ChildOptions& ClearEnv(bool v = true) {
    clear_env = v;
    return *this;
  }
  // Each variable of `vars` set over those set before.
  ChildOptions& Env(const std::map<std::string, std::string>& vars) {
    for (const auto& [k, v] : vars) env[k] = v;
    return *this;
  }
  ChildOptions& SetEnv(const std::string& name, const std::string& v) {
    env[name] = v;
    return *this;
  }
  ChildOptions& UnsetEnv(const std::string& name) {
    unset_env.push_back(name);
    return *this;
  }
  ChildOptions& Chdir(std::string v) {
    chdir = std::move(v);
    return *this;
  }
  ChildOptions& Log(std::string path) {
    log = std::move(path);
    return *this;
  }
  ChildOptions& TruncateLog() {
    truncate_log = true;
    return *this;
  }
  ChildOptions& Stdin(std::string path) {
    stdin_file = std::move(path);
    return *this;
  }
  ChildOptions& NewProcessGroup() {
    new_process_group = true;
    return *this;
  }
  ChildOptions& OnDestruction(AtExit v) {
    at_exit = v;
    return *this;
  }
};

class ChildProcess {
 public:
  using Options = ChildOptions;
  using AtExit = ChildOptions::AtExit;

  // Wait without a limit (Terminate's default).
  static constexpr std::chrono::milliseconds kNoTimeout = std::chrono::milliseconds::max();

  ChildProcess() = default;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ChildProcess(ChildProcess&& other) noexcept { *this = std::move(other); }
  ChildProcess& operator=(ChildProcess&& other) noexcept {
    if (this != &other) {
      AtDestruction();
      pid_ = std::exchange(other.pid_, -1);
      group_ = other.group_;
      at_exit_ = other.at_exit_;
      log_ = std::move(other.log_);
      wait_status_ = other.wait_status_;
    }
    return *this;
  }
  ~ChildProcess() { AtDestruction(); }

  // Starts argv (see the contract above); false (and a test failure) when nothing started.
  bool Start(const std::vector<std::string>& argv, const Options& options = Options()) {
    if (pid_ > 0) {
      ADD_FAILURE() << "ChildProcess::Start: pid " << pid_ << " is still running";
      return false;
    }
    std::vector<std::string> command = options.launcher;
    command.insert(command.end(), argv.begin(), argv.end());
    if (command.empty()) {
      ADD_FAILURE() << "ChildProcess::Start: no command";
      return false;
    }
    const std::string program = options.program.empty() ? command.front() : options.program;
    std::vector<char*> args;
    for (std::string& a : command) args.push_back(a.data());
    args.push_back(nullptr);
    std::vector<std::string> env_strings = Environment(options);
    std::vector<char*> envp;
    for (std::string& e : env_strings) envp.push_back(e.data());
    envp.push_back(nullptr);
    const int log_flags = O_WRONLY | O_CREAT | (options.truncate_log ? O_TRUNC : O_APPEND);

    const pid_t pid = fork();
    if (pid < 0) {
      ADD_FAILURE() << "fork: " << std::strerror(errno);
      return false;
    }
    if (pid == 0) {
      if (options.new_process_group) setpgid(0, 0);
      if (!options.log.empty()) {
        const int fd = open(options.log.c_str(), log_flags, 0600);
        if (fd < 0) _exit(127);
        dup2(fd, 1);
        dup2(fd, 2);
        if (fd > 2) close(fd);
      }
      if (!options.stdin_file.empty()) {
        const int fd = open(options.stdin_file.c_str(), O_RDONLY);
        if (fd < 0) _exit(127);
        dup2(fd, 0);
        if (fd != 0) close(fd);
      }
      if (!options.chdir.empty() && ::chdir(options.chdir.c_str()) != 0) _exit(127);
      if (options.search_path) {
        execvpe(program.c_str(), args.data(), envp.data());
      } else {
        execve(program.c_str(), args.data(), envp.data());
      }
      _exit(127);
    }
    if (options.new_process_group) setpgid(pid, pid);  // no race with the first signal
    pid_ = pid;
    group_ = options.new_process_group;
    at_exit_ = options.at_exit;
    log_ = options.log;
    return true;
  }

  // The child's pid while it is live; -1 otherwise.
  pid_t pid() const { return pid_; }
  bool live() const { return pid_ > 0; }

  // Whether the child still runs; reaps it when it has ended.
  bool Running() {
    if (pid_ <= 0) return false;
    return !Reap(WNOHANG);
  }

  // Sends `sig` (to the group with new_process_group); false when the child is not live.
  bool Signal(int sig) const {
    if (pid_ <= 0) return false;
    return kill(group_ ? -pid_ : pid_, sig) == 0;
  }

  // SIGKILL, then reaps: the exit code (128 + SIGKILL unless it had ended), -1 when not live.
  int Kill() {
    if (pid_ <= 0) return -1;
    Signal(SIGKILL);
    return Wait();
  }

  // SIGTERM, then waits up to `timeout` (kNoTimeout: without limit), then SIGKILL: the exit
  // code; -1 when not live.
  int Terminate(std::chrono::milliseconds timeout = kNoTimeout) {
    if (pid_ <= 0) return -1;
    Signal(SIGTERM);
    if (timeout == kNoTimeout) return Wait();
    if (std::optional<int> code = Wait(timeout)) return *code;
    return Kill();
  }

  // Waits for the child to end without a limit: its exit code; -1 when not live.
  int Wait() {
    if (pid_ <= 0) return -1;
    Reap(0);
    return ExitCode(wait_status_);
  }

  // Waits up to `timeout` (polling every 20 ms): the exit code, nullopt while it still runs
  // (or when it is not live).
  std::optional<int> Wait(std::chrono::milliseconds timeout) {
    if (pid_ <= 0) return std::nullopt;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!Reap(WNOHANG)) {
      if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return ExitCode(wait_status_);
  }

  // The raw waitpid status of the last child reaped (0 before any).
  int wait_status() const { return wait_status_; }

  // The child's own children (from /proc), e.g. the process a launcher started.
  std::vector<pid_t> Children() const {
    std::vector<pid_t> out;
    if (pid_ <= 0) return out;
    std::ifstream in("/proc/" + std::to_string(pid_) + "/task/" + std::to_string(pid_) +
                     "/children");
    for (pid_t child; in >> child;) out.push_back(child);
    return out;
  }

  // The log file's contents ("" when there is none).
  std::string Log() const { return testfiles::ReadFile(log_); }
  const std::string& log_path() const { return log_; }

  // Forgets the child without signalling or reaping it: its pid (-1 when not live), which the
  // caller now owns.
  pid_t Release() { return std::exchange(pid_, -1); }

  static int ExitCode(int wait_status) {
    return WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : 128 + WTERMSIG(wait_status);
  }

 private:
  // The child's environment: the test's (unless cleared), options.env over it, unset_env out.
  static std::vector<std::string> Environment(const Options& options) {
    std::vector<std::string> env;
    if (!options.clear_env) {
      for (char** e = environ; e != nullptr && *e != nullptr; ++e) env.emplace_back(*e);
    }
    auto drop = [&](const std::string& name) {
      std::erase_if(env, [&](const std::string& e) { return e.rfind(name + "=", 0) == 0; });
    };
    for (const auto& [k, v] : options.env) {
      drop(k);
      env.push_back(k + "=" + v);
    }
    for (const std::string& k : options.unset_env) drop(k);
    return env;
  }

  // waitpid with `flags`; true when the child was reaped (it is then no longer live).
  bool Reap(int flags) {
    int status = 0;
    pid_t r;
    do {
      r = waitpid(pid_, &status, flags);
    } while (r < 0 && errno == EINTR);
    if (r == 0) return false;
    wait_status_ = r == pid_ ? status : 0;
    pid_ = -1;
    return true;
  }

  void AtDestruction() {
    if (pid_ <= 0) return;
    switch (at_exit_) {
      case AtExit::kKill:
        Kill();
        break;
      case AtExit::kTerminate:
        Terminate();
        break;
      case AtExit::kLeave:
        Release();
        break;
    }
  }

  pid_t pid_ = -1;
  bool group_ = false;
  AtExit at_exit_ = AtExit::kKill;
  std::string log_;
  int wait_status_ = 0;
};

}  // namespace ds::itest
