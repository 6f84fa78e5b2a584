// A BodySink for tests that keeps what it is given: the whole body, the number of calls and the
// largest chunk (to tell a streamed body from one handed over in one piece). Header-only.
#pragma once

#include <algorithm>
#include <cstddef>
#include <string>

#include "common/status.h"
#include "core/object_store.h"

namespace ds::itest {

struct Collected {
  std::string body;
  size_t chunks = 0;
  size_t largest_chunk = 0;
};

inline BodySink CollectInto(Collected* c) {
  return [c](const char* data, size_t size) {
    c->body.append(data, size);
    ++c->chunks;
    c->largest_chunk = std::max(c->largest_chunk, size);
    return Status::Ok();
  };
}

}  // namespace ds::itest
