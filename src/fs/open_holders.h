// Which processes on this host hold files under a folder open, from /proc/<pid>/fd. An
// unlinked file stays readable through an open descriptor; erase names such processes.
// Only descriptors are seen: memory mappings (/proc/<pid>/map_files) and processes in other
// PID namespaces are not, and other users' processes only when running as root.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "core/erase.h"

namespace ds {

// Every descriptor whose target is `root` or under it (`root` is resolved with realpath first).
// A target ending in " (deleted)" is reported with the suffix stripped and `deleted` set.
// `complete` is set false when some process's descriptors could not be read (permission).
// `proc` is the proc mount, for tests.
Status ScanOpenHolders(const std::string& root, std::vector<OpenHolder>* holders, bool* complete,
                       const std::string& proc = "/proc");

}  // namespace ds
