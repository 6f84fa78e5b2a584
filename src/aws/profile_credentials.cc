// ProfileCredentials (providers.h): a profile of the shared config and credentials files (an
// INI dialect: "[section]", "key = value", comments from '#' or ';' at the start of a line,
// indented lines continuing a key with sub-keys), with static keys or credential_process; and
// RunCredentialProcess.
#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "aws/providers.h"
#include "aws/variables.h"
#include "fs/posix.h"

namespace ds::aws {
namespace {

using Section = std::map<std::string, std::string>;
using Sections = std::map<std::string, Section>;

constexpr std::chrono::seconds kProcessTimeout{60};
constexpr size_t kMaxProcessOutput = 64 * 1024;

// Profiles of one file. In the config file a profile is "[profile NAME]" ("[default]" too);
// in the credentials file "[NAME]". Other config sections (sso-session, services) are dropped.
Sections ParseProfileFile(const std::string& text, bool config_file) {
  Sections out;
  Section* current = nullptr;
  bool in_subsection = false;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string_view raw(text.data() + start, end - start);
    start = end + 1;
    std::string line = TrimSpace(raw);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line.front() == '[') {
      in_subsection = false;
      current = nullptr;
      size_t close = line.find(']');
      if (close == std::string::npos) continue;
      std::string name = TrimSpace(line.substr(1, close - 1));
      if (config_file) {
        if (name.rfind("profile ", 0) == 0 || name.rfind("profile\t", 0) == 0) {
          name = TrimSpace(name.substr(8));
        } else if (name != "default") {
          continue;
        }
      }
      current = &out[name];
      continue;
    }
    if (current == nullptr) continue;
    const bool indented = !raw.empty() && (raw[0] == ' ' || raw[0] == '\t');
    if (indented && in_subsection) continue;  // "  max_concurrent_requests = 20" under "s3 ="
    size_t eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string key = LowerAscii(TrimSpace(line.substr(0, eq)));
    std::string value = TrimSpace(line.substr(eq + 1));
    in_subsection = value.empty();
    if (!in_subsection) (*current)[key] = value;
  }
  return out;
}

// The first word of a command line (the program), for messages.
std::string ProgramOf(const std::string& command) {
  std::string c = TrimSpace(command);
  size_t sp = c.find_first_of(" \t");
  return sp == std::string::npos ? c : c.substr(0, sp);
}

std::string FirstLine(const std::string& text) {
  std::string t = TrimSpace(text);
  size_t nl = t.find('\n');
  if (nl != std::string::npos) t = t.substr(0, nl);
  if (t.size() > 200) t = t.substr(0, 200) + "…";
  return t;
}

}  // namespace

Result<Credentials> RunCredentialProcess(const std::string& command,
                                         std::chrono::milliseconds timeout) {
  const std::string what = "credential_process '" + ProgramOf(command) + "'";
  Result<posix::CommandOutput> run =
      posix::RunShellCommand(command, what, timeout, kMaxProcessOutput);
  if (!run.ok()) return run.status();
  if (run->exit_code != 0) {
    std::string err = FirstLine(run->err);
    return Status::Unavailable(what + " exited with status " + std::to_string(run->exit_code) +
                               (err.empty() ? "" : ": " + err));
  }
  nlohmann::json doc = nlohmann::json::parse(run->out, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) return Status::Invalid(what + ": its output is not a JSON object");
  auto text = [&](const char* key) -> std::string {
    auto it = doc.find(key);
    return it != doc.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  auto version = doc.find("Version");
  if (version == doc.end() || !version->is_number_integer() || version->get<int64_t>() != 1) {
    return Status::Invalid(what + ": its output must have \"Version\": 1");
  }
  Credentials c;
  c.access_key_id = text("AccessKeyId");
  c.secret_access_key = text("SecretAccessKey");
  c.session_token = text("SessionToken");
  if (c.access_key_id.empty() || c.secret_access_key.empty()) {
    return Status::Invalid(what + ": its output lacks AccessKeyId or SecretAccessKey");
  }
  if (std::string expiration = text("Expiration"); !expiration.empty()) {
    Result<std::chrono::system_clock::time_point> when =
        ParseIso8601(expiration, what + " Expiration");
    if (!when.ok()) return when.status();
    c.expiration = *when;
  }
  return c;
}

ProfileCredentials::ProfileCredentials(const Variables& vars) {
  profile_ = Get(vars, "AWS_PROFILE");
  profile_named_ = !profile_.empty();
  if (profile_.empty()) profile_ = "default";
  const std::string home = Get(vars, "HOME");
  credentials_file_ = Get(vars, "AWS_SHARED_CREDENTIALS_FILE");
  config_file_ = Get(vars, "AWS_CONFIG_FILE");
  if (credentials_file_.empty()) credentials_file_ = "~/.aws/credentials";
  if (config_file_.empty()) config_file_ = "~/.aws/config";
  credentials_file_ = ExpandHome(credentials_file_, home);
  config_file_ = ExpandHome(config_file_, home);
  if (credentials_file_.empty() || config_file_.empty()) {
    home_missing_ = "HOME is not set, so ~/.aws cannot be found";
  }
}

std::string ProfileCredentials::Name() const { return "profile '" + profile_ + "'"; }

Result<Credentials> ProfileCredentials::Fetch() {
  Section merged;
  std::vector<std::string> files_read;
  // The config file first, so that the credentials file's keys win.
  for (const auto& [path, is_config] : {std::pair<std::string, bool>{config_file_, true},
                                        std::pair<std::string, bool>{credentials_file_, false}}) {
    if (path.empty()) continue;
    Result<std::string> text = ReadSmallFile(path, is_config ? "config file" : "credentials file");
    if (!text.ok()) {
      if (text.status().code() == Code::kNotFound) continue;
      return text.status();
    }
    files_read.push_back(path);
    Sections sections = ParseProfileFile(*text, is_config);
    auto it = sections.find(profile_);
    if (it == sections.end()) continue;
    for (const auto& [k, v] : it->second) merged[k] = v;
    merged["\x01found"] = "1";
  }
  std::string where = config_file_ + ", " + credentials_file_;
  if (!home_missing_.empty() && files_read.empty()) where = home_missing_;
  if (merged.erase("\x01found") == 0) {
    std::string why = files_read.empty() ? "no shared config or credentials file (" + where + ")"
                                         : "no profile '" + profile_ + "' in " + where;
    if (profile_named_) return Status::Invalid("AWS_PROFILE=" + profile_ + ": " + why);
    return Status::NotFound(why);
  }
  auto get = [&](const char* k) {
    auto it = merged.find(k);
    return it == merged.end() ? std::string() : it->second;
  };
  Credentials c;
  c.access_key_id = get("aws_access_key_id");
  c.secret_access_key = get("aws_secret_access_key");
  c.session_token = get("aws_session_token");
  if (!c.access_key_id.empty() || !c.secret_access_key.empty()) {
    if (c.access_key_id.empty() || c.secret_access_key.empty()) {
      return Status::Invalid("profile '" + profile_ + "' has only one of aws_access_key_id and " +
                             "aws_secret_access_key (" + where + ")");
    }
    return c;
  }
  if (std::string process = get("credential_process"); !process.empty()) {
    return RunCredentialProcess(process, kProcessTimeout);
  }
  for (const char* unsupported :
       {"role_arn", "source_profile", "credential_source", "web_identity_token_file", "sso_session",
        "sso_start_url", "sso_account_id", "login_session"}) {
    if (!get(unsupported).empty()) {
      return Status::Invalid(
          "profile '" + profile_ + "' uses " + unsupported +
          ", which delete-sync does not support (no role assumption from profiles, no SSO): "
          "point AWS_PROFILE at a profile whose credential_process is, e.g., `aws configure "
          "export-credentials --profile " +
          profile_ + " --format process`");
    }
  }
  return Status::NotFound("profile '" + profile_ + "' has no credentials (" + where + ")");
}

}  // namespace ds::aws
