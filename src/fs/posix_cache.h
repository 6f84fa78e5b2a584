// CacheFs on a POSIX file system (local disk, NFS, EFS).
//
// Every path operation is done relative to an O_DIRECTORY descriptor of the root with the *at()
// system calls, and each relative path is resolved one segment at a time with O_NOFOLLOW /
// AT_SYMLINK_NOFOLLOW: a symbolic link planted inside the cache (`<root>/evil -> /etc`) can
// never make us create, replace or unlink anything outside the root. A path whose folder
// component is a symbolic link is refused with kConflict ("path component 'evil' is a symbolic
// link"). A symbolic link at the *final* component is treated as an entry of its own: Publish
// replaces the link itself, Remove unlinks the link itself, Stat reports it without following.
//
// Layout: `<root>/.delete-sync/` (kReservedDir, mode 0700) holds service files;
// `<root>/.delete-sync/tmp/` (mode 0700) holds files being downloaded. Temp files are named
// `dl-<host>-<pid>-<16 hex>.part` where <host> is the sanitised host name plus the inode of the
// PID namespace ("myhost.4026531836"), so that two containers or hosts sharing one cache never
// mistake each other's PIDs for their own.
//
// Thread safety: every method may be called from several threads at once; the only shared
// state is a few read-only descriptors. Several processes (on one or several hosts) may use the
// same cache; races between a Remove pruning an empty folder and a Publish creating a file in
// it are retried. A TempFile keeps the descriptors it needs alive on its own, so it may outlive
// the PosixCache that created it.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "common/status.h"
#include "core/cache_fs.h"

namespace ds {

// "<hostname>.<pid namespace inode>": names this host (and PID namespace) in the names of files
// that several hosts may share (download temp files, serve's run markers), so that a process id
// is only ever compared with the processes of its own host.
std::string HostToken();
// Whether a process of this host (PID namespace) with this id is running; our own id counts.
bool ProcessOnThisHostAlive(pid_t pid);

struct PosixCacheOptions {
  // Permission bits of published files and of folders created for them. Applied with
  // fchmod() after creation, so the process umask does not interfere.
  mode_t file_mode = 0644;
  mode_t dir_mode = 0755;
  // When set, new files and folders (including the root when Open creates it and the reserved
  // folders) are chowned to these ids. Needs CAP_CHOWN unless they are our own ids.
  std::optional<uint32_t> uid;
  std::optional<uint32_t> gid;
  // CleanTemp removes any temp file not written to for this long, whoever owns it.
  std::chrono::seconds stale_temp_age{3600};
  // How many lookups, unlinks and folder fsyncs of one removal batch run at once. On a shared
  // file system each is a round trip to its metadata server (CephFS MDS, NFS server), which
  // answers many at a time; on a local disk they cost little either way.
  size_t parallelism = 16;
};

namespace posix_cache_internal {
struct State;
}

class PosixCache : public CacheFs {
 public:
  // Opens the cache at `root` (a symbolic link *as the root itself* is followed once, here).
  // Creates `root` if it is missing (its parent must exist; not `mkdir -p`, so that an
  // unmounted file system is less likely to be filled by mistake), then the reserved folders.
  // Fails with kInvalidArgument when root is not a folder or the reserved folder is a symbolic
  // link or a file, kPermissionDenied when root or the reserved folders are not writable.
  static Result<std::unique_ptr<PosixCache>> Open(const std::string& root,
                                                  const PosixCacheOptions& opts = {});

  ~PosixCache() override;
  PosixCache(const PosixCache&) = delete;
  PosixCache& operator=(const PosixCache&) = delete;

  // A new, empty temp file with mode file_mode (and uid/gid when set). Its Publish() fsyncs
  // the data, creates missing parent folders (mode dir_mode, fsyncing the folder that got a
  // new entry), renames the temp over the final path and fsyncs the final folder.
  Result<std::unique_ptr<TempFile>> CreateTemp() override;

  // unlink + fsync of the folder that held the file, then removes parent folders that became
  // empty, up to (not including) the root. A parent that is missing or is a file: ok(false).
  // A folder at `rel_path`: kConflict. A symbolic link at `rel_path` is unlinked (the link, not
  // its target): ok(true).
  Result<bool> Remove(const std::string& rel_path) override;

  // Removals with one fsync per folder for the whole batch: StatMany and RemoveMany open each
  // folder once and look at or unlink its files `parallelism` at a time, Commit fsyncs each
  // folder that lost a file once (in parallel), then prunes the folders that became empty
  // (best effort, as Remove does). Folders are fsynced and closed early when the batch holds
  // more than 256 of them, to bound its open descriptors.
  std::unique_ptr<RemovalBatch> BeginRemovals() override;

  // lstat-like: never follows a symbolic link. A symbolic link or other special file at the
  // final component reports exists=true, is_dir=false, size=its lstat size. A missing parent,
  // or a parent that is a file, reports exists=false.
  Result<CacheEntryInfo> Stat(const std::string& rel_path) override;

  // Removes crash leftovers from `<root>/.delete-sync/tmp/` and returns how many. A temp file
  // is removed when EITHER
  //   (a) its name says it was created on this host and in this PID namespace by a process
  //       that is no longer alive (kill(pid, 0) fails with ESRCH), OR
  //   (b) its mtime is older than options.stale_temp_age (1 hour by default) — whoever made it.
  // Files with names we did not generate (including NFS ".nfsXXXX" silly-rename files) are
  // only removed by rule (b). Folders in the tmp folder are left alone.
  // Consequence: this is safe to call while other processes (even on other hosts) write to the
  // same cache, as long as no download goes an hour without writing a single byte; if one does,
  // its Publish() fails (the temp is gone) and the download has to be retried.
  Result<size_t> CleanTemp() override;

  // Calls `visit` for every regular file whose relative path starts with `prefix` (a byte
  // prefix, like an S3 list prefix: "a" matches "a-b", "a/b" and "a0"), in S3 key order, i.e.
  // sorted as byte strings by full relative path. Folders, symbolic links (at any depth,
  // including inside `prefix`) and other special files are not reported; neither is the
  // reserved folder. File names that are not valid keys are still reported as they are.
  // Memory: one folder listing per level of the current path, not the whole tree.
  // The visitor may call other methods of this cache (e.g. Remove the file just reported).
  // Files added or removed during the walk may or may not be reported.
  // Returns kInvalidArgument for a prefix whose folder part is not a valid relative path.
  Status Walk(const std::string& prefix, const CacheWalkVisitor& visit) const override;

  // The reserve is <root>/.delete-sync/reserve, allocated with posix_fallocate (so it really
  // holds blocks; a file system without fallocate gets a written file). FreeBytes: statvfs's
  // f_bavail * f_frsize of the cache's file system.
  Status EnsureReserve(uint64_t bytes) override;
  Result<bool> ReleaseReserve() override;
  Result<bool> HasReserve() override;
  Result<uint64_t> FreeBytes() override;

  // The root as given to Open.
  const std::string& root() const;

 private:
  explicit PosixCache(std::shared_ptr<const posix_cache_internal::State> state);

  std::shared_ptr<const posix_cache_internal::State> state_;
};

}  // namespace ds
