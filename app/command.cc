#include "command.h"

#include <cstdio>

namespace ds::app {

int ExitCodeOf(const std::string& name, Command& cmd) {
  auto fail = [&name](const Status& s, int code) {
    std::fprintf(stderr, "delete-sync %s: %s\n", name.c_str(), s.message().c_str());
    return code;
  };
  if (Status s = cmd.Check(); !s.ok()) return fail(s, kExitUsage);
  Result<RunEnd> end = cmd.Run();
  if (!end.ok()) return fail(end.status(), kExitFailed);
  return *end == RunEnd::kOk ? kExitOk : kExitFailed;
}

}  // namespace ds::app
