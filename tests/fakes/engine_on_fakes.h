// A test fixture: an Engine mirroring bucket "b" on the in-memory fakes, and a builder of
// one-record RGW notification documents for it. For tests of what sits on top of the engine
// (the webhook's replies, ApplyDocuments, transports).
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "core/engine.h"
#include "fakes/fakes.h"

namespace ds::fakes {

class EngineOnFakesTest : public ::testing::Test {
 protected:
  EngineOnFakesTest() {
    EngineOptions o;
    o.bucket = "b";
    engine_ = std::make_unique<Engine>(&store_, cache_, state_, clock_, o);
  }
  // {"Records":[one ceph:s3 record of `event_name` (e.g. "ObjectRemoved:Delete") for `key` in
  // bucket "b"]}; the key is written as given (JSON-escape it yourself).
  static std::string Doc(const std::string& event_name, const std::string& key) {
    return R"({"Records":[{"eventSource":"ceph:s3","eventName":")" + event_name +
           R"(","s3":{"bucket":{"name":"b"},"object":{"key":")" + key + R"("}}}]})";
  }

  FakeObjectStore store_;
  FakeCacheFs cache_;
  FakeStateStore state_;
  FakeClock clock_;
  std::unique_ptr<Engine> engine_;
};

}  // namespace ds::fakes
