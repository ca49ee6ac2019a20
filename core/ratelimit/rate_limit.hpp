// ratelimit/rate_limit: the one rate-limit abstraction every limit of the
// gateway goes through (a destination's message and connection rates, a
// site's per-source rate, mailgate.ratelimit.check). Callers are
// synchronous and never block: "may one go now, else how long to wait".
// Two backends behind one value type:
// - local: a Gcra in this process (the single-node behaviour);
// - shared: a SharedRate made by a RateBackend (cluster::LeasedRates: one
//   limit across every node sharing a Redis, issue 16).
// Promises: a default RateLimit is unlimited; a local one keeps Gcra's
// bound (burst + window × rate); a shared one keeps its backend's promise
// (cluster/leased_rates.hpp); copies of a shared RateLimit draw from the
// same per-node state. acquire() admits one event and returns 0, or
// returns the microseconds to wait and admits nothing; wait_us() reports
// without admitting (a shared backend may start fetching tokens).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "ratelimit/gcra.hpp"

namespace mailgate::ratelimit {

// What a limit is for (metrics of a shared backend are per kind, never per key).
enum class RateKind { Lua, MessageRate, ConnectionRate, SiteRate };
inline constexpr std::size_t kRateKindCount = 4;
std::string_view rate_kind_name(RateKind k);  // "lua", "message_rate", ...

// One limit's state on this node when the limit is shared with other nodes.
// Thread-safe.
class SharedRate {
 public:
  virtual ~SharedRate() = default;
  virtual std::int64_t acquire(std::int64_t now_us) = 0;
  virtual std::int64_t wait_us(std::int64_t now_us) = 0;
  // From then on this node holds nothing of the limit worth keeping.
  virtual std::int64_t idle_at_us() const = 0;
};

// Makes shared limits (cluster::LeasedRates). Thread-safe.
class RateBackend {
 public:
  virtual ~RateBackend() = default;
  // `key` names the limit among every node's (same key: same limit).
  virtual std::shared_ptr<SharedRate> make(RateKind kind, std::string_view key, double per_second,
                                           std::uint32_t burst) = 0;
};

class RateLimit {
 public:
  RateLimit() = default;  // unlimited
  // Local when `backend` is null; `per_second` <= 0 is unlimited either way.
  RateLimit(double per_second, std::uint32_t burst, RateBackend* backend = nullptr,
            RateKind kind = RateKind::Lua, std::string_view key = {});

  bool unlimited() const { return !shared_ && local_.unlimited(); }
  bool shared() const { return shared_ != nullptr; }
  std::int64_t acquire(std::int64_t now_us);
  std::int64_t wait_us(std::int64_t now_us) const;
  // When nothing is left to remember (a local bucket full again).
  std::int64_t idle_at_us() const;

 private:
  Gcra local_;
  std::shared_ptr<SharedRate> shared_;
};

}  // namespace mailgate::ratelimit
