// queue/retry_policy: see retry_policy.hpp.
#include "queue/retry_policy.hpp"

#include <algorithm>

namespace mailgate::queue {

std::chrono::milliseconds RetryPolicy::delay_after(std::uint32_t attempts,
                                                   std::mt19937_64& rng) const {
  const std::uint32_t doublings = std::min<std::uint32_t>(attempts > 0 ? attempts - 1 : 0, 40);
  double base = static_cast<double>(first.count());
  for (std::uint32_t i = 0; i < doublings && base < static_cast<double>(max.count()); ++i)
    base *= 2;
  base = std::min(base, static_cast<double>(max.count()));
  std::uniform_real_distribution<double> jitter(0.8, 1.2);
  const auto ms = static_cast<std::int64_t>(base * jitter(rng));
  return std::chrono::milliseconds(std::max<std::int64_t>(ms, 1));
}

}  // namespace mailgate::queue
