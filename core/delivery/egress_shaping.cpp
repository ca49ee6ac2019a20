// delivery/egress_shaping: a destination's shaping from the policy's
// egress_path hook (max connections and messages per connection, GCRA
// message and connection rates, TLS, source address, EHLO name), evaluated
// by the destination's owner once per policy version ("cached until
// reload"); until it is known, the destination starts no connection.
#include <spdlog/spdlog.h>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>

#include "delivery/delivery_worker.hpp"

namespace mailgate::delivery {

namespace {

// With a cluster (`rates` set) the rates are shared by every node, keyed by
// the destination and its source: the rate egress_path gives is the
// cluster's total, not each node's.
queue::Shaping shaping_from(const queue::Shaping& defaults, const policy::EgressPath& p,
                            const queue::Destination& d, ratelimit::RateBackend* rates) {
  queue::Shaping s = defaults;
  if (p.max_connections) s.max_connections = *p.max_connections;
  if (p.max_messages_per_connection) s.max_messages_per_connection = *p.max_messages_per_connection;
  const std::string key = d.source + "|" + d.name;
  if (p.max_message_rate)
    s.message_rate = ratelimit::RateLimit(p.max_message_rate->per_second(), p.max_message_burst,
                                          rates, ratelimit::RateKind::MessageRate, key);
  if (p.max_connection_rate)
    s.connection_rate = ratelimit::RateLimit(p.max_connection_rate->per_second(), 1, rates,
                                             ratelimit::RateKind::ConnectionRate, key);
  if (p.tls) s.tls = *p.tls;
  if (p.source_address) s.source_address = *p.source_address;
  if (p.ehlo_name) s.ehlo_name = *p.ehlo_name;
  return s;
}

}  // namespace

bool DeliveryEngine::Worker::shaping_current(queue::Destination& d) {
  // The site first: egress_path sees it, and site limits need it.
  if (paths && !paths->site_current(d)) return false;
  auto policy = deps.policy->current(index);
  if (d.shaping_version == policy->version()) return true;
  if (!policy->has(policy::Event::EgressPath)) {
    d.shaping = shard->default_shaping();
    if (paths) paths->apply_source(d);
    d.shaping_version = policy->version();
    return true;
  }
  if (!d.shaping_pending) {
    d.shaping_pending = true;
    asio::co_spawn(ctx, evaluate_egress(d, std::move(policy)), asio::detached);
  }
  return false;
}

asio::awaitable<void> DeliveryEngine::Worker::evaluate_egress(queue::Destination& d,
                                                              policy::PolicyRef policy) {
  // A named local, not a temporary in the co_await: g++ 12 destroys such
  // temporaries twice (seen: free(): invalid pointer).
  const policy::EgressPathInfo path{d.site, d.source};
  auto p = co_await policy->egress_path(d.name, path);
  // A failed hook (logged and counted by the runtime) leaves the defaults
  // until the next reload rather than calling a broken hook for every message.
  // (A reload starts the rate limiters afresh: at most one extra burst.)
  d.shaping = shaping_from(shard->default_shaping(), p, d, deps.rates);
  if (paths) paths->apply_source(d);  // a declared source's address and EHLO name win
  d.shaping_version = policy->version();
  d.shaping_pending = false;
  spdlog::debug("{}: egress shaping from policy version {}: max_connections={}", d.name,
                policy->version(), d.shaping.max_connections);
  shard->shaping_ready(d);
}

}  // namespace mailgate::delivery
