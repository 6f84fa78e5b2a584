#include "core/cache_fs.h"

namespace ds {
namespace {

// Each removal durable on its own: nothing is left for Commit.
class OneByOneRemovals : public RemovalBatch {
 public:
  explicit OneByOneRemovals(CacheFs& cache) : cache_(cache) {}
  Result<bool> Remove(const std::string& rel_path) override { return cache_.Remove(rel_path); }
  Status Commit() override { return Status::Ok(); }

 private:
  CacheFs& cache_;
};

}  // namespace

std::unique_ptr<RemovalBatch> CacheFs::BeginRemovals() {
  return std::make_unique<OneByOneRemovals>(*this);
}

}  // namespace ds
