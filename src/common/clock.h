// Clocks behind an interface so that the core and tests never read the real time directly.
#pragma once

#include <cstdint>
#include <string>

namespace ds {

class Clock {
 public:
  virtual ~Clock() = default;
  // Milliseconds since the Unix epoch (wall clock, UTC): timestamps, retry deadlines.
  virtual int64_t NowMillis() = 0;
};

// The real wall clock.
Clock& SystemClock();

// "2026-11-25T02:31:52.123Z"
std::string FormatUtcMillis(int64_t millis);

}  // namespace ds
