// A test fixture: an Engine mirroring bucket "b" on the in-memory fakes, and a builder of
// one-record RGW notification documents for it. For tests of what sits on top of the engine
// (the webhook's replies, ApplyDocuments, transports).
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "core/engine.h"
#include "fakes/fakes.h"
#include "fakes/notification_docs.h"

namespace ds::fakes {

class EngineOnFakesTest : public ::testing::Test {
 protected:
  EngineOnFakesTest() {
    EngineOptions o;
    o.bucket = "b";
    engine_ = std::make_unique<Engine>(&store_, cache_, state_, clock_, o);
  }
  // {"Records":[one ceph:s3 record of `event_name` (e.g. "ObjectRemoved:Delete") for `key` in
  // bucket "b"]} (fakes/notification_docs.h).
  static std::string Doc(const std::string& event_name, const std::string& key) {
    return testdocs::Document({testdocs::Rgw(event_name, "b", key)});
  }

  FakeObjectStore store_;
  FakeCacheFs cache_;
  FakeStateStore state_;
  FakeClock clock_;
  std::unique_ptr<Engine> engine_;
};

}  // namespace ds::fakes
