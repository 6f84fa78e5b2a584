// Log format (text or JSON lines) and destination (stderr or a file reopened on SIGHUP, for
// logrotate), and the one structured line per applied or refused event.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "config.h"
#include "core/ops_metrics.h"

namespace ds::app {

struct LogSettings {
  std::string format, file;
  void Register(Settings& s);
};

// Replaces the sinks and the format of the default logger (after SetupLogging set the level).
// "json": one JSON object per line {"time","level","msg",...fields}; "text": the usual lines.
Status ApplyLogSettings(const LogSettings& s);

// Reopens the log file (after logrotate moved it); no-op when logging to stderr.
Status ReopenLogFile();

// Logs `msg` with structured fields: JSON members in json format, " name=value" in text
// (values with spaces or quotes are quoted). Values must never be secrets.
void LogWithFields(int spdlog_level, const std::string& msg, const LogFields& fields);

}  // namespace ds::app
