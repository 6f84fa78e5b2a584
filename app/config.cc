#include "config.h"

#include <toml++/toml.h>

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>

namespace ds::app {
namespace {
// Every setting name any subcommand registered: a file key outside it is a typo.
std::set<std::string>& AllNames() {
  static std::set<std::string> names;
  return names;
}
}  // namespace

Settings::Settings(CLI::App* cmd) : cmd_(cmd) {
  cmd_->add_option("--config", config_path_,
                   "TOML file of settings (env DELETE_SYNC_CONFIG); flags and the environment "
                   "override it");
}

std::string Settings::EnvName(const std::string& name) {
  std::string env = "DELETE_SYNC_";
  for (char c : name) {
    env += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return env;
}

void Settings::Add(const std::string& name, std::string* target, const std::string& help,
                   const std::string& default_value) {
  AllNames().insert(name);
  Entry e;
  e.name = name;
  e.target = target;
  e.default_value = default_value;
  entries_.push_back(e);
  Entry& back = entries_.back();
  std::string text = help + " [env " + EnvName(name) + "]";
  back.opt = cmd_->add_option("--" + name, back.raw, text);
  if (!default_value.empty()) back.opt->default_str(default_value);
}

void Settings::AddFlag(const std::string& name, bool* target, const std::string& help) {
  AllNames().insert(name);
  Entry e;
  e.name = name;
  e.flag_target = target;
  entries_.push_back(e);
  Entry& back = entries_.back();
  std::string flag = "--" + name;
  back.opt = cmd_->add_flag(flag)->description(help + " [env " + EnvName(name) + "]");
}

void Settings::AddList(const std::string& name, std::vector<std::string>* target,
                       const std::string& help) {
  AllNames().insert(name);
  Entry e;
  e.name = name;
  e.list_target = target;
  entries_.push_back(e);
  Entry& back = entries_.back();
  std::string text = help + " (repeatable) [env " + EnvName(name) + ", comma-separated]";
  back.opt = cmd_->add_option("--" + name, back.raw_list, text)
                 ->expected(1)
                 ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
}

namespace {

// The items of a comma-separated list, spaces around each removed, empty ones dropped.
std::vector<std::string> SplitList(const std::string& value) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= value.size()) {
    size_t end = value.find(',', start);
    if (end == std::string::npos) end = value.size();
    std::string item = value.substr(start, end - start);
    size_t b = item.find_first_not_of(" \t");
    size_t e = item.find_last_not_of(" \t");
    if (b != std::string::npos) out.push_back(item.substr(b, e - b + 1));
    start = end + 1;
  }
  return out;
}

}  // namespace

Status Settings::Resolve() {
  if (config_path_.empty()) {
    if (const char* env = std::getenv("DELETE_SYNC_CONFIG"); env && *env) config_path_ = env;
  }
  toml::table file;
  if (!config_path_.empty()) {
    std::ifstream probe(config_path_);
    if (!probe) return Status::Invalid("cannot read config file " + config_path_);
    try {
      file = toml::parse_file(config_path_);
    } catch (const toml::parse_error& e) {
      const auto& where = e.source().begin;
      return Status::Invalid("config file " + config_path_ + ":" + std::to_string(where.line) +
                             ":" + std::to_string(where.column) + ": " +
                             std::string(e.description()));
    }
  }
  // Normalise file keys ('_' -> '-') and check that each is known.
  std::map<std::string, const toml::node*> file_values;
  for (const auto& [k, v] : file) {
    std::string key(k.str());
    for (char& c : key) c = c == '_' ? '-' : c;
    bool known = false;
    for (const Entry& e : entries_) known = known || e.name == key;
    if (!known && !(key == "config")) {
      // A setting of another subcommand is fine; only a name no subcommand knows is a typo.
      if (!AllNames().count(key)) {
        return Status::Invalid("config file " + config_path_ + ": unknown setting '" + key + "'");
      }
    }
    file_values[key] = &v;
  }
  for (Entry& e : entries_) {
    if (e.list_target != nullptr) {
      e.list_target->clear();
      if (e.opt->count() > 0) {
        *e.list_target = e.raw_list;
      } else if (const char* env = std::getenv(EnvName(e.name).c_str()); env && *env) {
        *e.list_target = SplitList(env);
      } else if (auto it = file_values.find(e.name); it != file_values.end()) {
        const toml::node& n = *it->second;
        const std::string bad = "config file " + config_path_ + ": setting '" + e.name +
                                "' must be an array of strings";
        if (n.is_string()) {
          e.list_target->push_back(*n.value<std::string>());
        } else if (const toml::array* a = n.as_array()) {
          for (const toml::node& item : *a) {
            if (!item.is_string()) return Status::Invalid(bad);
            e.list_target->push_back(*item.value<std::string>());
          }
        } else {
          return Status::Invalid(bad);
        }
      }
      if (!e.list_target->empty()) explicit_.insert(e.name);
      continue;
    }
    std::string value;
    bool have = false;
    if (e.opt->count() > 0) {
      if (e.flag_target) {
        *e.flag_target = true;
        continue;
      }
      value = e.raw;
      have = true;
    }
    if (!have) {
      if (const char* env = std::getenv(EnvName(e.name).c_str()); env && *env) {
        value = env;
        have = true;
      }
    }
    if (!have) {
      auto it = file_values.find(e.name);
      if (it != file_values.end()) {
        const toml::node& n = *it->second;
        if (auto s = n.value<std::string>(); s && n.is_string()) {
          value = *s;
        } else if (n.is_integer()) {
          value = std::to_string(*n.value<int64_t>());
        } else if (n.is_boolean()) {
          value = *n.value<bool>() ? "true" : "false";
        } else {
          return Status::Invalid("config file " + config_path_ + ": setting '" + e.name +
                                 "' must be a string, integer or boolean");
        }
        have = true;
      }
    }
    if (e.flag_target) {
      if (have) {
        Result<bool> b = ParseBool(e.name, value);
        if (!b.ok()) return b.status();
        *e.flag_target = *b;
      }
      continue;
    }
    *e.target = have ? value : e.default_value;
    if (have) explicit_.insert(e.name);
  }
  return Status::Ok();
}

Result<uint32_t> ParseMode(const std::string& setting, const std::string& value) {
  if (value.empty() || value.size() > 4) {
    return Status::Invalid("--" + setting + " must be an octal mode such as 0750, not '" + value +
                           "'");
  }
  uint32_t mode = 0;
  for (char c : value) {
    if (c < '0' || c > '7') {
      return Status::Invalid("--" + setting + " must be an octal mode such as 0750, not '" + value +
                             "'");
    }
    mode = mode * 8 + static_cast<uint32_t>(c - '0');
  }
  return mode;
}

Status ParseOwner(const std::string& value, std::optional<uint32_t>* uid,
                  std::optional<uint32_t>* gid) {
  if (value.empty()) return Status::Ok();
  auto num = [&](const std::string& s) -> std::optional<uint32_t> {
    if (s.empty() || s.size() > 10) return std::nullopt;
    uint64_t n = 0;
    for (char c : s) {
      if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
      n = n * 10 + static_cast<uint64_t>(c - '0');
    }
    if (n > 0xFFFFFFFEu) return std::nullopt;
    return static_cast<uint32_t>(n);
  };
  size_t colon = value.find(':');
  std::optional<uint32_t> u = num(value.substr(0, colon));
  std::optional<uint32_t> g = colon == std::string::npos ? u : num(value.substr(colon + 1));
  if (!u || !g) {
    return Status::Invalid("--owner must be UID or UID:GID in numbers (e.g. 1001:1001), not '" +
                           value + "'");
  }
  *uid = u;
  *gid = g;
  return Status::Ok();
}

Result<uint64_t> ParseBytes(const std::string& setting, const std::string& value) {
  size_t i = 0;
  uint64_t n = 0;
  while (i < value.size() && std::isdigit(static_cast<unsigned char>(value[i]))) {
    n = n * 10 + static_cast<uint64_t>(value[i] - '0');
    ++i;
    if (n > (1ull << 50)) break;
  }
  std::string unit = value.substr(i);
  uint64_t mult = 0;
  if (unit.empty() || unit == "B") mult = 1;
  if (unit == "KiB" || unit == "K") mult = 1024;
  if (unit == "MiB" || unit == "M") mult = 1024 * 1024;
  if (unit == "GiB" || unit == "G") mult = 1024ull * 1024 * 1024;
  if (unit == "KB") mult = 1000;
  if (unit == "MB") mult = 1000 * 1000;
  if (unit == "GB") mult = 1000ull * 1000 * 1000;
  if (i == 0 || mult == 0 || n > (1ull << 40)) {
    return Status::Invalid("--" + setting + " must be a size such as 8MiB or 1048576, not '" +
                           value + "'");
  }
  return n * mult;
}

Result<int64_t> ParseInt(const std::string& setting, const std::string& value, int64_t min,
                         int64_t max) {
  char* end = nullptr;
  errno = 0;
  long long n = std::strtoll(value.c_str(), &end, 10);
  if (value.empty() || *end != '\0' || errno != 0 || n < min || n > max) {
    return Status::Invalid("--" + setting + " must be a whole number from " + std::to_string(min) +
                           " to " + std::to_string(max) + ", not '" + value + "'");
  }
  return static_cast<int64_t>(n);
}

Status ParseListen(const std::string& value, std::string* host, int* port) {
  size_t colon = value.rfind(':');
  if (colon == std::string::npos) {
    return Status::Invalid("--webhook-listen must be HOST:PORT (e.g. 127.0.0.1:8089), not '" +
                           value + "'");
  }
  std::string h = value.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  if (h.empty()) h = "127.0.0.1";
  Result<int64_t> p = ParseInt("webhook-listen port", value.substr(colon + 1), 0, 65535);
  if (!p.ok()) return p.status();
  *host = h;
  *port = static_cast<int>(*p);
  return Status::Ok();
}

Result<bool> ParseBool(const std::string& setting, const std::string& value) {
  std::string v;
  for (char c : value) v += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (v == "1" || v == "true" || v == "yes" || v == "on") return true;
  if (v == "0" || v == "false" || v == "no" || v == "off") return false;
  return Status::Invalid("--" + setting + " must be true or false, not '" + value + "'");
}

}  // namespace ds::app
