// ratelimit/gcra: the Generic Cell Rate Algorithm (a leaky bucket kept as one
// timestamp, the "theoretical arrival time"). Used for a destination's
// max_message_rate / max_connection_rate (single-threaded, owned by the
// destination's owner worker) and by SharedLimiter (process-wide, keyed).
// Promises: over any window the number of admitted events is at most
// burst + window * rate; an event refused costs nothing; times are
// caller-supplied monotonic microseconds, so tests need no clock.
#pragma once

#include <cstdint>

namespace mailgate::ratelimit {

class Gcra {
 public:
  Gcra() = default;  // unlimited
  // `per_second` > 0; `burst` >= 1 events may pass back to back.
  Gcra(double per_second, std::uint32_t burst);

  bool unlimited() const { return interval_us_ == 0; }
  // Admits one event at `now_us` and returns 0, or returns how many
  // microseconds to wait before it would be admitted (and admits nothing).
  std::int64_t acquire(std::int64_t now_us);
  // The wait acquire() would report, without admitting.
  std::int64_t wait_us(std::int64_t now_us) const;
  // The theoretical arrival time (for expiring idle keys).
  std::int64_t tat_us() const { return tat_us_; }

 private:
  std::int64_t interval_us_ = 0;   // 1 / rate
  std::int64_t tolerance_us_ = 0;  // interval * (burst - 1)
  std::int64_t tat_us_ = 0;
};

// The monotonic microseconds every rate limit of the gateway counts in
// (steady_clock: never jumps with the wall clock).
std::int64_t steady_us();

}  // namespace mailgate::ratelimit
