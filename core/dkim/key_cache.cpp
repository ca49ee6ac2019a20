// dkim/key_cache: see key_cache.hpp.
#include "dkim/key_cache.hpp"

namespace mailgate::dkim {

std::shared_ptr<const SigningKey> KeyCache::get(const std::string& path) {
  {
    std::lock_guard lock(mu_);
    if (auto it = keys_.find(path); it != keys_.end()) return it->second;
  }
  // Read outside the lock: two threads may both read a new key; one wins.
  auto key = SigningKey::load_file(path);
  std::lock_guard lock(mu_);
  return keys_.emplace(path, std::move(key)).first->second;
}

void KeyCache::clear() {
  std::lock_guard lock(mu_);
  keys_.clear();
}

std::size_t KeyCache::size() const {
  std::lock_guard lock(mu_);
  return keys_.size();
}

}  // namespace mailgate::dkim
