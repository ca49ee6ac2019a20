// dkim/key_cache: see key_cache.hpp.
#include "dkim/key_cache.hpp"

namespace mailgate::dkim {

std::shared_ptr<const SigningKey> KeyCache::get(const std::string& path) {
  bool staging = false;
  {
    std::lock_guard lock(mu_);
    staging = staging_ && std::this_thread::get_id() == reloader_;
    const Keys& keys = staging ? *staging_ : keys_;
    if (auto it = keys.find(path); it != keys.end()) return it->second;
  }
  // Read outside the lock: two threads may both read a new key; one wins.
  auto key = SigningKey::load_file(path);
  std::lock_guard lock(mu_);
  Keys& keys = staging && staging_ ? *staging_ : keys_;
  return keys.emplace(path, std::move(key)).first->second;
}

void KeyCache::begin_reload() {
  std::lock_guard lock(mu_);
  staging_.emplace();
  reloader_ = std::this_thread::get_id();
}

void KeyCache::end_reload(bool commit) {
  std::lock_guard lock(mu_);
  if (commit && staging_) keys_.swap(*staging_);
  staging_.reset();
  reloader_ = {};
}

std::size_t KeyCache::size() const {
  std::lock_guard lock(mu_);
  return keys_.size();
}

}  // namespace mailgate::dkim
