// cluster/cluster_config: the `cluster` section of configure{} (DESIGN §6b,
// issue 16): one Redis shared by several gateway nodes. Without `redis` the
// gateway is a single node and nothing below runs. Promises: `redis` is
// "redis://IP:PORT" (an IP literal: the client never resolves names on a
// worker; no TLS, no password, no Sentinel/Cluster: hiredis 0.14 has none);
// `node` is printable without spaces (default: the host name); the
// heartbeat period derives from lease_ttl (heartbeat_period()).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "config/section.hpp"

namespace mailgate::cluster {

struct ClusterConfig {
  std::string redis;  // "" = no cluster
  std::string node;   // this node's name (default: the host name)
  // A node unseen this long is not live (its share of limits goes to the others).
  config::Duration lease_ttl{10000};
  // Deadline of every Redis call; three misses in a row mean "Redis down".
  config::Duration timeout{50};

  bool enabled() const { return !redis.empty(); }
  // How often a node writes its heartbeat: a tenth of lease_ttl, 100 ms..1 s.
  config::Duration heartbeat_period() const;
};

struct RedisAddress {
  std::string host;  // IP literal
  std::uint16_t port = 6379;
};
// "redis://127.0.0.1:6379", "redis://[::1]:6380", "redis://10.0.0.5" (port
// 6379); nullopt for anything else.
std::optional<RedisAddress> parse_redis_url(std::string_view url);

const config::Section<ClusterConfig>& cluster_section();

// What a `cluster` section shares through Redis and what stays per node
// (issue 16), printed by check-config and logged at start: rate limits
// (cluster/leased_rates.hpp), connection limits (cluster/connection_leases.hpp),
// the suppression list (cluster/shared_suppression.hpp), warm-up quotas
// (cluster/shared_warmup.hpp), tenant/campaign and destination suspensions and
// traffic shaping actions (cluster/shared_tables.hpp).
inline constexpr const char* kClusterNotYetShared =
    "cluster: rate limits (egress_path message and connection rates, site message rates, "
    "mailgate.ratelimit.check), connection limits (max_connections, as leases), the "
    "suppression list, warm-up quotas, tenant/campaign and destination suspensions and traffic "
    "shaping actions are shared through Redis; the listener's connection_rate_per_ip stays per "
    "node (it guards this node's sockets)";

}  // namespace mailgate::cluster
