// Every event parser: ParseNotification accepts AWS, SNS, SQS, EventBridge, Ceph RGW and MinIO
// documents. Any input must give either an error or events that satisfy the Event contract.
#include <spdlog/spdlog.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/parse_events.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool quiet = [] {
    spdlog::set_level(spdlog::level::off);
    return true;
  }();
  (void)quiet;
  std::string_view body(reinterpret_cast<const char*>(data), size);
  ds::Result<ds::ParsedDocument> doc = ds::ParseNotification(body);
  if (!doc.ok()) {
    FUZZ_CHECK(!doc.status().message().empty(), "a rejected document has an error message");
    return 0;
  }
  for (const ds::Event& ev : doc->events) {
    FUZZ_CHECK(!ev.name.empty(), "an accepted event has a name");
    FUZZ_CHECK(!ev.version_id || !ev.version_id->empty(), "version_id is nullopt, not \"\"");
    if (ev.ordered) {
      FUZZ_CHECK(!ev.sequencer.empty(), "an ordered event has a sequencer");
      std::optional<int> self = ds::CompareSequencers(ev.sequencer, ev.sequencer);
      FUZZ_CHECK(self && *self == 0, "an ordered sequencer compares equal to itself");
    }
    if (ev.delete_marker) FUZZ_CHECK(ev.action == ds::EventAction::kRemove, "marker is a removal");
  }
  // Sequencer comparison is antisymmetric on arbitrary strings (split the input in two).
  std::string_view a = body.substr(0, size / 2), b = body.substr(size / 2);
  std::optional<int> ab = ds::CompareSequencers(a, b), ba = ds::CompareSequencers(b, a);
  FUZZ_CHECK(ab.has_value() == ba.has_value(), "CompareSequencers is defined symmetrically");
  if (ab) FUZZ_CHECK((*ab < 0) == (*ba > 0) && (*ab == 0) == (*ba == 0), "antisymmetric");
  return 0;
}
