// PosixRemovalBatch (posix_cache_internal.h): the removals of a reconcile pass or an erasure with
// one fsync per folder, their lookups and unlinks run in parallel.
#include <algorithm>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "common/crash_point.h"
#include "fs/parallel.h"
#include "fs/posix.h"
#include "fs/posix_cache.h"
#include "fs/posix_cache_internal.h"

namespace ds {
namespace posix_cache_internal {
namespace {

// Each folder holding a path of the batch is opened once (its descriptor kept until the folder
// is synced), the lookups and unlinks of one StatMany or RemoveMany run `parallelism` at a
// time, each folder that lost a file is fsynced once (in parallel too) and the folders are
// pruned at Commit, deepest first.
class PosixRemovalBatch : public RemovalBatch {
 public:
  explicit PosixRemovalBatch(std::shared_ptr<const State> state) : state_(std::move(state)) {}

  Result<CacheEntryInfo> Stat(const std::string& rel_path) override {
    return std::move(StatMany({rel_path}).front());
  }

  std::vector<Result<CacheEntryInfo>> StatMany(const std::vector<std::string>& rel_paths) override {
    return Each<CacheEntryInfo>(rel_paths,
                                [this](const Path& p, const Folder& f) -> Result<CacheEntryInfo> {
                                  if (!f.status.ok()) {
                                    // A missing parent, or one that is a file: no copy (as
                                    // PosixCache::Stat).
                                    if (f.status.code() == Code::kNotFound) return CacheEntryInfo{};
                                    return f.status;
                                  }
                                  return StatIn(*state_, *p.rel, FolderFd(f), p.segs.back());
                                });
  }

  Result<bool> Remove(const std::string& rel_path) override {
    return std::move(RemoveMany({rel_path}).front());
  }

  std::vector<Result<bool>> RemoveMany(const std::vector<std::string>& rel_paths) override {
    std::vector<std::string> folders;  // of the paths unlinked
    std::vector<Result<bool>> out = Each<bool>(
        rel_paths,
        [this](const Path& p, const Folder& f) -> Result<bool> {
          if (!f.status.ok()) {
            if (f.status.code() == Code::kNotFound) return false;
            return f.status;
          }
          return UnlinkIn(*state_, *p.rel, FolderFd(f), p.segs.back());
        },
        [this](const Path& p, Folder& f, const Result<bool>& removed) {
          if (!removed.ok() || !*removed) return;
          f.unsynced = true;
          if (p.segs.size() > 1) prune_.insert(p.folder);
        });
    return out;
  }

  Status Commit() override {
    DS_RETURN_IF_ERROR(SyncAll());
    open_.clear();
    if (!prune_.empty()) CrashPoint("removal-before-prune");
    // Deepest first, the folders of one depth in parallel: every folder of a depth is pruned
    // (or found not empty) before its parents are looked at.
    const State& st = *state_;
    std::map<size_t, std::vector<std::vector<std::string>>, std::greater<>> by_depth;
    for (const std::string& folder : prune_) {
      auto segs = SplitRelPath(folder);
      if (segs.ok()) by_depth[segs->size()].push_back(std::move(*segs));
    }
    for (const auto& depth_folders : by_depth) {
      // (not a structured binding: clang 14 cannot capture one in a lambda)
      const std::vector<std::vector<std::string>>& folders = depth_folders.second;
      ParallelFor(folders.size(), st.opts.parallelism, [&](size_t i) {
        const std::vector<std::string>& segs = folders[i];
        const std::string rel = JoinPrefix(segs, segs.size());
        auto chain = OpenDirs(st, rel, segs, segs.size(), /*create=*/false);
        if (!chain.ok()) return;  // pruned already, or replaced
        PruneEmpty(*chain, segs, segs.size(), Quoted(rel) + " in cache " + st.root_path);
      });
    }
    prune_.clear();
    return Status::Ok();
  }

 private:
  // Folders the batch keeps open at most (each one descriptor): past that they are synced and
  // closed before more are opened.
  static constexpr size_t kMaxOpenFolders = 256;
  // Paths handled in one round (opening their new folders, then looking at or unlinking them).
  static constexpr size_t kRound = 128;

  struct Folder {
    Status status;  // OK: `fd` (or the root, when `fd` is not valid) is the folder
    UniqueFd fd;
    bool unsynced = false;  // lost a file since it was last fsynced
  };
  struct Path {
    const std::string* rel = nullptr;
    std::vector<std::string> segs;
    std::string folder;  // the first segs.size() - 1 segments ("" = the root)
  };

  int FolderFd(const Folder& f) const { return f.fd.valid() ? f.fd.get() : state_->root.get(); }

  // Runs op(path, its folder) for every path (in parallel, rounds of kRound paths), then
  // after(path, its folder, the result) for each path of the round on this thread.
  template <typename T, typename Op, typename After = std::nullptr_t>
  std::vector<Result<T>> Each(const std::vector<std::string>& rel_paths, const Op& op,
                              const After& after = nullptr) {
    const State& st = *state_;
    std::vector<Result<T>> out;
    out.reserve(rel_paths.size());
    for (size_t begin = 0; begin < rel_paths.size(); begin += kRound) {
      const size_t end = std::min(rel_paths.size(), begin + kRound);
      std::vector<Path> paths;
      std::vector<std::optional<Status>> bad(end - begin);
      std::set<std::string> wanted;
      for (size_t i = begin; i < end; ++i) {
        Path p;
        p.rel = &rel_paths[i];
        auto segs = SplitRelPath(rel_paths[i]);
        if (segs.ok()) {
          p.segs = std::move(*segs);
          p.folder = JoinPrefix(p.segs, p.segs.size() - 1);
          if (!open_.count(p.folder)) wanted.insert(p.folder);
        } else {
          bad[i - begin] = segs.status();
        }
        paths.push_back(std::move(p));
      }
      if (open_.size() + wanted.size() > kMaxOpenFolders) {
        Status s = SyncAll();
        if (!s.ok()) {
          for (size_t i = begin; i < rel_paths.size(); ++i) out.push_back(s);
          return out;
        }
        open_.clear();
        for (const Path& p : paths) {
          if (!p.segs.empty()) wanted.insert(p.folder);
        }
      }
      // Open the round's new folders at once.
      std::vector<std::string> names(wanted.begin(), wanted.end());
      std::vector<Folder> opened(names.size());
      ParallelFor(names.size(), st.opts.parallelism, [&](size_t i) {
        std::vector<std::string> segs;
        if (!names[i].empty()) segs = *SplitRelPath(names[i]);
        auto chain = OpenDirs(st, names[i], segs, segs.size(), /*create=*/false);
        if (!chain.ok()) {
          opened[i].status = chain.status();
        } else if (!chain->dirs.empty()) {
          opened[i].fd = std::move(chain->dirs.back());
        }
      });
      for (size_t i = 0; i < names.size(); ++i) open_.emplace(names[i], std::move(opened[i]));
      // Then the round's paths at once.
      std::vector<std::optional<Result<T>>> results(paths.size());
      ParallelFor(paths.size(), st.opts.parallelism, [&](size_t i) {
        if (bad[i]) {
          results[i].emplace(*bad[i]);
        } else {
          results[i].emplace(op(paths[i], open_.at(paths[i].folder)));
        }
      });
      for (size_t i = 0; i < paths.size(); ++i) {
        if constexpr (!std::is_same_v<After, std::nullptr_t>) {
          if (!bad[i]) after(paths[i], open_.at(paths[i].folder), *results[i]);
        }
        out.push_back(std::move(*results[i]));
      }
    }
    return out;
  }

  // fsyncs every folder that lost a file since its last sync, in parallel. A failure fails the
  // whole batch: those unlinks are not known durable.
  Status SyncAll() {
    if (!failed_.ok()) return failed_;
    const State& st = *state_;
    std::vector<std::pair<const std::string*, Folder*>> todo;
    for (auto& [folder, f] : open_) {
      if (f.unsynced) todo.emplace_back(&folder, &f);
    }
    std::vector<Status> synced(todo.size());
    ParallelFor(todo.size(), st.opts.parallelism, [&](size_t i) {
      const std::string& folder = *todo[i].first;
      synced[i] = posix::FsyncFd(
          FolderFd(*todo[i].second),
          "folder " + Quoted(folder.empty() ? "." : folder) + " in cache " + st.root_path);
    });
    for (size_t i = 0; i < todo.size(); ++i) {
      if (!synced[i].ok()) {
        failed_ = synced[i];
        return failed_;
      }
      todo[i].second->unsynced = false;
    }
    return Status::Ok();
  }

  std::shared_ptr<const State> state_;
  std::map<std::string, Folder> open_;  // folder ("" = the root) -> its descriptor
  std::set<std::string> prune_;         // folders (not the root) that lost a file: prune them
  Status failed_;
};

}  // namespace
}  // namespace posix_cache_internal

std::unique_ptr<RemovalBatch> PosixCache::BeginRemovals() {
  return std::make_unique<posix_cache_internal::PosixRemovalBatch>(state_);
}

}  // namespace ds
