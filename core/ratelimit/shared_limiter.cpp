// ratelimit/shared_limiter: see shared_limiter.hpp.
#include "ratelimit/shared_limiter.hpp"

#include <functional>

namespace mailgate::ratelimit {

SharedLimiter::SharedLimiter(std::size_t max_keys_per_shard) : max_keys_(max_keys_per_shard) {}

void SharedLimiter::evict_idle(Shard& s, std::int64_t now_us) {
  auto it = s.lru.begin();
  for (std::size_t n = 0; n < kEvictScan && it != s.lru.end(); ++n) {
    ++s.eviction_steps;
    if (it->idle_after_us <= now_us) {
      s.index.erase(it->key);
      it = s.lru.erase(it);
    } else {
      ++it;
    }
  }
}

bool SharedLimiter::check(std::string_view key, double per_second, std::uint32_t burst,
                          std::int64_t now_us) {
  if (!(per_second > 0)) return false;
  auto& s = shards_[std::hash<std::string_view>{}(key) % kShards];
  std::lock_guard lock(s.mu);
  // Every call tidies a little (the least recently used are the likeliest
  // idle), so a full shard is mostly keys still in use.
  evict_idle(s, now_us);
  std::list<Entry>::iterator e;
  if (auto found = s.index.find(key); found != s.index.end()) {
    e = found->second;
    s.lru.splice(s.lru.end(), s.lru, e);  // most recently used now
  } else {
    if (s.lru.size() >= max_keys_) return false;
    s.lru.push_back(
        Entry{std::string(key), RateLimit(per_second, burst, backend_, RateKind::Lua, key), 0});
    e = std::prev(s.lru.end());
    s.index.emplace(e->key, e);
  }
  const bool admitted = e->limit.acquire(now_us) == 0;
  // A local bucket is full again once the TAT has passed.
  e->idle_after_us = e->limit.idle_at_us();
  return admitted;
}

std::size_t SharedLimiter::size() const {
  std::size_t n = 0;
  for (const auto& s : shards_) {
    std::lock_guard lock(s.mu);
    n += s.lru.size();
  }
  return n;
}

std::uint64_t SharedLimiter::eviction_steps() const {
  std::uint64_t n = 0;
  for (const auto& s : shards_) {
    std::lock_guard lock(s.mu);
    n += s.eviction_steps;
  }
  return n;
}

}  // namespace mailgate::ratelimit
