// egress/pool_picker: see pool_picker.hpp.
#include "egress/pool_picker.hpp"

namespace mailgate::egress {

const PoolMember* PoolPicker::next(const Plan& plan, const Pool& pool, const Usable& usable) {
  if (plan_ != &plan) {
    current_.clear();
    plan_ = &plan;
  }
  auto& cur = current_[pool.name];
  if (cur.size() != pool.members.size()) cur.assign(pool.members.size(), 0);
  long long total = 0;
  const PoolMember* best = nullptr;
  std::size_t best_i = 0;
  for (std::size_t i = 0; i < pool.members.size(); ++i) {
    const auto& m = pool.members[i];
    if (usable && !usable(m)) continue;
    cur[i] += m.weight;
    total += m.weight;
    if (!best || cur[i] > cur[best_i]) {
      best = &m;
      best_i = i;
    }
  }
  if (best) cur[best_i] -= total;
  return best;
}

}  // namespace mailgate::egress
