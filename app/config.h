// Settings: every setting is a flag (--cache), an environment variable (DELETE_SYNC_CACHE) and
// a key of the TOML file given by --config (cache = "..."; '-' or '_' both accepted).
// Precedence: flag > environment > file > default.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <deque>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"

namespace ds::app {

// Registers string-valued settings on a CLI11 subcommand and resolves them after parsing.
class Settings {
 public:
  explicit Settings(CLI::App* cmd);

  // Adds --name with help text; `target` receives the resolved value ("" when unset and no
  // default). `default_value` is shown in --help.
  void Add(const std::string& name, std::string* target, const std::string& help,
           const std::string& default_value = "");
  void AddFlag(const std::string& name, bool* target, const std::string& help);
  // Adds a repeatable --name: every occurrence of the flag; else DELETE_SYNC_<NAME> split at
  // commas (spaces around items ignored); else the file's array of strings (or one string).
  // `target` is empty when none is given.
  void AddList(const std::string& name, std::vector<std::string>* target, const std::string& help);

  // Fills every target: flag, else DELETE_SYNC_<NAME>, else the TOML file, else default.
  // Errors name the offending setting and its source.
  Status Resolve();
  // After Resolve: whether `name` was given (flag, environment or file), not defaulted.
  bool IsSet(const std::string& name) const { return explicit_.count(name) > 0; }

  static std::string EnvName(
      const std::string& name);  // "webhook-token" -> DELETE_SYNC_WEBHOOK_TOKEN

 private:
  struct Entry {
    std::string name;
    std::string* target = nullptr;
    bool* flag_target = nullptr;
    std::vector<std::string>* list_target = nullptr;
    std::vector<std::string> raw_list;
    std::string default_value;
    CLI::Option* opt = nullptr;
    std::string raw;
  };
  CLI::App* cmd_;
  std::string config_path_;
  std::deque<Entry> entries_;  // deque: CLI11 holds pointers into entries
  std::set<std::string> explicit_;
};

// Parsers for typed settings; errors name the setting.
Result<uint32_t> ParseMode(const std::string& setting, const std::string& value);  // "0750"
// "1001" or "1001:1001" or "" (unset).
Status ParseOwner(const std::string& value, std::optional<uint32_t>* uid,
                  std::optional<uint32_t>* gid);
// "8MiB", "512KiB", "1048576", "2GB".
Result<uint64_t> ParseBytes(const std::string& setting, const std::string& value);
Result<int64_t> ParseInt(const std::string& setting, const std::string& value, int64_t min,
                         int64_t max);
// "HOST:PORT" or ":PORT" (127.0.0.1) or "[::1]:PORT".
Status ParseListen(const std::string& value, std::string* host, int* port);
Result<bool> ParseBool(const std::string& setting, const std::string& value);

}  // namespace ds::app
