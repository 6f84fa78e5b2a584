// PosixCache::Walk (posix_cache_internal.h): the cache's regular files in S3 key order, one
// folder listing per level of the current path in memory.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <string>
#include <utility>
#include <vector>

#include "fs/posix.h"
#include "fs/posix_cache.h"
#include "fs/posix_cache_internal.h"

namespace ds {
namespace posix_cache_internal {
namespace {

struct WalkEntry {
  std::string sort_key;  // name, plus '/' for a folder
  bool is_dir = false;
};

// Lists one folder, sorts it by key and recurses. Sets `stop` when the visitor says so.
Status WalkDir(const State& st, int dir_fd, const std::string& path, const std::string& filter,
               bool at_root, const CacheWalkVisitor& visit, bool& stop) {
  const std::string what = Quoted(path.empty() ? "." : path) + " in cache " + st.root_path;
  std::vector<WalkEntry> entries;
  {
    auto listing = OpenListing(dir_fd, what);
    if (!listing.ok()) {
      // The folder was removed after we opened it (e.g. pruned by a concurrent Remove).
      if (listing.status().code() == Code::kIoError) {
        struct stat sb;
        if (::fstat(dir_fd, &sb) == 0 && sb.st_nlink == 0) return Status::Ok();
      }
      return listing.status();
    }
    DIR* d = listing->get();
    while (true) {
      errno = 0;
      struct dirent* ent = ::readdir(d);
      if (ent == nullptr) {
        if (errno != 0) return posix::PosixError("list folder " + what, errno);
        break;
      }
      std::string name = ent->d_name;
      if (name == "." || name == "..") continue;
      if (at_root && name == kReservedDir) continue;
      if (name.compare(0, filter.size(), filter) != 0) continue;
      unsigned char type = ent->d_type;
      if (type == DT_UNKNOWN) {
        struct stat sb;
        if (::fstatat(dir_fd, name.c_str(), &sb, AT_SYMLINK_NOFOLLOW) != 0) {
          if (errno == ENOENT) continue;
          return posix::PosixError("stat " + Quoted(path + name) + " in cache " + st.root_path,
                                   errno);
        }
        type = S_ISDIR(sb.st_mode) ? DT_DIR : S_ISREG(sb.st_mode) ? DT_REG : DT_UNKNOWN;
      }
      if (type == DT_DIR) {
        entries.push_back({name + '/', true});
      } else if (type == DT_REG) {
        entries.push_back({std::move(name), false});
      }
    }
  }
  // std::string compares through char_traits<char>, i.e. as unsigned bytes (memcmp order).
  std::sort(entries.begin(), entries.end(),
            [](const WalkEntry& a, const WalkEntry& b) { return a.sort_key < b.sort_key; });
  for (const WalkEntry& e : entries) {
    if (e.is_dir) {
      std::string name = e.sort_key.substr(0, e.sort_key.size() - 1);
      UniqueFd child(::openat(dir_fd, name.c_str(), kDirOpenFlags));
      if (!child.valid()) {
        // Removed or replaced by a non-folder since the listing: nothing to report.
        if (errno == ENOENT || errno == ELOOP || errno == ENOTDIR) continue;
        return posix::PosixError("open folder " + Quoted(path + name) + " in cache " + st.root_path,
                                 errno);
      }
      DS_RETURN_IF_ERROR(WalkDir(st, child.get(), path + e.sort_key, "", false, visit, stop));
      if (stop) return Status::Ok();
    } else {
      struct stat sb;
      if (::fstatat(dir_fd, e.sort_key.c_str(), &sb, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) continue;
        return posix::PosixError("stat " + Quoted(path + e.sort_key) + " in cache " + st.root_path,
                                 errno);
      }
      if (!S_ISREG(sb.st_mode)) continue;
      CacheEntryInfo info;
      info.exists = true;
      info.is_dir = false;
      info.size = static_cast<uint64_t>(sb.st_size);
      if (!visit(path + e.sort_key, info)) {
        stop = true;
        return Status::Ok();
      }
    }
  }
  return Status::Ok();
}

// PosixCache::Walk.
Status WalkCache(const State& st, const std::string& prefix, const CacheWalkVisitor& visit) {
  if (prefix.find('\0') != std::string::npos) {
    return Status::Invalid("walk prefix " + Quoted(prefix) + " contains a NUL byte");
  }
  if (!prefix.empty() && prefix.front() == '/') {
    return Status::Invalid("walk prefix " + Quoted(prefix) + " is absolute");
  }
  const size_t slash = prefix.rfind('/');
  const std::string dir_part = slash == std::string::npos ? "" : prefix.substr(0, slash);
  const std::string filter = slash == std::string::npos ? prefix : prefix.substr(slash + 1);
  bool stop = false;
  if (dir_part.empty()) return WalkDir(st, st.root.get(), "", filter, true, visit, stop);

  auto segs = SplitRelPath(dir_part);
  if (!segs.ok()) {
    return Status::Invalid("walk prefix " + Quoted(prefix) + ": " + segs.status().message());
  }
  auto chain = OpenDirs(st, dir_part, *segs, segs->size(), /*create=*/false);
  if (!chain.ok()) {
    // Missing, a file, or a symbolic link on the way: there is nothing to report.
    if (chain.status().code() == Code::kNotFound || chain.status().code() == Code::kConflict) {
      return Status::Ok();
    }
    return chain.status();
  }
  return WalkDir(st, chain->last(), dir_part + "/", filter, false, visit, stop);
}

}  // namespace
}  // namespace posix_cache_internal

Status PosixCache::Walk(const std::string& prefix, const CacheWalkVisitor& visit) const {
  return posix_cache_internal::WalkCache(*state_, prefix, visit);
}

}  // namespace ds
