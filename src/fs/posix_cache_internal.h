// Internals of PosixCache shared by its files (private: included only by src/fs/posix_cache*.cc,
// posix_temp_file.cc and posix_removal_batch.cc). What lives where:
//   posix_cache.cc          PosixCache::Open, Remove, Stat, the disk reserve
//   posix_cache_paths.cc    the safe path walk: checking relative paths, opening each folder
//                           component with openat + O_NOFOLLOW (never leaving the root), and
//                           the one-entry operations at a folder descriptor (unlink, stat, prune)
//   posix_temp_file.cc      temp files: names, PosixTempFile (write, publish), CreateTemp,
//                           CleanTemp, HostToken
//   posix_removal_batch.cc  PosixRemovalBatch: parallel lookups and unlinks, one fsync per folder
//   posix_cache_walk.cc     PosixCache::Walk: listing the cache in S3 key order
//
// Errors are reported with posix::PosixError (fs/posix.h): EACCES/EPERM give kPermissionDenied,
// ENAMETOOLONG kInvalidArgument, others kIoError.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <sys/types.h>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "core/cache_fs.h"
#include "fs/posix.h"
#include "fs/posix_cache.h"

namespace ds::posix_cache_internal {

// What a PosixCache (and every TempFile and RemovalBatch it made) shares: read-only after Open.
struct State {
  std::string root_path;
  UniqueFd root;
  UniqueFd reserved;
  UniqueFd tmp;
  PosixCacheOptions opts;
  std::string host_token;  // "<hostname>.<pid namespace inode>", see posix_cache.h
};

inline constexpr int kDirOpenFlags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
// Bounds the retries of races with concurrent creators / pruners of the same folders.
inline constexpr int kMaxRaceRetries = 16;
inline constexpr size_t kMaxSegment = 255;  // NAME_MAX on Linux file systems

// ---- paths (posix_cache_paths.cc) ----

// For messages: PrintableKey (core/key_path.h) without truncation: control bytes (and NUL) and
// the backslash as \xNN, the rest as is.
std::string Printable(const std::string& s);
// Printable(s) in single quotes.
std::string Quoted(const std::string& s);

// Checks a relative cache path and splits it into segments. kInvalidArgument ("invalid cache
// path '<rel>': <why>") for an empty or absolute path, a NUL byte, an empty, '.' or '..' segment,
// a segment over kMaxSegment bytes, or a path inside the reserved folder.
Result<std::vector<std::string>> SplitRelPath(const std::string& rel);

// The first `count` segments joined with '/' ("" for 0).
std::string JoinPrefix(const std::vector<std::string>& segs, size_t count);

// fchown to opts.uid/gid (when set), then fchmod to `mode` (after chown: chown may clear set-id
// bits). `what` names the file in messages ("chown <what>: ...", "chmod <what>: ...").
Status ApplyOwnerAndMode(const State& st, int fd, mode_t mode, const std::string& what);

// Descriptors of the folders on the way to a path: level 0 is the root (not owned), level i
// the folder segs[0..i-1].
struct DirChain {
  int root = -1;
  std::vector<UniqueFd> dirs;
  int at(size_t level) const { return level == 0 ? root : dirs[level - 1].get(); }
  int last() const { return at(dirs.size()); }
};

// Opens the folders segs[0..count-1] of `rel` one by one from the root without following
// symbolic links (openat + O_NOFOLLOW), so the chain never leaves the root.
// create=false: a missing component, or one that is a file, gives kNotFound.
// create=true: missing folders are created (dir_mode, owner, fsync of the folder holding them);
// a component that is a file gives kConflict.
// Either way a component that is a symbolic link gives kConflict ("refusing cache path ...: path
// component '...' is a symbolic link"). Races with a concurrent Remove pruning a folder on the
// way are retried from the root (at most kMaxRaceRetries times).
Result<DirChain> OpenDirs(const State& st, const std::string& rel,
                          const std::vector<std::string>& segs, size_t count, bool create);

struct DirCloser {
  void operator()(DIR* d) const { ::closedir(d); }
};
using DirPtr = std::unique_ptr<DIR, DirCloser>;

// A fresh stream over folder `dir_fd` (its own offset, so concurrent listings don't interfere).
// `what` names the folder in messages.
Result<DirPtr> OpenListing(int dir_fd, const std::string& what);

// Unlinks the file `last` of the folder `parent` (the folder of `rel_path`). true: unlinked;
// false: nothing there. A folder there: kConflict ("cannot remove '<rel>': it is a folder").
Result<bool> UnlinkIn(const State& st, const std::string& rel_path, int parent,
                      const std::string& last);

// Unlinks the file at `rel_path` (split into `segs`). true: unlinked, and `chain` holds the
// folders down to the file's folder (not yet fsynced). false: nothing there (or a parent is
// missing or a file).
Result<bool> UnlinkFile(const State& st, const std::string& rel_path,
                        const std::vector<std::string>& segs, DirChain* chain);

// What is at `last` in the folder `parent` (the folder of `rel_path`), without following a
// symbolic link (PosixCache::Stat).
Result<CacheEntryInfo> StatIn(const State& st, const std::string& rel_path, int parent,
                              const std::string& last);

// Removes the folders of `chain` (the first `depth` of `segs`) that are empty, deepest first,
// never the root (level 0), and fsyncs the folder that lost the last one. Any failure
// (ENOTEMPTY/EEXIST: not empty or a concurrent writer; ENOENT: pruned by someone else; ...) just
// ends the pruning. Best effort: pruning is tidying up, its durability is not something we
// acknowledge.
void PruneEmpty(const DirChain& chain, const std::vector<std::string>& segs, size_t depth,
                const std::string& where);

// ---- temp files (posix_temp_file.cc) ----

// "<hostname>.<pid namespace inode>" (HostToken in posix_cache.h).
std::string MakeHostToken();
// A fresh "dl-<host token>-<pid>-<16 random hex>.part".
std::string MakeTempName(const std::string& host_token);

}  // namespace ds::posix_cache_internal
