// delivery/egress_paths: see egress_paths.hpp.
#include "delivery/egress_paths.hpp"

#include <spdlog/spdlog.h>
#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>

#include "cluster/connection_leases.hpp"
#include "delivery/delivery_worker.hpp"
#include "policy/runtime.hpp"

namespace mailgate::delivery {

namespace {
constexpr std::int64_t kMinSiteTtlMs = 60'000;
constexpr std::int64_t kMaxSiteTtlMs = 86'400'000;
constexpr std::size_t kMaxCachedSites = 100'000;

// A route or address literal ("[host]:port", "user@[host]:port", "[1.2.3.4]") has no MX.
bool is_route(const std::string& name) { return name.find('[') != std::string::npos; }
}  // namespace

EgressPaths::EgressPaths(DeliveryEngine::Worker& worker, egress::PathRegistry& registry,
                         egress::ShapingActions& shaping)
    : worker_(worker), registry_(registry), shaping_(shaping) {}

std::shared_ptr<const egress::Plan> EgressPaths::plan() const {
  auto p = worker_.deps.policy->current(worker_.index)->egress();
  if (p.get() != shared_plan_) {  // a new policy version: the API and /metrics see it
    shared_plan_ = p.get();
    registry_.set_plan(p);
  }
  return p;
}

const egress::Pool* EgressPaths::pool_of(const egress::Plan& plan, const queue::Item& item) const {
  return item.pool.empty() ? plan.default_pool() : plan.pool(item.pool);
}

std::string EgressPaths::quota_site(const std::string& site) const {
  return site.empty() ? std::string(egress::kOtherSite) : site;
}

std::string EgressPaths::pick_source(const std::string& destination, const queue::Item& item) {
  const auto p = plan();
  const auto* pool = pool_of(*p, item);
  if (!pool) {
    if (!item.pool.empty())
      spdlog::warn("{}: message {}: pool '{}' is no longer declared: sent from the default source",
                   destination, item.id.hex(), item.pool);
    return "";
  }
  std::string site;  // "" = not known yet: every source may have quota
  if (p->sites().empty() || is_route(destination))
    site = egress::kOtherSite;
  else if (auto it = sites_.find(destination); it != sites_.end() && it->second.plan == p.get())
    site = quota_site(it->second.site);
  const auto now = queue::now_ms();
  auto has_quota = [&](const egress::PoolMember& m) {
    const auto* src = p->source(m.source);
    if (!src || !src->warmup || site.empty()) return true;
    auto left = registry_.remaining(*src, site, now);
    return !left || *left > 0;
  };
  const auto* m = picker_.next(*p, *pool, has_quota);
  if (!m) m = picker_.next(*p, *pool);  // every quota spent: take_quota() holds it
  return m ? m->source : "";
}

unsigned EgressPaths::site_max_connections(const queue::Destination& d) {
  if (d.site.empty() && d.source.empty()) return 0;
  const auto p = plan();
  const auto* site = p->site(d.site);
  unsigned max = site ? site->max_connections : 0;
  if (const auto o = shaping_.override_for(d.source, d.site, queue::now_ms()); o.max_connections)
    max = max ? std::min(max, o.max_connections) : o.max_connections;
  return max;
}

std::string EgressPaths::destination_lease_key(const queue::Destination& d) {
  return "dest:" + d.name + (d.source.empty() ? "" : "/" + d.source);
}

std::string EgressPaths::site_lease_key(const queue::Destination& d) const {
  return "site:" + d.source + "/" + quota_site(d.site);
}

// The cluster's leases: the destination's, then the site's (when capped).
// A refusal gives back what was taken and says when to ask again.
bool EgressPaths::take_leases(queue::Destination& d, unsigned site_max) {
  auto* leases = worker_.deps.leases;
  if (!leases) return true;
  const unsigned max = std::max(1u, d.shaping.max_connections);
  // How many this destination would open now: asked from Redis in one call.
  const auto ready = d.ready.takeable();
  const auto busy = d.active - std::min<std::size_t>(d.active, d.idle.size());
  const auto want = static_cast<unsigned>(std::clamp<std::size_t>(
      std::min<std::size_t>(max - std::min(max, d.active), ready > busy ? ready - busy : 1), 1,
      max));
  const auto dest = leases->try_acquire(destination_lease_key(d), max, want);
  if (!dest.granted) {
    open_retry_us_ = dest.wait_us;
    return false;
  }
  if (site_max > 0) {
    const auto site = leases->try_acquire(site_lease_key(d), site_max, want);
    if (!site.granted) {
      leases->return_unused(destination_lease_key(d));
      open_retry_us_ = site.wait_us;
      return false;
    }
    ++d.site_leases;
  }
  ++d.destination_leases;
  return true;
}

bool EgressPaths::open_connection(queue::Destination& d) {
  open_retry_us_ = kOpenRetryUs;
  const unsigned max = site_max_connections(d);
  if (!take_leases(d, max)) return false;
  if (d.site.empty() && d.source.empty()) return true;  // nothing declared for it
  if (!registry_.try_connect(d.source, quota_site(d.site), max)) {
    // The node's own count is full: the leases go back for the next try.
    if (auto* leases = worker_.deps.leases) {
      if (max > 0 && d.site_leases > 0) {
        --d.site_leases;
        leases->return_unused(site_lease_key(d));
      }
      if (d.destination_leases > 0) {
        --d.destination_leases;
        leases->return_unused(destination_lease_key(d));
      }
    }
    return false;
  }
  ++d.site_slots;
  return true;
}

std::int64_t EgressPaths::open_retry_us(const queue::Destination&) { return open_retry_us_; }

void EgressPaths::close_connection(queue::Destination& d) {
  if (auto* leases = worker_.deps.leases) {
    if (d.destination_leases > 0) {
      --d.destination_leases;
      leases->release(destination_lease_key(d));
    }
    if (d.site_leases > 0) {
      --d.site_leases;
      leases->release(site_lease_key(d));
    }
  }
  if (d.site_slots == 0) return;
  --d.site_slots;
  registry_.disconnect(d.source, quota_site(d.site));
}

std::int64_t EgressPaths::admit_message(queue::Destination& d, std::int64_t now_us) {
  if (d.site.empty()) return 0;
  const auto p = plan();
  const auto* site = p->site(d.site);
  const auto o = shaping_.override_for(d.source, d.site, queue::now_ms());
  if (site && o.max_message_rate > 0 &&
      (site->max_message_rate <= 0 || o.max_message_rate < site->max_message_rate)) {
    // A shaping override for a while: the registry restarts the path's rate
    // with it, and again with the site's own when it ends.
    egress::Site slower = *site;
    slower.max_message_rate = o.max_message_rate;
    slower.max_message_burst = 1;
    return registry_.acquire_message(d.source, &slower, now_us);
  }
  return registry_.acquire_message(d.source, site, now_us);
}

std::int64_t EgressPaths::held_us(const queue::Destination& d, std::int64_t /*now_us*/) {
  if (d.site.empty()) return 0;
  const auto now = queue::now_ms();
  const auto until = shaping_.blocked_until(d.source, d.site, now);
  if (until <= now) return 0;
  // Asked again at least once a second: an action cleared by the admin
  // API lets the path go without waiting for its whole duration.
  return std::min<std::int64_t>(until - now, 1000) * 1000;
}

// The default source (no mailgate.source): no warm-up, counted per site.
const egress::Source kDefaultSource{};

queue::PathGate::Quota EgressPaths::take_quota(queue::Destination& d, const queue::Item& item) {
  if (d.source.empty()) {
    if (!d.site.empty()) registry_.take_quota(kDefaultSource, d.site, queue::now_ms());
    return {};
  }
  const auto p = plan();
  const auto* src = p->source(d.source);
  if (!src) return {};  // undeclared since (reload): no quota to keep
  const auto site = quota_site(d.site);
  const auto now = queue::now_ms();
  const auto taken = registry_.take_quota(*src, site, now, d.ready.takeable());
  if (taken) return {};
  if (taken.kind == egress::WarmupTake::Kind::Wait) {
    // The cluster's share is on its way (a round trip): not a hold, not an
    // attempt (the backend counts these waits).
    return {Quota::Kind::Wait, "", 0, taken.wait_us};
  }
  // Spent: another source of the message's pool with quota left, by weight.
  if (const auto* pool = pool_of(*p, item)) {
    const auto* m = picker_.next(*p, *pool, [&](const egress::PoolMember& m) {
      if (m.source == d.source) return false;
      const auto* other = p->source(m.source);
      if (!other) return false;
      auto left = registry_.remaining(*other, site, now);
      return !left || *left > 0;
    });
    if (m) return {Quota::Kind::Move, m->source, 0};
  }
  warmup_holds.fetch_add(1, std::memory_order_relaxed);
  const auto day = egress::utc_day(now);
  if (hold_logged_day_ != day) {  // one line per worker and day, not per message
    hold_logged_day_ = day;
    spdlog::info(
        "{}: warmup_hold: the warm-up quota of source {} for site {} is spent today and no other "
        "source of the pool has any left: messages wait for 00:00 UTC (no attempt counted)",
        d.name, d.source, site);
  }
  return {Quota::Kind::Hold, "", taken.until_ms};
}

void EgressPaths::refund_quota(queue::Destination& d) {
  if (d.source.empty()) {
    if (!d.site.empty()) registry_.refund_quota(kDefaultSource, d.site, queue::now_ms());
    return;
  }
  const auto p = plan();
  if (const auto* src = p->source(d.source))
    registry_.refund_quota(*src, quota_site(d.site), queue::now_ms());
}

bool EgressPaths::may_linger(const queue::Destination& d) {
  // Above this node's share of a cluster-wide limit: the slot goes back to
  // the nodes that may have work for it.
  if (auto* leases = worker_.deps.leases;
      leases && d.destination_leases > 0 &&
      !leases->within_share(destination_lease_key(d), d.shaping.max_connections))
    return false;
  if (d.site_slots == 0 || d.site.empty()) return true;
  const auto p = plan();
  const auto* site = p->site(d.site);
  return !site || site->max_connections == 0;
}

bool EgressPaths::keep_connection(queue::Destination& d) {
  // Other nodes wait for a cluster-wide limit this node holds more than its
  // share of: this connection gives its slot up after its message.
  auto* leases = worker_.deps.leases;
  if (!leases) return true;
  if (d.destination_leases > 0 &&
      leases->take_yield(destination_lease_key(d), d.shaping.max_connections))
    return false;
  if (d.site_leases > 0) {
    const unsigned site_max = site_max_connections(d);
    if (site_max > 0 && leases->take_yield(site_lease_key(d), site_max)) return false;
  }
  return true;
}

bool EgressPaths::site_current(queue::Destination& d) {
  auto p = plan();
  if (p->sites().empty() || is_route(d.name)) {
    if (d.active == 0) d.site.clear();
    return true;
  }
  const auto now = queue::now_ms();
  auto it = sites_.find(d.name);
  const bool known = it != sites_.end() && it->second.plan == p.get();
  if (known && d.active == 0) d.site = it->second.site;
  if (known && it->second.until_ms > now) return true;
  if (!d.site_pending) {
    d.site_pending = true;
    asio::co_spawn(worker_.ctx, resolve_site(d, std::move(p)), asio::detached);
  }
  return known;  // a stale site serves while it is looked up again
}

asio::awaitable<void> EgressPaths::resolve_site(queue::Destination& d,
                                                std::shared_ptr<const egress::Plan> plan) {
  auto mx = co_await worker_.resolver->mx(d.name);
  // Stopping: the shard (and `d`) may be gone or going; nothing waits for this.
  if (!worker_.shard || worker_.shard->stopped()) co_return;
  std::vector<std::string> hosts;
  if (mx.status == dns::Status::Ok)
    for (const auto& h : mx.hosts) hosts.push_back(h.name);
  CachedSite c;
  c.site = plan->site_for(hosts);
  c.plan = plan.get();
  const auto ttl =
      std::clamp<std::int64_t>(std::int64_t{mx.ttl} * 1000, kMinSiteTtlMs, kMaxSiteTtlMs);
  c.until_ms = queue::now_ms() + ttl;
  if (sites_.size() >= kMaxCachedSites) sites_.clear();  // bounded: looked up again
  if (d.active == 0) d.site = c.site;
  spdlog::debug("{}: site '{}' (MX {})", d.name, c.site, hosts.empty() ? "-" : hosts.front());
  sites_[d.name] = std::move(c);
  d.site_pending = false;
  worker_.shard->shaping_ready(d);
}

void EgressPaths::apply_source(queue::Destination& d) const {
  if (d.source.empty()) return;
  const auto p = plan();
  const auto* src = p->source(d.source);
  if (!src) return;
  d.shaping.source_address = src->address;
  if (!src->ehlo_name.empty()) d.shaping.ehlo_name = src->ehlo_name;
}

}  // namespace mailgate::delivery
