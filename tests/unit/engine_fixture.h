// Shared by the Engine's unit tests (engine_test.cc: applying events; engine_jobs_test.cc:
// downloads; engine_removals_test.cc: removal paths and their audit; engine_horizon_test.cc: the
// state horizon). The EngineTest fixture: the Engine of fakes::EngineOnFakesTest (bucket "b" on
// the in-memory fakes), made again by Reset with retries 10 ms apart, and builders of events of
// bucket "b". In a named namespace, not an anonymous one: every test of the suite EngineTest must
// share one fixture class.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "core/engine.h"
#include "fakes/engine_on_fakes.h"
#include "fakes/fakes.h"

namespace ds::engine_test {

using fakes::FakeCacheFs;
using fakes::FakeObjectStore;
using fakes::FakeStateStore;
using fakes::RecordingAudit;

class EngineTest : public fakes::EngineOnFakesTest {
 protected:
  EngineTest() { Reset({}); }

  void Reset(EngineOptions opts) {
    if (opts.bucket.empty()) opts.bucket = "b";
    opts.retry_base_ms = 10;
    engine_ = std::make_unique<Engine>(&store_, cache_, state_, clock_, opts);
  }

  static Event Make(EventAction action, const std::string& key, const std::string& seq,
                    bool ordered, const std::string& name = "") {
    Event e;
    e.action = action;
    e.name = name.empty()
                 ? (action == EventAction::kCreate ? "ObjectCreated:Put" : "ObjectRemoved:Delete")
                 : name;
    e.source = ordered ? "aws:s3" : "ceph:s3";
    e.bucket = "b";
    e.key = key;
    e.sequencer = seq;
    e.ordered = ordered;
    e.event_id = "ev-" + key + "-" + seq;
    return e;
  }
  static Event Create(const std::string& key, const std::string& seq = "", bool ordered = false) {
    return Make(EventAction::kCreate, key, seq, ordered);
  }
  static Event Remove(const std::string& key, const std::string& seq = "", bool ordered = false) {
    return Make(EventAction::kRemove, key, seq, ordered);
  }
};

}  // namespace ds::engine_test
