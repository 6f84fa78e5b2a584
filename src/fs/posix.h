// The POSIX layer (issue 18, "one POSIX layer", in the spirit of leveldb's Env): the system
// calls that fs/, audit/ and the app repeat, each behind one function with a stated contract.
//
//   - errno to Status: ErrnoText, PosixError, IoError
//   - owned descriptors: UniqueFd (fs/unique_fd.h, included here)
//   - durability: FsyncFd, FsyncDir, FsyncParentDir, WriteAll, WriteFileDurably
//   - locks between processes: FileLock (flock(2))
//   - child processes: RunShellCommand (posix_process.cc)
//
// Messages. Every failure's message is "<what>: <strerror text>", where <what> is either given by
// the caller (the functions on a descriptor: FsyncFd, WriteAll) or is "<system call> <path>"
// (the functions on a path: "open /a/b", "fsync /a/b", "create /a/b.tmp", "write /a/b.tmp").
// Tests and docs quote some of these messages: keep their form.
//
// Codes. Two ways to turn an errno into a code, because the callers have always reported errors
// this way and their codes reach exit codes and HTTP statuses:
//   - PosixError: EACCES and EPERM give kPermissionDenied, ENAMETOOLONG kInvalidArgument, any
//     other errno kIoError. Used by the cache (PosixCache), where a refused permission is a
//     setting to fix, not a failing disk.
//   - IoError: kIoError whatever the errno. The functions on a path (FsyncDir, WriteFileDurably,
//     FileLock) report this way: their callers (erasure receipts, run markers, the pass lock, the
//     audit log) report any failure of a service file alike.
// FsyncFd and WriteAll use PosixError; fsync(2) and write(2) never fail with EACCES or
// ENAMETOOLONG, and with EPERM only on a sealed memfd, so for the files they are used on the
// code is kIoError either way.
//
// Thread safety: every function may be called from several threads at once. A FileLock object
// is not itself thread-safe (one owner at a time), like a UniqueFd.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

#include "common/status.h"
#include "fs/unique_fd.h"

namespace ds::posix {

// strerror(err), thread-safe (strerror_r): "No such file or directory".
std::string ErrnoText(int err);

// "<what>: <ErrnoText(err)>" with the code described above (EACCES/EPERM: kPermissionDenied,
// ENAMETOOLONG: kInvalidArgument, else kIoError). `err` must not be 0.
Status PosixError(std::string_view what, int err);

// "<what>: <ErrnoText(err)>" as kIoError, whatever `err` is.
Status IoError(std::string_view what, int err);

// fsync(fd), retried on EINTR. OK: what was written through `fd` (for a folder: the entries
// added, renamed or removed in it) survives a crash or power cut. Failure:
// PosixError("fsync <what>", errno); nothing is known durable (after a failed fsync the kernel
// may have dropped the dirty pages: do not retry and assume success).
Status FsyncFd(int fd, std::string_view what);

// Writes all of `bytes` to `fd` at its offset, retrying EINTR and short writes. OK: every byte
// was handed to the kernel (not durable: FsyncFd). Failure: PosixError("write <what>", errno),
// or kIoError "write <what>: wrote nothing" when write(2) returned 0; an unknown prefix of
// `bytes` may have been written.
Status WriteAll(int fd, std::string_view bytes, std::string_view what);

// Opens the folder `dir` (O_RDONLY | O_DIRECTORY) and fsyncs it. OK: the entries made, renamed
// or removed in `dir` before the call survive a crash. Failure: IoError("open <dir>", errno)
// when it cannot be opened (ENOENT: missing; ENOTDIR: not a folder), else
// IoError("fsync <dir>", errno). Nothing is changed either way.
Status FsyncDir(const std::string& dir);

// FsyncDir of the folder holding `file_path` (the part before its last '/'; "." when there is
// none, "/" for "/name").
Status FsyncParentDir(const std::string& file_path);

// How WriteFileDurably creates its file.
struct WriteFileOptions {
  // true: O_EXCL, an existing `path` (even a symbolic link) is never touched: the call fails
  // with IoError("create <path>", EEXIST) and leaves it as it was. false: O_TRUNC, an existing
  // file is truncated and rewritten in place (not atomic: a crash may leave it partly written;
  // write a temp file and link or rename it for atomicity).
  bool exclusive = false;
  // true: O_NOFOLLOW, a symbolic link at `path` fails the call (ELOOP) instead of being followed.
  bool no_follow = false;
  // true: the folder holding `path` is fsynced too (FsyncParentDir), so the file's name survives
  // a crash; false: only the file's data is (the caller fsyncs the folder itself, e.g. after
  // linking the file to its final name).
  bool sync_folder = true;
  // Permission bits of a file it creates (subject to the umask, as open(2)).
  mode_t mode = 0600;
};

// Creates (or truncates) `path`, writes all of `bytes`, fsyncs it, closes it and, with
// opts.sync_folder, fsyncs its folder. OK: `path` holds exactly `bytes`, durably (its name too
// with sync_folder). Failure (kIoError): "create <path>: ...", "write <path>: ...",
// "fsync <path>: ..." or FsyncParentDir's message. When the failure came after the file was
// opened (a write or fsync failed), the file is removed (whatever it held before is lost when
// it was truncated); when the open failed, nothing was changed. A failed folder fsync leaves the
// file in place (its data is durable, its name may not be).
Status WriteFileDurably(const std::string& path, std::string_view bytes,
                        const WriteFileOptions& opts = {});

// An flock(2) lock on a lock file, between processes (and, over NFS, hosts: Linux's NFS client
// emulates flock with a whole-file lock on the server; CephFS has its own). flock, not fcntl:
// the lock belongs to the open file description, so two FileLocks on one file conflict even in
// one process, and a forked child shares its parent's. Only cooperating FileLocks (and flock
// users) are excluded: it is advisory.
//
// The lock is released by Unlock() or when the object goes away (LOCK_UN, then the descriptor
// is closed: also released when a forked child still holds a copy of the descriptor).
class FileLock {
 public:
  enum class Kind { kShared, kExclusive };

  // Opens the lock file `path` (O_RDWR | O_CREAT, mode 0600: made when missing) without locking
  // it. Failure: kIoError "cannot open <path>: <strerror>".
  static Result<FileLock> Open(const std::string& path);

  FileLock() = default;
  ~FileLock() { Unlock(); }
  FileLock(FileLock&&) noexcept = default;
  FileLock& operator=(FileLock&& other) noexcept;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

  // Takes the lock without waiting (LOCK_NB; EINTR retried). OK: held. kConflict
  // "<path> is locked": another open file description holds a conflicting lock (nothing held).
  // Other failures: kIoError "cannot lock <path>: <strerror>". Taking it again while held
  // converts it to `kind` (flock's rule; the conversion is not atomic).
  Status TryLock(Kind kind);

  // Releases the lock, if held (the file stays open: TryLock may take it again). Does nothing on
  // a FileLock that was moved from or default-made.
  void Unlock();

  int fd() const { return fd_.get(); }
  const std::string& path() const { return path_; }

 private:
  FileLock(UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}

  UniqueFd fd_;
  std::string path_;
};

// What a command run by RunShellCommand left.
struct CommandOutput {
  int exit_code = 0;  // its exit status, or 128 + the signal that ended it
  std::string out;    // its standard output
  std::string err;    // its standard error
};

// Runs `command` with /bin/sh -c in a process group of its own, with the process's environment,
// standard input from /dev/null, and collects its standard output and error (each at most
// `max_output` bytes; the rest is read and dropped). OK once it ended, whatever its exit status.
// kUnavailable "<what> timed out after N ms" when it runs longer than `timeout` (its process
// group is then killed with SIGKILL and reaped); kIoError for a failed pipe, spawn or wait
// ("spawn <what>: <strerror>"). `what` names the command in messages (it is never the command
// line itself, which may carry secrets).
Result<CommandOutput> RunShellCommand(const std::string& command, std::string_view what,
                                      std::chrono::milliseconds timeout, size_t max_output);

}  // namespace ds::posix
