// ratelimit/shared_limiter: see shared_limiter.hpp.
#include "ratelimit/shared_limiter.hpp"

#include <cmath>
#include <functional>

namespace mailgate::ratelimit {

SharedLimiter::SharedLimiter(std::size_t max_keys_per_shard) : max_keys_(max_keys_per_shard) {}

void SharedLimiter::sweep(Shard& s, std::int64_t now_us) {
  for (auto it = s.keys.begin(); it != s.keys.end();) {
    it = it->second.idle_after_us <= now_us ? s.keys.erase(it) : std::next(it);
  }
}

bool SharedLimiter::check(std::string_view key, double per_second, std::uint32_t burst,
                          std::int64_t now_us) {
  if (!(per_second > 0)) return false;
  auto& s = shards_[std::hash<std::string_view>{}(key) % kShards];
  std::lock_guard lock(s.mu);
  auto it = s.keys.find(std::string(key));
  if (it == s.keys.end()) {
    if (s.keys.size() >= max_keys_) sweep(s, now_us);
    if (s.keys.size() >= max_keys_) return false;
    it = s.keys.emplace(std::string(key), Entry{Gcra(per_second, burst), 0}).first;
  }
  Entry& e = it->second;
  if (e.gcra.acquire(now_us) != 0) return false;
  // The bucket is full again once the TAT has passed.
  e.idle_after_us = e.gcra.tat_us();
  return true;
}

std::size_t SharedLimiter::size() const {
  std::size_t n = 0;
  for (const auto& s : shards_) {
    std::lock_guard lock(s.mu);
    n += s.keys.size();
  }
  return n;
}

}  // namespace mailgate::ratelimit
