// Running independent file-system calls at once. On a shared file system (CephFS, NFS, EFS)
// each metadata call is a round trip to a server that can serve many at a time, so a batch of
// lookups or unlinks finishes in a fraction of the time it takes one by one.
#pragma once

#include <cstddef>
#include <functional>

namespace ds {

// Runs fn(0) ... fn(n - 1), each exactly once and in no particular order, on up to `threads`
// threads (the caller's included: threads <= 1, or n <= 1, runs them all on the caller's
// thread), and returns when every call has returned. When the system refuses a new thread the
// calls run on the threads it has. fn must not throw and must be safe to call concurrently.
void ParallelFor(size_t n, size_t threads, const std::function<void(size_t)>& fn);

}  // namespace ds
