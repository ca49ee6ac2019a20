// queue/retry_policy: when to try a message again after a temporary failure,
// and when to give up. Exponential backoff from `first` doubling up to `max`,
// with ±20% jitter so that messages deferred together do not retry together;
// a message older than `max_age` (counted from reception) is expired.
// Pure functions: the caller passes the clock and the random source.
#pragma once

#include <chrono>
#include <cstdint>
#include <random>

namespace mailgate::queue {

struct RetryPolicy {
  std::chrono::milliseconds first{60'000};
  std::chrono::milliseconds max{3'600'000};
  std::chrono::milliseconds max_age{5ll * 24 * 3'600'000};

  // Delay before attempt number `attempts + 1`, given `attempts` >= 1 done.
  std::chrono::milliseconds delay_after(std::uint32_t attempts, std::mt19937_64& rng) const;
  bool expired(std::int64_t received_ms, std::int64_t now_ms) const {
    return now_ms - received_ms >= max_age.count();
  }
  // Last moment a message received at `received_ms` may still be tried.
  std::int64_t deadline(std::int64_t received_ms) const { return received_ms + max_age.count(); }
};

}  // namespace mailgate::queue
