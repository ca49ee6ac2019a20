// dns/cache (internal to dns): a resolver's record-set cache, keyed by name
// and type, one per worker (not thread-safe). Promises: an entry is returned
// only before its expiry (stored at put() as now + ttl seconds), with ttl
// rewritten to the whole seconds left (rounded up); a record set with ttl 0
// is not stored; at most `capacity` entries are held — a put beyond that
// evicts the least recently used entry (capacity 0 disables caching); a put
// for a key already present replaces it.
#pragma once

#include <chrono>
#include <cstddef>
#include <list>
#include <optional>
#include <string>
#include <unordered_map>

#include "dns/wire.hpp"

namespace mailgate::dns {

class Cache {
 public:
  using Clock = std::chrono::steady_clock;

  explicit Cache(std::size_t capacity) : capacity_(capacity) {}

  std::optional<RecordSet> get(const std::string& name, RrType type, Clock::time_point now);
  void put(const std::string& name, RrType type, const RecordSet& rs, Clock::time_point now);
  std::size_t size() const { return index_.size(); }
  void clear();

 private:
  struct Entry {
    std::string key;
    RecordSet value;
    Clock::time_point expiry;
  };
  static std::string key(const std::string& name, RrType type);

  std::size_t capacity_;
  std::list<Entry> lru_;  // most recently used first
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
};

}  // namespace mailgate::dns
