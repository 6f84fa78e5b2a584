#include "common/crash_point.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <string>

namespace ds {
namespace {

struct Armed {
  std::string name;  // empty: no crash point armed
  long count = 1;
};

const Armed& Config() {
  static const Armed armed = [] {
    Armed a;
    const char* v = std::getenv("DELETE_SYNC_CRASH_AT");
    if (v == nullptr || *v == '\0') return a;
    std::string s = v;
    size_t colon = s.find(':');
    if (colon != std::string::npos) {
      char* end = nullptr;
      long n = std::strtol(s.c_str() + colon + 1, &end, 10);
      a.count = (end != nullptr && *end == '\0' && n > 0) ? n : 0;
      s.resize(colon);
    }
    const bool known = std::find(kCrashPoints.begin(), kCrashPoints.end(), std::string_view(s)) !=
                       kCrashPoints.end();
    if (!known || a.count == 0) {
      std::string msg = "delete-sync: DELETE_SYNC_CRASH_AT='" + std::string(v) +
                        "' is not <point>[:<n>] with a known point; no crash point armed\n";
      (void)!::write(2, msg.data(), msg.size());
      return a;
    }
    a.name = s;
    return a;
  }();
  return armed;
}

std::atomic<long> g_hits{0};

}  // namespace

// Config() is a function-local static: after its first call, one guard load.
bool CrashPointArmed(std::string_view name) {
  const Armed& a = Config();
  return !a.name.empty() && a.name == name;
}

void CrashPoint(std::string_view name) {
  if (!CrashPointArmed(name)) return;
  if (g_hits.fetch_add(1) + 1 != Config().count) return;
  std::string msg = "delete-sync: crash point '" + std::string(name) + "' reached: SIGKILL\n";
  (void)!::write(2, msg.data(), msg.size());
  ::kill(::getpid(), SIGKILL);
  // Still here: this is pid 1 of a PID namespace (a container's init), which ignores signals
  // sent from inside its namespace, SIGKILL included. Exit at once instead, with the status of a
  // SIGKILL: no destructors, no atexit handlers, no buffers flushed.
  ::_exit(128 + SIGKILL);
}

}  // namespace ds
