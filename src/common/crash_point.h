// Crash points for the reliability suite (docs/RELIABILITY.md, "Crash points"): with
// DELETE_SYNC_CRASH_AT=<name>[:<n>] in its environment, the process kills itself with SIGKILL
// the n-th time (default: the first) it reaches the point called <name>, as a power cut or
// the OOM killer would stop it there (as pid 1 of a PID namespace, which cannot signal itself,
// it calls _exit(137) instead). Without the variable (always, in production) a point
// costs one check of a function-local static. The names are listed in kCrashPoints.
#pragma once

#include <array>
#include <string_view>

namespace ds {

inline constexpr std::array<std::string_view, 9> kCrashPoints = {
    "download-written",       // a download is in its temp file and fsynced, not published
    "publish-before-rename",  // in the publication's transaction, before the rename
    "publish-after-rename",   // renamed into place, the state not yet committed
    "removal-recorded",       // a removal's audit record durable, its file not yet unlinked
    "removal-unlinked",       // a removal's file unlinked, its folder not yet fsynced
    "removal-before-prune",   // unlinks durable, empty folders not yet pruned
    "audit-partial-write",    // half of an audit append written (a torn record)
    "audit-before-sync",      // an audit append written, not yet fdatasynced
    "removal-before-commit",  // audit records and unlinks durable, the state not committed
};

// Dies here (SIGKILL) when DELETE_SYNC_CRASH_AT names this point and its count is reached.
void CrashPoint(std::string_view name);

// Whether DELETE_SYNC_CRASH_AT is set (and valid): for points that must prepare something
// before they can crash (e.g. write half a record first).
bool CrashPointArmed(std::string_view name);

}  // namespace ds
