// server/auth_throttle: see auth_throttle.hpp.
#include "server/auth_throttle.hpp"

namespace mailgate::server {

bool AuthThrottle::blocked(const std::string& ip, Clock::time_point now) {
  std::lock_guard lock(mu_);
  auto it = by_ip_.find(ip);
  if (it == by_ip_.end()) return false;
  if (now - it->second.window_start >= kWindow) {
    by_ip_.erase(it);
    return false;
  }
  return it->second.failures >= kMaxFailures;
}

void AuthThrottle::failed(const std::string& ip, Clock::time_point now) {
  std::lock_guard lock(mu_);
  auto it = by_ip_.find(ip);
  if (it == by_ip_.end()) {
    if (by_ip_.size() >= kMaxTracked) drop_expired(now);
    if (by_ip_.size() >= kMaxTracked) return;
    by_ip_.emplace(ip, Entry{1, now});
    return;
  }
  if (now - it->second.window_start >= kWindow) it->second = Entry{0, now};
  ++it->second.failures;
}

void AuthThrottle::drop_expired(Clock::time_point now) {
  for (auto it = by_ip_.begin(); it != by_ip_.end();) {
    it = now - it->second.window_start >= kWindow ? by_ip_.erase(it) : std::next(it);
  }
}

}  // namespace mailgate::server
