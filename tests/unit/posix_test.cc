// The POSIX layer (fs/posix.h): errno to Status, folder fsync, durable writes, flock locks.
#include "fs/posix.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <system_error>

#include "fakes/test_files.h"

namespace ds::posix_test {

using testfiles::ReadFile;
using testfiles::WriteFile;

// Runs `fn` in a forked child and returns its exit code (-1 when it did not exit normally).
int InChild(const std::function<int()>& fn) {
  pid_t pid = ::fork();
  if (pid == 0) ::_exit(fn());
  int status = 0;
  if (pid < 0 || ::waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

class PosixTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/posix_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::string P(const std::string& name) const { return dir_ + "/" + name; }

  std::string dir_;
};

TEST_F(PosixTest, ErrnoBecomesAStatusWithTheCallersMessage) {
  Status s = posix::PosixError("open /x", ENOENT);
  EXPECT_EQ(s.code(), Code::kIoError);
  EXPECT_EQ(s.message(), "open /x: No such file or directory");
  EXPECT_EQ(posix::PosixError("open /x", EACCES).code(), Code::kPermissionDenied);
  EXPECT_EQ(posix::PosixError("chown /x", EPERM).code(), Code::kPermissionDenied);
  EXPECT_EQ(posix::PosixError("open /x", ENAMETOOLONG).code(), Code::kInvalidArgument);
  EXPECT_EQ(posix::PosixError("write /x", ENOSPC).code(), Code::kIoError);
  // IoError: the same message, kIoError whatever the errno.
  Status io = posix::IoError("cannot open /x", EACCES);
  EXPECT_EQ(io.code(), Code::kIoError);
  EXPECT_EQ(io.message(), "cannot open /x: Permission denied");
  EXPECT_EQ(posix::ErrnoText(ENOTDIR), "Not a directory");
}

TEST_F(PosixTest, FsyncDirOfAMissingFolderOrAFileGivesTheErrnosStatus) {
  EXPECT_TRUE(posix::FsyncDir(dir_).ok());
  Status missing = posix::FsyncDir(P("missing"));
  EXPECT_EQ(missing.code(), Code::kIoError);
  EXPECT_EQ(missing.message(), "open " + P("missing") + ": No such file or directory");
  WriteFile(P("file"), "x");
  Status file = posix::FsyncDir(P("file"));
  EXPECT_EQ(file.code(), Code::kIoError);
  EXPECT_EQ(file.message(), "open " + P("file") + ": Not a directory");

  // FsyncParentDir: the folder before the last '/'.
  EXPECT_TRUE(posix::FsyncParentDir(P("not-yet-made")).ok());
  EXPECT_TRUE(posix::FsyncParentDir("relative-name").ok());  // "."
  EXPECT_TRUE(posix::FsyncParentDir("/top-level-name").ok());
  Status parent = posix::FsyncParentDir(P("missing/file"));
  EXPECT_EQ(parent.message(), "open " + P("missing") + ": No such file or directory");
}

TEST_F(PosixTest, FsyncFdAndWriteAllNameWhatFailed) {
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  UniqueFd read_end(pipe_fds[0]);
  UniqueFd write_end(pipe_fds[1]);
  EXPECT_TRUE(posix::WriteAll(write_end.get(), "hello", "the pipe").ok());
  char buf[8] = {};
  ASSERT_EQ(::read(read_end.get(), buf, sizeof buf), 5);
  EXPECT_EQ(std::string(buf, 5), "hello");

  Status w = posix::WriteAll(read_end.get(), "x", "the read end");
  EXPECT_EQ(w.code(), Code::kIoError);
  EXPECT_EQ(w.message(), "write the read end: Bad file descriptor");
  Status f = posix::FsyncFd(-1, "nothing");
  EXPECT_EQ(f.code(), Code::kIoError);
  EXPECT_EQ(f.message(), "fsync nothing: Bad file descriptor");
}

TEST_F(PosixTest, WriteFileDurablyWritesTheBytesWithItsMode) {
  const mode_t old_umask = ::umask(022);
  posix::WriteFileOptions opts;
  opts.mode = 0640;
  EXPECT_TRUE(posix::WriteFileDurably(P("new"), "first", opts).ok());
  ::umask(old_umask);
  EXPECT_EQ(ReadFile(P("new")), "first");
  struct stat sb {};
  ASSERT_EQ(::stat(P("new").c_str(), &sb), 0);
  EXPECT_EQ(sb.st_mode & 07777, 0640u);
  // Not exclusive: an existing file is truncated and rewritten.
  EXPECT_TRUE(posix::WriteFileDurably(P("new"), "2").ok());
  EXPECT_EQ(ReadFile(P("new")), "2");
  // A missing folder: nothing is made.
  Status s = posix::WriteFileDurably(P("missing/file"), "x");
  EXPECT_EQ(s.code(), Code::kIoError);
  EXPECT_EQ(s.message(), "create " + P("missing/file") + ": No such file or directory");
  EXPECT_FALSE(std::filesystem::exists(P("missing")));
}

TEST_F(PosixTest, WriteFileDurablyExclusiveRefusesAnExistingFileAndLeavesItUnchanged) {
  WriteFile(P("receipt"), "the first one");
  posix::WriteFileOptions exclusive;
  exclusive.exclusive = true;
  Status s = posix::WriteFileDurably(P("receipt"), "a second one", exclusive);
  EXPECT_EQ(s.code(), Code::kIoError);
  EXPECT_EQ(s.message(), "create " + P("receipt") + ": File exists");
  EXPECT_EQ(ReadFile(P("receipt")), "the first one");

  // Not even through a symbolic link (O_EXCL never follows one), dangling or not.
  ASSERT_EQ(::symlink(P("receipt").c_str(), P("link").c_str()), 0);
  EXPECT_FALSE(posix::WriteFileDurably(P("link"), "through the link", exclusive).ok());
  EXPECT_EQ(ReadFile(P("receipt")), "the first one");
  ASSERT_EQ(::symlink(P("nowhere").c_str(), P("dangling").c_str()), 0);
  EXPECT_FALSE(posix::WriteFileDurably(P("dangling"), "x", exclusive).ok());
  EXPECT_FALSE(std::filesystem::exists(P("nowhere")));

  // A new name is created.
  EXPECT_TRUE(posix::WriteFileDurably(P("other"), "fresh", exclusive).ok());
  EXPECT_EQ(ReadFile(P("other")), "fresh");
}

TEST_F(PosixTest, WriteFileDurablyNoFollowRefusesASymbolicLink) {
  WriteFile(P("target"), "keep");
  ASSERT_EQ(::symlink(P("target").c_str(), P("link").c_str()), 0);
  posix::WriteFileOptions opts;
  opts.no_follow = true;
  Status s = posix::WriteFileDurably(P("link"), "replaced", opts);
  EXPECT_EQ(s.message(), "create " + P("link") + ": Too many levels of symbolic links");
  EXPECT_EQ(ReadFile(P("target")), "keep");
  // Without it the link is followed (the receipts' temp files, as before the layer).
  EXPECT_TRUE(posix::WriteFileDurably(P("link"), "replaced").ok());
  EXPECT_EQ(ReadFile(P("target")), "replaced");
}

TEST_F(PosixTest, WriteFileDurablyRemovesItsFileWhenAWriteFails) {
  // A file size limit of 4 bytes makes write(2) fail with EFBIG past them (SIGXFSZ ignored): in
  // a child, so that the limit does not reach the other tests.
  const std::string path = P("too-big");
  int code = InChild([&] {
    std::signal(SIGXFSZ, SIG_IGN);
    struct rlimit lim {
      4, 4
    };
    if (::setrlimit(RLIMIT_FSIZE, &lim) != 0) return 10;
    Status s = posix::WriteFileDurably(path, "more than four bytes");
    if (s.ok()) return 11;
    if (s.code() != Code::kIoError) return 12;
    if (s.message() != "write " + path + ": File too large") return 13;
    if (::access(path.c_str(), F_OK) == 0 || errno != ENOENT) return 14;  // removed
    return 0;
  });
  EXPECT_EQ(code, 0);
}

TEST_F(PosixTest, FileLockOpenOfAMissingFolderFails) {
  Result<posix::FileLock> lock = posix::FileLock::Open(P("missing/x.lock"));
  ASSERT_FALSE(lock.ok());
  EXPECT_EQ(lock.status().code(), Code::kIoError);
  EXPECT_EQ(lock.status().message(),
            "cannot open " + P("missing/x.lock") + ": No such file or directory");
}

// flock semantics: the lock belongs to the open file description, so a second open of the same
// file conflicts even in the same process (an fcntl lock would not).
TEST_F(PosixTest, FileLockExcludesASecondOpenOfTheFileEvenInOneProcess) {
  const std::string path = P("pass.lock");
  Result<posix::FileLock> a = posix::FileLock::Open(path);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ASSERT_TRUE(a->TryLock(posix::FileLock::Kind::kExclusive).ok());
  struct stat sb {};
  ASSERT_EQ(::stat(path.c_str(), &sb), 0);
  EXPECT_EQ(sb.st_mode & 0777, 0600u);

  Result<posix::FileLock> b = posix::FileLock::Open(path);
  ASSERT_TRUE(b.ok());
  Status busy = b->TryLock(posix::FileLock::Kind::kExclusive);
  EXPECT_EQ(busy.code(), Code::kConflict);
  EXPECT_EQ(busy.message(), path + " is locked");
  EXPECT_EQ(b->TryLock(posix::FileLock::Kind::kShared).code(), Code::kConflict);

  a->Unlock();
  EXPECT_TRUE(b->TryLock(posix::FileLock::Kind::kExclusive).ok());
  EXPECT_EQ(a->TryLock(posix::FileLock::Kind::kShared).code(), Code::kConflict);
  {
    posix::FileLock gone = std::move(b).value();  // released when it goes away
  }
  EXPECT_TRUE(a->TryLock(posix::FileLock::Kind::kShared).ok());
}

TEST_F(PosixTest, SharedFileLocksCoexistAndExcludeAnExclusiveOne) {
  const std::string path = P("audit.log.lock");
  Result<posix::FileLock> a = posix::FileLock::Open(path);
  Result<posix::FileLock> b = posix::FileLock::Open(path);
  Result<posix::FileLock> c = posix::FileLock::Open(path);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_TRUE(a->TryLock(posix::FileLock::Kind::kShared).ok());
  EXPECT_TRUE(b->TryLock(posix::FileLock::Kind::kShared).ok());
  EXPECT_EQ(c->TryLock(posix::FileLock::Kind::kExclusive).code(), Code::kConflict);
  a->Unlock();
  b->Unlock();
  EXPECT_TRUE(c->TryLock(posix::FileLock::Kind::kExclusive).ok());
}

// Another process is excluded while the lock is held, and the lock is an flock: a plain flock
// of the file conflicts with it, an fcntl lock (another kind, which flock does not see on a local
// file system) does not.
TEST_F(PosixTest, FileLockExcludesAnotherProcessUntilDestroyed) {
  const std::string path = P("reconcile.lock");
  auto child_tries = [&path] {
    return InChild([&path] {
      Result<posix::FileLock> mine = posix::FileLock::Open(path);
      if (!mine.ok()) return 10;
      Status s = mine->TryLock(posix::FileLock::Kind::kExclusive);
      if (s.ok()) return 0;
      if (s.code() != Code::kConflict) return 11;
      int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
      if (fd < 0) return 12;
      if (::flock(fd, LOCK_EX | LOCK_NB) == 0 || errno != EWOULDBLOCK) return 13;
      struct flock fl {};
      fl.l_type = F_WRLCK;
      fl.l_whence = SEEK_SET;
      if (::fcntl(fd, F_SETLK, &fl) != 0) return 14;
      return 1;  // excluded, by an flock
    });
  };
  {
    Result<posix::FileLock> held = posix::FileLock::Open(path);
    ASSERT_TRUE(held.ok());
    ASSERT_TRUE(held->TryLock(posix::FileLock::Kind::kExclusive).ok());
    EXPECT_EQ(child_tries(), 1);
  }
  EXPECT_EQ(child_tries(), 0);
}

}  // namespace ds::posix_test
