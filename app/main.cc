// delete-sync: keeps file-system copies of an S3 bucket in step with it, deletions first.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <map>

#include "common/version.h"
#include "runtime.h"

int main(int argc, char** argv) {
  CLI::App app{
      "delete-sync: keep a cache folder equal to an S3 bucket; a deletion in the bucket reaches "
      "the cache at once.\nSee README.md and docs/ for the guarantees and configuration."};
  app.set_version_flag("--version", std::string("delete-sync ") + ds::Version());
  app.require_subcommand(1);
  app.fallthrough(false);

  std::map<CLI::App*, std::unique_ptr<ds::app::Command>> commands;
  for (auto make :
       {ds::app::MakeServeCommand, ds::app::MakeApplyCommand, ds::app::MakeStatusCommand,
        ds::app::MakeReconcileCommand, ds::app::MakeAuditCommand, ds::app::MakeEraseCommand,
        ds::app::MakeLambdaCommand, ds::app::MakeRouteCommand,
        ds::app::MakeSetupNotificationsCommand, ds::app::MakeRetryFailedCommand,
        ds::app::MakeStateCommand}) {
    std::unique_ptr<ds::app::Command> cmd = make();
    CLI::App* sub = cmd->Register(app);
    commands[sub] = std::move(cmd);
  }
  // Started by Lambda as `bootstrap` (no arguments, AWS_LAMBDA_RUNTIME_API set): lambda mode.
  char lambda_arg[] = "lambda";
  char* lambda_argv[] = {argv[0], lambda_arg, nullptr};
  if (argc == 1 && std::getenv("AWS_LAMBDA_RUNTIME_API") != nullptr) {
    argc = 2;
    argv = lambda_argv;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : ds::app::kExitUsage;
  }
  for (auto& [sub, cmd] : commands) {
    if (sub->parsed()) return cmd->Run();
  }
  return ds::app::kExitUsage;
}
