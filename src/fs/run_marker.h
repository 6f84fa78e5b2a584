// The run marker of a long-running process (serve): a file made when it starts and removed when
// it stops cleanly. A marker left behind shows that a run ended without a clean stop (SIGKILL,
// a crash, a power cut, the host's death): the events sent to it meanwhile may have been lost,
// so the next run must not trust the cache without a reconcile pass.
//
// Markers live in one folder (by default <cache>/.delete-sync/running/) and are named
// "<host token>-<pid>" (posix_cache.h: HostToken), so that several processes and hosts can
// share the folder. Only markers of this host are judged: one whose process is gone, or whose
// pid is ours (a restarted container's process 1), is an unclean stop. A marker of another host
// cannot be judged from here and is left alone.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace ds {

struct UncleanRun {
  std::string marker;  // the file's name
  std::string detail;  // what the marker says: pid, start time
};

class RunMarker {
 public:
  // Creates this process's marker in `dir` (created, mode 0700, when missing) and fills
  // `unclean` with the markers of earlier runs on this host that did not stop cleanly (those
  // markers are removed: they are reported once). `what` names the process in the marker.
  static Result<std::unique_ptr<RunMarker>> Create(const std::string& dir, const std::string& what,
                                                   std::vector<UncleanRun>* unclean);
  // Removes the marker: the run stopped cleanly. The destructor does the same (a process that
  // returns, also after an error at start, stopped cleanly; only a killed or crashed process
  // leaves its marker).
  Status Release();
  ~RunMarker();
  RunMarker(const RunMarker&) = delete;
  RunMarker& operator=(const RunMarker&) = delete;
  const std::string& path() const { return path_; }

 private:
  explicit RunMarker(std::string path) : path_(std::move(path)) {}
  std::string path_;
  bool released_ = false;
};

}  // namespace ds
