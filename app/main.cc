// delete-sync: keeps file-system copies of an S3 bucket in step with it, deletions first.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "command.h"
#include "common/version.h"
#include "runtime.h"

namespace {

// Levenshtein distance between two short words.
size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// The name in `names` closest to `word` when it is close enough to be a typo of it (at most 2
// edits, and fewer than half of the word), else "".
std::string Closest(const std::string& word, const std::vector<std::string>& names) {
  std::string best;
  size_t best_d = 3;
  for (const std::string& n : names) {
    size_t d = EditDistance(word, n);
    if (d < best_d && d * 2 < word.size()) {
      best = n;
      best_d = d;
    }
  }
  return best;
}

// After a parse error: "did you mean ...?" for each argument that is a typo of a subcommand
// (before one is chosen) or of a flag of the chosen subcommand.
void SuggestForTypos(CLI::App& app, int argc, char** argv) {
  CLI::App* chosen = nullptr;
  std::vector<std::string> subcommands;
  for (CLI::App* sub : app.get_subcommands({})) {
    subcommands.push_back(sub->get_name());
    if (sub->parsed()) chosen = sub;
  }
  std::vector<std::string> flags;
  if (chosen != nullptr) {
    for (const CLI::Option* opt : chosen->get_options()) {
      for (const std::string& l : opt->get_lnames()) flags.push_back("--" + l);
    }
  }
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (chosen == nullptr && !arg.empty() && arg[0] != '-') {
      std::string s = Closest(arg, subcommands);
      if (!s.empty())
        std::fprintf(stderr, "delete-sync: no command '%s'; did you mean '%s'?\n", arg.c_str(),
                     s.c_str());
      return;  // the first word is the command
    }
    if (chosen != nullptr && arg.rfind("--", 0) == 0) {
      std::string name = arg.substr(0, arg.find('='));
      if (std::find(flags.begin(), flags.end(), name) != flags.end()) continue;
      std::string s = Closest(name, flags);
      if (!s.empty())
        std::fprintf(stderr, "delete-sync %s: no flag '%s'; did you mean '%s'?\n",
                     chosen->get_name().c_str(), name.c_str(), s.c_str());
    }
  }
}

}  // namespace

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
    if (code == 0) return 0;
    SuggestForTypos(app, argc, argv);
    return ds::app::kExitUsage;
  }
  for (auto& [sub, cmd] : commands) {
    if (!sub->parsed()) continue;
    // The command as typed: "serve", "audit verify", "state rebuild".
    std::string name = sub->get_name();
    for (CLI::App* nested : sub->get_subcommands({})) {
      if (nested->parsed()) name += " " + nested->get_name();
    }
    return ds::app::ExitCodeOf(name, *cmd);
  }
  return ds::app::kExitUsage;
}
