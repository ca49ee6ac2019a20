// server/auth_throttle: SMTP AUTH failures per client IP over all listeners
// and workers. After kMaxFailures failed attempts within kWindow an IP is
// refused further AUTH attempts (421 4.7.0) until the window ends: a password
// guesser that reconnects gets nowhere faster than one that stays.
// Promises: thread-safe (one short mutex per AUTH failure or check); memory
// bounded (at most kMaxTracked IPs; expired entries are dropped first, and
// when every slot is live a new IP is not tracked rather than evicting one
// that is being throttled).
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

namespace mailgate::server {

class AuthThrottle {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::uint32_t kMaxFailures = 10;
  static constexpr std::chrono::minutes kWindow{15};
  static constexpr std::size_t kMaxTracked = 100'000;

  // True when `ip` may not try AUTH now.
  bool blocked(const std::string& ip, Clock::time_point now = Clock::now());
  void failed(const std::string& ip, Clock::time_point now = Clock::now());

 private:
  struct Entry {
    std::uint32_t failures = 0;
    Clock::time_point window_start;
  };
  void drop_expired(Clock::time_point now);

  std::mutex mu_;
  std::unordered_map<std::string, Entry> by_ip_;
};

}  // namespace mailgate::server
