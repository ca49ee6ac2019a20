// egress/warmup_backend: what egress::PathRegistry asks when warm-up quotas
// are shared by several nodes (a cluster: cluster/shared_warmup implements
// it over Redis). Without one, each node counts its own quota.
// Promises (of an implementation): take() and refund() answer at once
// (never a network call on the caller's thread), and what take() grants
// over every node sharing the backend is at most the (source, site, day)
// quota, except while the backend is degraded to local shares (its own
// documentation bounds that); "wait" means "ask again in wait_us", never
// "held for the day".
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace mailgate::egress {

struct WarmupTake {
  enum class Kind {
    Granted,  // one message counted
    Wait,     // not known yet (a lease is being fetched): ask again after wait_us
    Spent,    // the day's quota is used by the nodes together: until until_ms
  } kind = Kind::Granted;
  std::int64_t wait_us = 0;
  std::int64_t until_ms = 0;  // Spent: the day's end, this node's wall clock (set by the registry)
  explicit operator bool() const { return kind == Kind::Granted; }
};

class WarmupBackend {
 public:
  virtual ~WarmupBackend() = default;
  // The shared clock minus this node's (ms; 0 until known): warm-up days
  // are the shared clock's, so every node rolls to a new day together.
  virtual std::int64_t clock_offset_ms() const = 0;
  // One message of `source` to `site` on UTC `day` (shared clock) under
  // `quota`; `local_today` is what this node counted for the path today
  // (its share while the backend is degraded); `ready` is how many messages
  // the caller has ready for the path, this one included (a lease is never
  // larger than the demand it serves, so quota does not sit idle on a node
  // while another needs it).
  virtual WarmupTake take(const std::string& source, const std::string& site, std::int64_t day,
                          std::uint64_t quota, std::uint64_t local_today, std::uint64_t ready) = 0;
  // A message take() granted on `day` did not leave after all.
  virtual void refund(const std::string& source, const std::string& site, std::int64_t day) = 0;
  // Is the path's quota for `day` known to be spent by the nodes together?
  virtual bool spent(const std::string& source, const std::string& site, std::int64_t day) = 0;
  // The path's count for `day` over every node, as last seen (none: not seen).
  virtual std::optional<std::uint64_t> shared_count(const std::string& source,
                                                    const std::string& site, std::int64_t day) = 0;
  // The source's day 1 agreed by every node (the earliest any saw), given
  // this node's; none until the shared one is known.
  virtual std::optional<std::int64_t> first_day(const std::string& source,
                                                std::int64_t local_first_day) = 0;
};

}  // namespace mailgate::egress
