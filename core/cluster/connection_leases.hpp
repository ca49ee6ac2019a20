// cluster/connection_leases: connection limits shared by every node of a
// cluster (issue 16, DESIGN §6b). Each limit key (a destination, or a
// (source, site) path) is a Redis sorted set of lease ids ("node:counter")
// scored by their expiry in Redis time; one outbound connection holds one
// lease of each limit it counts against, from open to close.
// - try_acquire() answers at once, from what this node already holds: a
//   spare lease Redis granted earlier becomes the connection's; otherwise it
//   starts (at most one per key at a time) an asynchronous EVALSHA on the
//   cluster's io_context that drops expired leases and grants up to `want`
//   while the set holds fewer than `max`, and answers "wait" with when to
//   ask again (a round trip while the call runs, a short backoff after a
//   refusal: never a busy loop on Redis).
// - Every lease this node holds is renewed in one call every lease_ttl/3;
//   spares nobody took by then are given back. A node that dies stops
//   renewing: its leases expire within lease_ttl and other nodes' acquires
//   drop them.
// - Redis down (Cluster::redis_up() false): limits are local, max ÷ live
//   nodes (rounded up, at least 1) per key; leases held stay counted
//   locally. When Redis answers again every lease held is written back
//   (re-added even past max: those connections are open) before Redis
//   decides again.
// - leave() (a clean shutdown) gives back every lease held or spare at
//   once (ZREM), so other nodes get the slots now, not after lease_ttl.
// - Lease ids are "node:run:counter": a restarted node's ids never match
//   those its previous run left to expire.
// - Fair hand-over: a node Redis refuses is written as a waiter of the
//   limit (a small zset "mailgate:connwait:<key>", "<0|1>:node" -> expiry, gone
//   within lease_ttl when the node stops asking), marked starved when it
//   holds none of the limit. Acquire and renew replies say how many other
//   nodes wait and how many of them are starved; while some wait, this node
//   asks for no lease beyond its share (max / live nodes, rounded up; while
//   one is starved, rounded down, at least 1), and once per renewal
//   (lease_ttl/3) a node above that is told (take_yield) to retire one
//   connection of the limit after its message in flight, until it is down
//   to it or nobody waits. Nothing of this while Redis is down (local
//   shares then).
// - Until the cluster's first heartbeat has answered or failed, nothing is
//   granted (connections wait a few heartbeat periods at start).
// Thread-safe: try_acquire/return_unused/release from any worker; the
// Redis calls and the timer run on the cluster's io_context.
#pragma once

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cluster/cluster_config.hpp"

namespace mailgate::metrics {
class Exposition;
}

namespace mailgate::cluster {

class Cluster;
class RedisLink;

struct LeaseTry {
  bool granted = false;
  std::int64_t wait_us = 0;  // not granted: when to ask again
};

struct LeaseKeyView {
  std::string key;  // without the "mailgate:conn:" prefix
  unsigned held = 0, spare = 0, max = 0;
};

struct LeaseStats {
  bool shared = false;  // false: local limits (Redis down or not yet known)
  std::uint64_t held = 0, acquired = 0, refused = 0, expired = 0, renew_failures = 0,
                local_grants = 0, yielded = 0;
  std::vector<LeaseKeyView> keys;  // keys with leases held or spare, by name
};

inline constexpr const char* kConnKeyPrefix = "mailgate:conn:";
inline constexpr const char* kConnWaitKeyPrefix = "mailgate:connwait:";

class ConnectionLeases {
 public:
  ConnectionLeases(const ClusterConfig& cfg, Cluster& cluster, RedisLink& link,
                   asio::io_context& ctx);
  ~ConnectionLeases();
  ConnectionLeases(const ConnectionLeases&) = delete;
  ConnectionLeases& operator=(const ConnectionLeases&) = delete;

  // On the io_context's thread.
  void start();
  // Stops renewing and removes every lease this node holds from Redis;
  // `until` is held by each call until Redis answered it (or its deadline
  // passed). Nothing is granted afterwards.
  void leave(const std::shared_ptr<void>& until);
  void stop();

  // One lease of `key` under `max` (>= 1) connections cluster-wide; `want`
  // is how many this node would open now (asked from Redis in one call).
  LeaseTry try_acquire(const std::string& key, unsigned max, unsigned want = 1);
  // A lease granted but not used after all: kept as a spare for the next try.
  void return_unused(const std::string& key);
  // The connection holding a lease of `key` closed.
  void release(const std::string& key);
  // Does this node hold at most its share (max / live nodes, rounded up) of
  // `key`? An idle connection above it closes rather than lingers, so its
  // slot goes to nodes with work.
  bool within_share(const std::string& key, unsigned max) const;
  // A connection of `key` has finished a message: true (at most once per
  // renewal and key) when it should close rather than take the next one,
  // because other nodes wait for the limit and this node holds more than
  // its share (above_fair). Counted in mailgate_cluster_leases_yielded_total.
  bool take_yield(const std::string& key, unsigned max);

  bool shared() const { return mode_.load() == Mode::Shared; }
  LeaseStats stats() const;
  void export_metrics(metrics::Exposition& e) const;

  // How long a destination waits before asking again.
  static constexpr std::int64_t kPendingRetryUs = 2'000;    // a call is running
  static constexpr std::int64_t kRefusedRetryUs = 100'000;  // Redis said no
  static constexpr std::int64_t kStartingRetryUs = 50'000;  // Redis not known yet

 private:
  enum class Mode { Starting, Local, Shared };
  struct Key {
    std::vector<std::string> held;   // lease ids of open connections
    std::vector<std::string> spare;  // granted, not yet taken
    bool pending = false;
    std::int64_t spare_at_us = 0;  // when the newest spare was granted
    std::int64_t retry_at_us = 0;
    unsigned max = 0;
    unsigned waiters = 0;    // other nodes refused this limit (last reply)
    unsigned starved = 0;    // those of them holding none of it
    bool yield_due = false;  // the last renewal found this node above_fair
  };
  void tick();
  // `held`: this node's leases of the key when asked (a waiter holding none
  // is starved).
  void acquire(std::string key, unsigned max, unsigned want, std::size_t held);
  void renew(bool adopt);
  void remove_in_redis(std::vector<std::string> ids, const std::string& key,
                       std::shared_ptr<void> until = {});
  std::string next_id();
  unsigned share(unsigned max) const;
  unsigned floor_share(unsigned max) const;  // max / live nodes, rounded down, at least 1
  // Other nodes wait and `k` holds more than its share (or, while one of
  // them holds none, more than max / live nodes rounded down).
  bool above_fair(const Key& k, unsigned max) const;

  ClusterConfig cfg_;
  Cluster& cluster_;
  RedisLink& link_;
  asio::io_context& ctx_;
  asio::steady_timer timer_;
  bool stopped_ = true;
  bool renew_in_flight_ = false;
  std::int64_t next_renew_us_ = 0;
  std::atomic<Mode> mode_{Mode::Starting};
  std::string run_;  // this run's part of lease ids (a restarted node never reuses one)
  std::atomic<std::uint64_t> counter_{0};
  std::atomic<std::uint64_t> acquired_{0}, refused_{0}, expired_{0}, renew_failures_{0},
      local_grants_{0}, yielded_{0};
  mutable std::mutex mu_;  // guards keys_
  std::map<std::string, Key, std::less<>> keys_;
};

}  // namespace mailgate::cluster
