// Several "hosts" sharing one CephFS on this machine (scripts/cephfs-local.sh): each host is its
// own PID, UTS and mount namespace with its own ceph-fuse client of one file system, mounted at
// the same path. Processes run in a host through `cephfs-local.sh host-exec`; the host's mount
// is not visible from the test process, so files are read through a host too.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "fakes/test_files.h"
#include "service_harness.h"

namespace ds::itest {

inline std::string CephfsScript() {
  return std::string(DS_SOURCE_DIR) + "/scripts/cephfs-local.sh";
}

// The lab's mount point (DS_CEPHFS_MNT of its env file); empty when the lab is not running.
inline std::string CephfsMountPoint() {
  const char* dir = std::getenv("DS_RGW_DIR");
  std::string env_file = std::string(dir && *dir ? dir : "/tmp/delete-sync-rgw") + "/cephfs/env";
  auto vars = testenv::ParseEnvExports(testfiles::ReadFile(env_file));
  auto it = vars.find("DS_CEPHFS_MNT");
  return it == vars.end() ? "" : it->second;
}

// Runs `cephfs-local.sh ARGS...`; its exit code, output in *out.
inline int CephfsLab(const std::vector<std::string>& args, std::string* out = nullptr) {
  std::vector<std::string> argv = {CephfsScript()};
  argv.insert(argv.end(), args.begin(), args.end());
  std::string o;
  int rc = RunCommand(argv, {}, &o);
  if (out) *out = o;
  return rc;
}

// Runs a command inside host `host`, with `env` added; exit code, output in *out.
inline int HostRun(const std::string& host, const std::vector<std::string>& cmd,
                   const std::map<std::string, std::string>& env = {}, std::string* out = nullptr) {
  std::vector<std::string> argv = {CephfsScript(), "host-exec", host};
  argv.insert(argv.end(), cmd.begin(), cmd.end());
  std::string o;
  int rc = RunCommand(argv, env, &o);
  if (out) *out = o;
  return rc;
}

// A process running in one host. The child we start is `nsenter` (the script execs it); the
// process itself is nsenter's child, in the host's PID namespace.
class HostProcess {
 public:
  HostProcess() = default;
  HostProcess(const HostProcess&) = delete;
  HostProcess& operator=(const HostProcess&) = delete;
  ~HostProcess() { Kill(); }

  void Start(const std::string& host, const std::vector<std::string>& cmd,
             const std::map<std::string, std::string>& env, const std::string& log) {
    ASSERT_FALSE(launcher_.live()) << "already running";
    host_ = host;
    launcher_.Start(cmd, ChildOptions()
                             .Launcher({CephfsScript(), "host-exec", host})
                             .Env(env)
                             .Log(log)
                             .Stdin("/dev/null"));
  }

  // The process's pid in our namespace (nsenter's child); -1 when it is not (yet) there.
  pid_t Target() const {
    const std::vector<pid_t> children = launcher_.Children();
    return children.empty() ? -1 : children.front();
  }

  bool Running() { return launcher_.Running(); }

  // Sends `sig` to the process and waits for it to end; its exit status (128+signal when killed).
  int Signal(int sig) {
    if (!launcher_.live()) return -1;
    pid_t t = -1;
    WaitFor([&] { return (t = Target()) > 0 || !launcher_.Running(); }, std::chrono::seconds(10));
    if (t > 0) kill(t, sig);
    return Wait();
  }
  int Kill() { return Signal(SIGKILL); }

  // Waits for the launcher (and so the process) to end.
  int Wait() { return launcher_.Wait(); }
  // The launcher ended on its own (the host died): reap it.
  void Forget() { launcher_.Wait(); }

 private:
  std::string host_;
  ChildProcess launcher_;
};

// The files below `root` (the reserved folder excluded) and their contents, read in `host`.
inline std::map<std::string, std::string> HostTree(const std::string& host,
                                                   const std::string& root) {
  static const char kScript[] = R"PY(
import json, os, sys
root = sys.argv[1]
out = {}
for d, dirs, files in os.walk(root):
    rel = os.path.relpath(d, root)
    if rel == ".delete-sync" or rel.startswith(".delete-sync/"):
        dirs[:] = []
        continue
    dirs[:] = [x for x in dirs if not (rel == "." and x == ".delete-sync")]
    for f in files:
        p = os.path.join(d, f)
        with open(p, "rb") as fh:
            out[os.path.relpath(p, root)] = fh.read().decode("latin-1")
print(json.dumps(out))
)PY";
  std::string out;
  int rc = HostRun(host, {"/usr/bin/python3", "-c", kScript, root}, {}, &out);
  EXPECT_EQ(rc, 0) << out;
  std::map<std::string, std::string> tree;
  try {
    const nlohmann::json j = nlohmann::json::parse(out);
    for (auto it = j.begin(); it != j.end(); ++it) tree[it.key()] = it.value().get<std::string>();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "cannot read the tree of " << root << " in " << host << ": " << e.what()
                  << "\n"
                  << out;
  }
  return tree;
}

}  // namespace ds::itest
