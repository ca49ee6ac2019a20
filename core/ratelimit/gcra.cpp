// ratelimit/gcra: see gcra.hpp.
#include "ratelimit/gcra.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>

namespace mailgate::ratelimit {

std::int64_t steady_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

Gcra::Gcra(double per_second, std::uint32_t burst) {
  if (!(per_second > 0)) return;
  interval_us_ = std::max<std::int64_t>(1, std::llround(1e6 / per_second));
  tolerance_us_ = interval_us_ * (static_cast<std::int64_t>(std::max(burst, 1u)) - 1);
}

std::int64_t Gcra::wait_us(std::int64_t now_us) const {
  if (unlimited()) return 0;
  const std::int64_t allowed_at = tat_us_ - tolerance_us_;
  return allowed_at <= now_us ? 0 : allowed_at - now_us;
}

std::int64_t Gcra::acquire(std::int64_t now_us) {
  const std::int64_t wait = wait_us(now_us);
  if (wait > 0 || unlimited()) return wait;
  tat_us_ = std::max(tat_us_, now_us) + interval_us_;
  return 0;
}

}  // namespace mailgate::ratelimit
