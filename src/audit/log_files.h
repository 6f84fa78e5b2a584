// Private to src/audit/: the files of one audit log "<path>" (the current file and the rotated
// ones "<path>.<first>-<last>", docs/AUDIT_FORMAT.md) and the reads that the appender and the
// verifier make of them. I/O errors are kIo naming the file and errno's text. Nothing here
// takes the log's lock: a caller that needs the files to hold still holds it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "audit/audit_log.h"
#include "common/status.h"
#include "fs/posix.h"

namespace ds::audit_internal {

// strerror(err), thread-safe (the POSIX layer's).
inline std::string Errno(int err) { return posix::ErrnoText(err); }

// fsyncs the folder holding `file_path`, so that a file created or renamed in it is durable
// (posix::FsyncParentDir: "open <folder>: ..." / "fsync <folder>: ..." as kIoError).
inline Status FsyncDir(const std::string& file_path) { return posix::FsyncParentDir(file_path); }

// Reads exactly `n` bytes at offset `off` of `fd` (retrying on EINTR); a file that ends before
// is an error. `name` names the file in errors.
Status PreadAll(int fd, char* buf, size_t n, int64_t off, const std::string& name);

// The last complete lines of a file of `size` bytes (up to two, in file order, without their
// newlines), or, when it does not end with a newline, the offset where its partial line starts.
struct Tail {
  bool ends_with_newline = true;
  int64_t partial_start = 0;
  std::vector<std::string> lines;
};
// Reads them backwards from the end, 64 KiB at a time, until it has found them.
Result<Tail> ReadTail(int fd, int64_t size, const std::string& name);

// The first line of a file of `size` bytes without its newline (all of it when it has none).
Result<std::string> ReadFirstLine(int fd, int64_t size, const std::string& name);

// A rotated file "<base>.<first>-<last>" of the log "<dir>/<base>".
struct Rotated {
  int64_t first = 0, last = 0;
  std::string path;  // the log's path + ".<first>-<last>"
};

// The rotated files of the log at `path`, by first seq (then last seq). Names that do not parse
// as "<path>.<first>-<last>" (the lock file, torn-record evidence) are not listed.
Result<std::vector<Rotated>> ListRotated(const std::string& path);

// The validated last record of one file (size > 0) and, when the file has two or more, the
// check that the last one chains to the one before it.
struct FileTail {
  AuditPosition last;
  std::string last_prev;  // the last record's "prev"
  bool single = false;    // the file holds one record
};

// Reads and checks the tail of the file `name` (open as `fd`, `size` > 0 bytes): it ends with
// a newline, its last record is valid, carries an HMAC made with `key` exactly when `key` is
// set, and chains to the record before it when there is one. A refusal is kInvalidArgument
// naming the file and the problem; a failed read is kIo.
Result<FileTail> CheckFileTail(const std::string& name, int fd, int64_t size,
                               const std::optional<std::string>& key);

}  // namespace ds::audit_internal
