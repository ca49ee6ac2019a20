// ratelimit/shared_limiter: the process-wide keyed rate limiter behind
// mailgate.ratelimit.check(key, rate). A limit kept in a per-worker Lua state
// would be multiplied by the number of workers; this one is shared by all of
// them. Promises: thread-safe (keys are spread over shards, each with its own
// mutex, so workers rarely meet); memory is bounded: at most `max_keys` are
// kept per shard, and keys idle long enough to be back at full burst are
// dropped; a limiter that cannot make room refuses the new key rather than
// grow. Every call does O(1) work under its shard's lock (amortised: a
// hash lookup plus at most kEvictScan entries looked at): each shard keeps
// its keys in least-recently-used order, and dropping idle keys looks only
// at the least recently used ones (as nginx's limit_req does), never at
// the whole shard. With a RateBackend set (a cluster), each key's limit is
// shared with the other nodes (ratelimit/rate_limit.hpp); the keys held
// here are then this node's handles on them, bounded the same way.
#pragma once

#include <array>
#include <cstdint>
#include <list>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "ratelimit/rate_limit.hpp"

namespace mailgate::ratelimit {

class SharedLimiter {
 public:
  // Least recently used keys looked at per call for dropping idle ones.
  static constexpr std::size_t kEvictScan = 4;

  explicit SharedLimiter(std::size_t max_keys_per_shard = 65536);
  // Keys first used from now on are shared through `backend` (null: local).
  // Set before the workers run (not synchronised with check()).
  void set_backend(RateBackend* backend) { backend_ = backend; }

  // Admits one event for `key` under `per_second`/`burst` (a key's limit is
  // the one given on its first use until it idles out). Any thread.
  bool check(std::string_view key, double per_second, std::uint32_t burst, std::int64_t now_us);
  std::size_t size() const;  // keys held (approximate under concurrency)
  // Held keys looked at to find idle ones, over the limiter's life (the
  // work eviction costs; tests and benchmarks).
  std::uint64_t eviction_steps() const;

 private:
  struct Entry {
    std::string key;
    RateLimit limit;
    std::int64_t idle_after_us = 0;  // nothing to remember from here on (local: full burst)
  };
  struct Shard {
    mutable std::mutex mu;
    std::list<Entry> lru;  // least recently used first
    // Views of the keys in `lru` (list nodes never move).
    std::unordered_map<std::string_view, std::list<Entry>::iterator> index;
    std::uint64_t eviction_steps = 0;
  };
  static constexpr std::size_t kShards = 16;
  // Drops idle keys among the kEvictScan least recently used.
  void evict_idle(Shard& s, std::int64_t now_us);
  std::size_t max_keys_;
  RateBackend* backend_ = nullptr;
  std::array<Shard, kShards> shards_;
};

}  // namespace mailgate::ratelimit
