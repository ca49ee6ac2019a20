// ratelimit/shared_limiter: the process-wide keyed rate limiter behind
// mailgate.ratelimit.check(key, rate). A limit kept in a per-worker Lua state
// would be multiplied by the number of workers; this one is shared by all of
// them. Promises: thread-safe (keys are spread over shards, each with its own
// mutex, so workers rarely meet); memory is bounded: keys idle long enough to
// be back at full burst are dropped, and at most `max_keys` are kept per
// shard (beyond that the oldest idle ones go first; a limiter that cannot make
// room refuses the new key rather than grow).
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "ratelimit/gcra.hpp"

namespace mailgate::ratelimit {

class SharedLimiter {
 public:
  explicit SharedLimiter(std::size_t max_keys_per_shard = 65536);

  // Admits one event for `key` under `per_second`/`burst` (a key's limit is
  // the one given on its first use until it idles out). Any thread.
  bool check(std::string_view key, double per_second, std::uint32_t burst, std::int64_t now_us);
  std::size_t size() const;  // keys held (approximate under concurrency)

 private:
  struct Entry {
    Gcra gcra;
    std::int64_t idle_after_us;  // back at full burst from here on
  };
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<std::string, Entry> keys;
  };
  static constexpr std::size_t kShards = 16;
  void sweep(Shard& s, std::int64_t now_us);
  std::size_t max_keys_;
  std::array<Shard, kShards> shards_;
};

}  // namespace mailgate::ratelimit
