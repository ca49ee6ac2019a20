// delivery/egress_paths: sources, pools, sites and warm-up for one owner
// worker's queue (the queue::PathGate of its shard), over the current
// policy's egress::Plan and the engine's process-wide egress::PathRegistry.
// - A message's pool (msg:set_pool, else the pool "default" when declared)
//   picks the source of each of its destinations by weight, skipping
//   sources whose warm-up quota for the destination's site is spent.
// - A destination's site comes from its MX hosts (the worker's resolver,
//   cached for the answer's TTL, at least a minute); it is looked up when
//   the destination first needs a connection, and refreshed in the
//   background (stale while revalidating) after that.
// - A connection holds a (source, site) slot from start to close; a message
//   passes the site's rate and takes one of the source's warm-up quota for
//   the site (sites no declaration covers count as "other"); a spent quota
//   moves the message to another source of its pool, or holds it until
//   00:00 UTC (warmup_hold: no attempt counted, no DSN).
// - Traffic shaping actions (egress::ShapingActions) in force on a path:
//   "suspend" holds its connections and messages (held_us), an override
//   lowers its site's max_connections / max_message_rate until it ends.
// - In a cluster (EngineDeps::leases), a connection also holds a lease of
//   the destination's max_connections and, when its site caps them, of the
//   site's: the limits hold over every node (cluster/connection_leases.hpp).
// Promises: only the owner worker calls it (the registry is the shared
// part); without declarations every answer is today's behaviour (source
// "", no site, no limit, no quota).
#pragma once

#include <asio/awaitable.hpp>
#include <atomic>
#include <memory>
#include <string>
#include <unordered_map>

#include "delivery/delivery_engine.hpp"
#include "egress/egress_plan.hpp"
#include "egress/path_registry.hpp"
#include "egress/pool_picker.hpp"
#include "egress/shaping_actions.hpp"
#include "queue/path_gate.hpp"
#include "queue/queue_shard.hpp"

namespace mailgate::delivery {

class EgressPaths final : public queue::PathGate {
 public:
  EgressPaths(DeliveryEngine::Worker& worker, egress::PathRegistry& registry,
              egress::ShapingActions& shaping);

  std::string pick_source(const std::string& destination, const queue::Item& item) override;
  bool open_connection(queue::Destination& d) override;
  void close_connection(queue::Destination& d) override;
  std::int64_t open_retry_us(const queue::Destination& d) override;
  std::int64_t admit_message(queue::Destination& d, std::int64_t now_us) override;
  Quota take_quota(queue::Destination& d, const queue::Item& item) override;
  void refund_quota(queue::Destination& d) override;
  bool may_linger(const queue::Destination& d) override;
  bool keep_connection(queue::Destination& d) override;
  std::int64_t held_us(const queue::Destination& d, std::int64_t now_us) override;

  // Is d's site known? False when its lookup started (the shard hears
  // shaping_ready(d) when it ends).
  bool site_current(queue::Destination& d);
  // d's source's address and EHLO name over its shaping (after egress_path).
  void apply_source(queue::Destination& d) const;

  egress::ShapingActions& shaping() { return shaping_; }  // process-wide, thread-safe

  std::atomic<std::uint64_t> warmup_holds{0};  // messages held until 00:00 UTC

 private:
  std::shared_ptr<const egress::Plan> plan() const;
  const egress::Pool* pool_of(const egress::Plan& plan, const queue::Item& item) const;
  std::string quota_site(const std::string& site) const;
  unsigned site_max_connections(const queue::Destination& d);  // 0: no cap
  bool take_leases(queue::Destination& d, unsigned site_max);
  static std::string destination_lease_key(const queue::Destination& d);
  std::string site_lease_key(const queue::Destination& d) const;
  asio::awaitable<void> resolve_site(queue::Destination& d,
                                     std::shared_ptr<const egress::Plan> plan);

  DeliveryEngine::Worker& worker_;
  egress::PathRegistry& registry_;
  egress::ShapingActions& shaping_;
  egress::PoolPicker picker_;
  struct CachedSite {
    std::string site;
    std::int64_t until_ms = 0;
    const egress::Plan* plan = nullptr;  // the plan that matched it (a reload looks again)
  };
  std::unordered_map<std::string, CachedSite> sites_;  // by destination name
  std::int64_t hold_logged_day_ = -1;
  std::int64_t open_retry_us_ = kOpenRetryUs;          // of the last refused open_connection()
  mutable const egress::Plan* shared_plan_ = nullptr;  // the one handed to the registry
};

}  // namespace mailgate::delivery
