// cluster/cluster: this node's membership in a cluster of gateways sharing
// one Redis (issue 16, DESIGN §6b): it writes a heartbeat every
// ClusterConfig::heartbeat_period() (node → Redis time, outbound
// connections), reads every node's, and tracks whether Redis is up
// (RedisHealth over its calls, each with the cluster.timeout deadline).
// It runs on one worker's io_context (one RedisLink there); status(),
// redis_up() and live_nodes() may be read from any thread.
// Promises:
// - Never blocks its worker; Redis stalled or gone costs at most one call
//   in flight per heartbeat, and the connection is dropped when Redis is
//   declared down (nothing accumulates), re-opened at the next heartbeat.
// - live_nodes() >= 1 (this node counts itself); while Redis is down it is
//   the last count seen (the share a node's local limits are scaled to).
// - Heartbeat times are Redis's clock (TIME inside the script), so nodes
//   with skewed clocks still agree on who is live.
// - leave() (a clean shutdown) removes this node from the heartbeat set, so
//   the other nodes count one live node less at their next heartbeat, not
//   after lease_ttl.
#pragma once

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cluster/cluster_config.hpp"
#include "cluster/redis_health.hpp"
#include "cluster/redis_link.hpp"

namespace mailgate::metrics {
class Exposition;
}

namespace mailgate::cluster {

struct NodeSeen {
  std::string node;
  std::int64_t last_seen_ms = 0;  // Redis time of its last heartbeat
  std::uint64_t connections = 0;  // its outbound connections then
  bool live = false;              // seen within lease_ttl
};

struct ClusterStatus {
  std::string node;  // this node
  std::string redis;
  bool redis_up = false;
  double latency_ms = 0;               // round trip of the last heartbeat answered
  std::int64_t last_heartbeat_ms = 0;  // Redis time of this node's last heartbeat
  unsigned live_nodes = 1;
  std::uint64_t failures = 0;  // Redis calls that missed, over the run
  std::string last_error;
  std::vector<NodeSeen> nodes;  // by name
};

// Keys in Redis (all under "mailgate:").
inline constexpr const char* kNodesKey = "mailgate:cluster:nodes";              // zset node → ms
inline constexpr const char* kConnectionsKey = "mailgate:cluster:connections";  // hash node → n

class Cluster {
 public:
  Cluster(const ClusterConfig& cfg, asio::io_context& ctx,
          std::function<std::uint64_t()> connections);
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  // Both on the io_context's thread (or before it runs / after it stopped).
  void start();
  // No more heartbeats, and this node's heartbeat and connection count are
  // removed from Redis; `until` is held by each call until Redis answered
  // it (or its deadline passed).
  void leave(const std::shared_ptr<void>& until);
  void stop();  // no more heartbeats; closes the connection

  ClusterStatus status() const;
  bool redis_up() const { return up_.load(std::memory_order_relaxed); }
  unsigned live_nodes() const { return live_.load(std::memory_order_relaxed); }
  // Has Redis answered, or been declared down, since start? (Before that,
  // redis_up() false means "not known yet", not "down".)
  bool known() const { return known_.load(std::memory_order_relaxed); }
  // The connection the cluster's other parts (leases, suppression) share;
  // on the io_context's thread only.
  RedisLink& link() { return link_; }
  void export_metrics(metrics::Exposition& e) const;

 private:
  void tick();
  void heartbeat();
  void answered(const struct redisReply* r, std::chrono::steady_clock::time_point sent);
  void missed(const std::string& error);

  ClusterConfig cfg_;
  asio::io_context& ctx_;
  std::function<std::uint64_t()> connections_;
  RedisLink link_;
  RedisHealth health_;
  asio::steady_timer timer_;
  bool stopped_ = true;
  bool heartbeat_in_flight_ = false;
  std::atomic<bool> up_{false};
  std::atomic<unsigned> live_{1};
  std::atomic<bool> known_{false};
  mutable std::mutex mu_;  // guards status_
  ClusterStatus status_;
};

}  // namespace mailgate::cluster
