// cluster/cluster: see cluster.hpp. One heartbeat is one EVALSHA: write this
// node's time and connections, forget nodes unseen for an hour, and read
// every node back, so a heartbeat is also the status refresh.
#include "cluster/cluster.hpp"

#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <string_view>

#include "metrics/exposition.hpp"

namespace mailgate::cluster {
namespace {

// KEYS: nodes zset, connections hash. ARGV: node, connections, forget-after ms.
// Returns {now_ms, {node, ms, ...}, {node, connections, ...}}.
constexpr std::string_view kHeartbeatScript = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[3]))
for _, n in ipairs(old) do
  redis.call('ZREM', KEYS[1], n)
  redis.call('HDEL', KEYS[2], n)
end
return {now, redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES'), redis.call('HGETALL', KEYS[2])}
)lua";

constexpr std::int64_t kForgetAfterMs = 3600 * 1000;

const metrics::Family kRedisUp{"mailgate_cluster_redis_up", metrics::Type::Gauge,
                               "1 when the cluster's Redis answers (0: limits are local)"};
const metrics::Family kLatency{"mailgate_cluster_redis_latency_seconds", metrics::Type::Gauge,
                               "round trip of the last heartbeat Redis answered"};
const metrics::Family kNodes{"mailgate_cluster_nodes", metrics::Type::Gauge,
                             "live nodes (heartbeat within cluster.lease_ttl), this one included"};
const metrics::Family kFailures{"mailgate_cluster_redis_failures_total", metrics::Type::Counter,
                                "Redis calls that timed out, failed or got an error reply"};

}  // namespace

Cluster::Cluster(const ClusterConfig& cfg, asio::io_context& ctx,
                 std::function<std::uint64_t()> connections)
    : cfg_(cfg),
      ctx_(ctx),
      connections_(std::move(connections)),
      link_(ctx, parse_redis_url(cfg.redis).value_or(RedisAddress{}).host,
            parse_redis_url(cfg.redis).value_or(RedisAddress{}).port, cfg.timeout),
      timer_(ctx) {
  status_.node = cfg.node;
  status_.redis = cfg.redis;
}

Cluster::~Cluster() = default;

void Cluster::start() {
  stopped_ = false;
  heartbeat();
  tick();
}

void Cluster::leave(const std::shared_ptr<void>& until) {
  stopped_ = true;
  timer_.cancel();
  // After any heartbeat still in flight (one connection: Redis runs them in order).
  link_.command({"ZREM", kNodesKey, cfg_.node}, [until](const redisReply*, std::string_view) {});
  link_.command({"HDEL", kConnectionsKey, cfg_.node},
                [until](const redisReply*, std::string_view) {});
}

void Cluster::stop() {
  stopped_ = true;
  timer_.cancel();
  link_.reset();
}

void Cluster::tick() {
  timer_.expires_after(cfg_.heartbeat_period());
  timer_.async_wait([this](std::error_code ec) {
    if (ec || stopped_) return;
    // A heartbeat still waiting (timeout above the period) is not doubled.
    if (!heartbeat_in_flight_) heartbeat();
    tick();
  });
}

void Cluster::heartbeat() {
  heartbeat_in_flight_ = true;
  const auto sent = std::chrono::steady_clock::now();
  const std::uint64_t conns = connections_ ? connections_() : 0;
  link_.eval(std::string(kHeartbeatScript), {kNodesKey, kConnectionsKey},
             {cfg_.node, std::to_string(conns), std::to_string(kForgetAfterMs)},
             [this, sent](const redisReply* r, std::string_view error) {
               heartbeat_in_flight_ = false;
               if (stopped_) return;
               if (!error.empty()) {
                 missed(std::string(error));
                 return;
               }
               if (r->type == REDIS_REPLY_ERROR) {
                 missed("Redis: " + std::string(r->str, r->len));
                 return;
               }
               answered(r, sent);
             });
}

void Cluster::answered(const redisReply* r, std::chrono::steady_clock::time_point sent) {
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
      r->element[1]->type != REDIS_REPLY_ARRAY || r->element[2]->type != REDIS_REPLY_ARRAY) {
    missed("unexpected heartbeat reply");
    return;
  }
  const auto latency =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - sent).count();
  const std::int64_t now = reply_number(r->element[0]);
  std::vector<NodeSeen> nodes;
  const auto* z = r->element[1];
  for (std::size_t i = 0; i + 1 < z->elements; i += 2) {
    NodeSeen n;
    n.node = std::string(reply_text(z->element[i]));
    n.last_seen_ms = reply_number(z->element[i + 1]);
    n.live = now - n.last_seen_ms <= cfg_.lease_ttl.count();
    nodes.push_back(std::move(n));
  }
  const auto* h = r->element[2];
  for (std::size_t i = 0; i + 1 < h->elements; i += 2) {
    const auto name = reply_text(h->element[i]);
    for (auto& n : nodes)
      if (n.node == name)
        n.connections = static_cast<std::uint64_t>(reply_number(h->element[i + 1]));
  }
  std::sort(nodes.begin(), nodes.end(),
            [](const NodeSeen& a, const NodeSeen& b) { return a.node < b.node; });
  const auto live = static_cast<unsigned>(
      std::count_if(nodes.begin(), nodes.end(), [](const NodeSeen& n) { return n.live; }));
  live_.store(std::max(1u, live), std::memory_order_relaxed);
  if (health_.record(true) == RedisHealth::Change::Up)
    spdlog::info("cluster: node {} connected to Redis at {} ({} live node(s))", cfg_.node,
                 cfg_.redis, std::max(1u, live));
  up_.store(true, std::memory_order_relaxed);
  known_.store(true, std::memory_order_relaxed);
  std::lock_guard lock(mu_);
  status_.redis_up = true;
  status_.latency_ms = latency;
  status_.last_heartbeat_ms = now;
  status_.live_nodes = std::max(1u, live);
  status_.failures = health_.failures();
  status_.nodes = std::move(nodes);
}

void Cluster::missed(const std::string& error) {
  const auto change = health_.record(false);
  if (change == RedisHealth::Change::Down) {
    spdlog::warn(
        "cluster: Redis at {} is down ({} calls in a row failed, last: {}): node {} goes on "
        "alone (last seen {} live node(s)) and reconnects at each heartbeat",
        cfg_.redis, RedisHealth::kMissesForDown, error, cfg_.node, live_.load());
  }
  // Down (or never up): drop the connection, so a stalled server holds no
  // calls; the next heartbeat connects again.
  if (!health_.up()) link_.reset();
  up_.store(health_.up(), std::memory_order_relaxed);
  if (change == RedisHealth::Change::Down) known_.store(true, std::memory_order_relaxed);
  std::lock_guard lock(mu_);
  status_.redis_up = health_.up();
  status_.failures = health_.failures();
  status_.last_error = error;
}

ClusterStatus Cluster::status() const {
  std::lock_guard lock(mu_);
  return status_;
}

void Cluster::export_metrics(metrics::Exposition& e) const {
  const auto s = status();
  e.add(kRedisUp, s.redis_up ? 1 : 0);
  e.add(kLatency, s.latency_ms / 1000.0);
  e.add(kNodes, s.live_nodes);
  e.add(kFailures, static_cast<double>(s.failures));
}

}  // namespace mailgate::cluster
