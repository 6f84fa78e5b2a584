// Helpers shared by the files of the Engine (engine.cc: events; engine_removals.cc: the removal
// paths and their audit; engine_jobs.cc: downloads). Private to src/core/engine*.cc: not part of
// the engine's API. They keep no state: they read, and change, only their arguments.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/key_path.h"
#include "core/parse_events.h"
#include "core/state_store.h"

namespace ds::engine_internal {

// "s3://bucket/key", the key printable, for logs.
inline std::string Where(const std::string& bucket, const std::string& key) {
  return "s3://" + bucket + "/" + PrintableKey(key);
}

// True when an ordered event with sequencer `seq` is older than what was applied for the key.
// A creation with the same sequencer as an applied removal counts as older: removal wins.
inline bool IsStale(const std::string& seq, bool ordered, const KeyState& st, bool is_create) {
  if (!ordered || seq.empty() || st.seq.empty()) return false;
  std::optional<int> cmp = CompareSequencers(seq, st.seq);
  if (!cmp) return false;
  if (*cmp < 0) return true;
  return *cmp == 0 && is_create && st.tombstone;
}

// Records in `st` that the key's copy was removed at `now_ms`. `ordered`: the removal is an
// event of an ordered source carrying a sequencer (RaiseSeq records it); any other removal also
// bumps unordered_removal_gen.
inline void MarkRemoved(KeyState& st, int64_t now_ms, bool ordered = false) {
  st.present = false;
  st.tombstone = true;
  st.removal_gen++;
  if (!ordered) st.unordered_removal_gen++;
  st.etag.clear();
  st.version_id.clear();
  st.size = -1;
  st.updated_ms = now_ms;
}

// Records an ordered event's sequencer in `st` when it is newer than the one there.
inline void RaiseSeq(KeyState& st, const std::string& seq, bool ordered) {
  if (!ordered || seq.empty()) return;
  if (st.seq.empty()) {
    st.seq = seq;
    return;
  }
  std::optional<int> cmp = CompareSequencers(seq, st.seq);
  if (cmp && *cmp > 0) st.seq = seq;
}

}  // namespace ds::engine_internal
