// dns/cache: LRU list + hash index (see cache.hpp). Expired entries are
// dropped when a get() finds them, or as they reach the LRU tail.
#include "dns/cache.hpp"

namespace mailgate::dns {

std::string Cache::key(const std::string& name, RrType type) {
  std::string k = name;
  k.push_back('/');
  k += std::to_string(static_cast<unsigned>(type));
  return k;
}

std::optional<RecordSet> Cache::get(const std::string& name, RrType type, Clock::time_point now) {
  auto it = index_.find(key(name, type));
  if (it == index_.end()) return std::nullopt;
  auto entry = it->second;
  if (now >= entry->expiry) {
    lru_.erase(entry);
    index_.erase(it);
    return std::nullopt;
  }
  lru_.splice(lru_.begin(), lru_, entry);
  RecordSet rs = entry->value;
  auto left = entry->expiry - now;
  rs.ttl = static_cast<std::uint32_t>(std::chrono::ceil<std::chrono::seconds>(left).count());
  return rs;
}

void Cache::put(const std::string& name, RrType type, const RecordSet& rs, Clock::time_point now) {
  if (capacity_ == 0 || rs.ttl == 0) return;
  auto k = key(name, type);
  auto expiry = now + std::chrono::seconds(rs.ttl);
  if (auto it = index_.find(k); it != index_.end()) {
    it->second->value = rs;
    it->second->expiry = expiry;
    lru_.splice(lru_.begin(), lru_, it->second);
    return;
  }
  lru_.push_front(Entry{k, rs, expiry});
  index_.emplace(std::move(k), lru_.begin());
  while (index_.size() > capacity_) {
    index_.erase(lru_.back().key);
    lru_.pop_back();
  }
}

void Cache::clear() {
  index_.clear();
  lru_.clear();
}

}  // namespace mailgate::dns
