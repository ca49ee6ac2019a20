// cluster/cluster_config: see cluster_config.hpp.
#include "cluster/cluster_config.hpp"

#include <algorithm>

#include "config/host_port.hpp"
#include "config/schema.hpp"

namespace mailgate::cluster {

config::Duration ClusterConfig::heartbeat_period() const {
  return std::clamp(config::Duration(lease_ttl.count() / 10), config::Duration(100),
                    config::Duration(1000));
}

std::optional<RedisAddress> parse_redis_url(std::string_view url) {
  constexpr std::string_view scheme = "redis://";
  if (!url.starts_with(scheme)) return std::nullopt;
  const auto rest = url.substr(scheme.size());
  if (rest.empty() || rest.find('/') != std::string_view::npos) return std::nullopt;
  if (config::is_ip_literal(rest) && rest.find(':') == std::string_view::npos)
    return RedisAddress{std::string(rest), 6379};
  auto hp = config::parse_host_port(rest);
  if (!hp || hp->second == 0) return std::nullopt;
  return RedisAddress{hp->first, hp->second};
}

namespace {

void redis_url(const std::string& url, const std::string& key, const config::Context& ctx) {
  if (url.empty()) return;
  if (!parse_redis_url(url))
    ctx.fail(key, key +
                      ": expected \"redis://IP:PORT\" (an IP literal, e.g. "
                      "\"redis://127.0.0.1:6379\"; no names, no password, no TLS: a single "
                      "redis-server), got \"" +
                      url + "\"");
}

void node_name(const std::string& n, const std::string& key, const config::Context& ctx) {
  const bool ok = !n.empty() && n.size() <= 64 && std::all_of(n.begin(), n.end(), [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return c > 0x20 && c < 0x7f;
  });
  if (!ok) ctx.fail(key, key + ": expected a node name (1..64 printable characters, no spaces)");
}

// The bounds of the two durations (a section check: it names both keys).
void duration_bounds(ClusterConfig& c, const std::string& path, const config::Context& ctx) {
  if (c.timeout.count() > 5000) ctx.fail(path + ".timeout", path + ".timeout: at most 5s");
  if (c.lease_ttl.count() < 1000) ctx.fail(path + ".lease_ttl", path + ".lease_ttl: at least 1s");
}

}  // namespace

const config::Section<ClusterConfig>& cluster_section() {
  using C = ClusterConfig;
  static const config::Section<C> s{
      {
          config::string("redis", &C::redis,
                         "the Redis shared by the nodes, `redis://IP:PORT` (one redis-server; no "
                         "Sentinel, Cluster, TLS or password); empty: a single node, everything "
                         "local")
              .check(redis_url),
          config::string("node", &C::node,
                         "this node's name in heartbeats and `mailgate cluster status` (unique "
                         "per node)")
              .check(node_name)
              .shown_default("the gateway's `hostname`"),
          config::duration("lease_ttl", &C::lease_ttl,
                           "a node whose heartbeat is older than this is no longer live; "
                           "heartbeats are written every tenth of it (100 ms..1 s)"),
          config::duration("timeout", &C::timeout,
                           "deadline of each Redis call; three misses in a row mark Redis down "
                           "(/readyz `degraded`, limits local)"),
      },
      duration_bounds};
  return s;
}

}  // namespace mailgate::cluster
