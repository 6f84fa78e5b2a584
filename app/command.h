// A subcommand of delete-sync and its exit code, decided in one place (ExitCodeOf).
#pragma once

#include <memory>
#include <string>

#include "common/status.h"
#include "config.h"

namespace ds::app {

// Exit codes of every subcommand (decided in one place: ExitCodeOf).
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;  // the run failed, or some of its work did
inline constexpr int kExitUsage = 2;   // bad flags or settings: nothing was changed

// How a run that went through ended: kOk, or kFailed when some of its work failed and the
// command's own report (stdout) says which (events, downloads, a broken chain).
enum class RunEnd { kOk, kFailed };

// A subcommand, in two phases:
//  1. Check: resolves and checks every setting into typed options. Reads what it must (the
//     configuration, the AWS variables, key and token files) but creates, opens for writing
//     and changes nothing: a failure is a usage error.
//  2. Run: opens what the options name and does the work; a failure is a failure of the run.
class Command {
 public:
  virtual ~Command() = default;
  virtual CLI::App* Register(CLI::App& parent) = 0;
  virtual Status Check() = 0;
  virtual Result<RunEnd> Run() = 0;
};

// Runs both phases of the chosen command `name` and returns its exit code: kExitUsage when Check
// fails, kExitFailed when Run fails or ends kFailed, else kExitOk. A failure's message is printed
// to stderr as "delete-sync <name>: <message>".
int ExitCodeOf(const std::string& name, Command& cmd);

std::unique_ptr<Command> MakeServeCommand();
std::unique_ptr<Command> MakeApplyCommand();
std::unique_ptr<Command> MakeRetryFailedCommand();
std::unique_ptr<Command> MakeStateCommand();
std::unique_ptr<Command> MakeStatusCommand();
std::unique_ptr<Command> MakeReconcileCommand();
std::unique_ptr<Command> MakeAuditCommand();
std::unique_ptr<Command> MakeEraseCommand();
std::unique_ptr<Command> MakeRouteCommand();
std::unique_ptr<Command> MakeSetupNotificationsCommand();
std::unique_ptr<Command> MakeLambdaCommand();

}  // namespace ds::app
