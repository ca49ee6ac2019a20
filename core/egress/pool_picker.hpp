// egress/pool_picker: spreads messages over a pool's sources by weight
// (smooth weighted round robin: with weights 3:1 the order is a a b a, a a b
// a, ...; every window of sum(weights) picks holds each source its weight's
// share exactly). One picker per owner worker (not thread-safe): each
// worker's share is exact, so the sum over workers is too.
// Promises: next() only returns a member `usable` accepts; the shares hold
// among the usable members; a changed plan (reload) starts the rotation afresh.
#pragma once

#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "egress/egress_plan.hpp"

namespace mailgate::egress {

class PoolPicker {
 public:
  using Usable = std::function<bool(const PoolMember&)>;
  // Null when no member is usable.
  const PoolMember* next(const Plan& plan, const Pool& pool, const Usable& usable = {});

 private:
  const Plan* plan_ = nullptr;
  std::unordered_map<std::string, std::vector<long long>> current_;  // pool → per member
};

}  // namespace mailgate::egress
