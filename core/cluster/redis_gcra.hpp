// cluster/redis_gcra: the Redis backend of a GCRA rate limit (the same
// algorithm as ratelimit/gcra, kept as one Redis key holding the
// theoretical arrival time in microseconds of Redis's clock), so that every
// node sharing the Redis draws from one limit. One atomic EVALSHA per
// request; a request may take `n` events at once (leased tokens: a node
// asks for a few and spends them locally, trading a little accuracy for
// fewer round trips), and tokens granted but not spent may be given back.
// Used through cluster/leased_rates.hpp.
// Promises: over any window of Redis time the events granted for a key,
// less those given back, are at most burst + window × rate, whichever
// nodes asked; giving back never fills a bucket past its burst (the
// theoretical arrival time never goes below Redis's now); a refused
// request takes nothing and says how long to wait; a key expires once its
// bucket is full again (no unbounded keys in Redis); errors (timeout,
// Redis down) grant nothing and are reported as errors, for the caller to
// fall back.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "cluster/redis_link.hpp"

namespace mailgate::cluster {

struct GcraAnswer {
  bool granted = false;
  std::int64_t wait_us = 0;  // refused: when the request would be granted
  std::string error;         // set: Redis did not answer (nothing granted)
};

class RedisGcra {
 public:
  using Callback = std::function<void(const GcraAnswer&)>;
  explicit RedisGcra(RedisLink& link) : link_(link) {}

  // Asks for `n` (>= 1, <= burst) events of `key` under `per_second` (> 0)
  // and `burst` (>= 1). On the link's thread; `done` runs once.
  void acquire(std::string_view key, double per_second, std::uint32_t burst, std::uint32_t n,
               Callback done);
  // Gives back `n` (>= 1) events of `key` granted earlier and not spent
  // (the bucket gets them again, up to full). `done` (may be empty) runs
  // once: `granted` false only with `error` set.
  void give_back(std::string_view key, double per_second, std::uint32_t n, Callback done);

 private:
  RedisLink& link_;
};

// Keys of shared rate limits live under this prefix.
inline constexpr std::string_view kRateKeyPrefix = "mailgate:rate:";

}  // namespace mailgate::cluster
