#include "core/cache_fs.h"

namespace ds {
namespace {

// Each removal durable on its own: nothing is left for Commit.
class OneByOneRemovals : public RemovalBatch {
 public:
  explicit OneByOneRemovals(CacheFs& cache) : cache_(cache) {}
  Result<CacheEntryInfo> Stat(const std::string& rel_path) override {
    return cache_.Stat(rel_path);
  }
  Result<bool> Remove(const std::string& rel_path) override { return cache_.Remove(rel_path); }
  Status Commit() override { return Status::Ok(); }

 private:
  CacheFs& cache_;
};

}  // namespace

std::vector<Result<CacheEntryInfo>> RemovalBatch::StatMany(
    const std::vector<std::string>& rel_paths) {
  std::vector<Result<CacheEntryInfo>> out;
  out.reserve(rel_paths.size());
  for (const std::string& p : rel_paths) out.push_back(Stat(p));
  return out;
}

std::vector<Result<bool>> RemovalBatch::RemoveMany(const std::vector<std::string>& rel_paths) {
  std::vector<Result<bool>> out;
  out.reserve(rel_paths.size());
  for (const std::string& p : rel_paths) out.push_back(Remove(p));
  return out;
}

std::unique_ptr<RemovalBatch> CacheFs::BeginRemovals() {
  return std::make_unique<OneByOneRemovals>(*this);
}

}  // namespace ds
