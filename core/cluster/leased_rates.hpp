// cluster/leased_rates: the Redis backend of ratelimit::RateLimit (issue 16
// item 2): one limit across every node sharing the cluster's Redis, with
// leased tokens so that a check never waits for Redis. Each limit keeps a
// small per-node reserve of tokens; RedisGcra::acquire(n) refills it on the
// cluster's io_context (n ≈ kLeaseSeconds of the rate, 1..burst/2), started
// when the reserve runs low, so under steady demand the tokens are there
// before they are asked for; a check refused for want of tokens doubles
// the next lease (up to half the burst), so a burst the limit allows is not
// refused one round trip at a time. A check with an empty reserve says
// "wait" (RateLimit::acquire > 0: the queue retries then, ratelimit.check
// refuses).
// Redis down (Cluster::redis_up() false, or a refill failed within the last
// kErrorHoldMs) is "fallback": every limit is checked locally at this
// node's share, rate ÷ live nodes (burst likewise, at least 1), the last
// count the heartbeats saw; when Redis is back the limits are shared again.
// Promises:
// - Never blocks the caller: Redis I/O runs only on the cluster's thread
//   (calls are posted there); a limit has at most one refill in flight.
// - Tokens Redis grants obey its GCRA (at most burst + window × rate per
//   key over any window, whatever the nodes, less what was given back); a
//   token not spent within max(kTokenLifeMs, 1/rate) of its grant is no
//   longer spent here but given back to Redis (within kWatchPeriod), so
//   the rate a node leased and could not use (its destination waiting for
//   a connection, say) goes to the others instead of being lost; events
//   are at most burst + (window + token life) × rate, plus the tokens the
//   nodes held when the window opened.
// - leave() (a clean shutdown) gives back every unspent token at once.
// - A limit's first check on a node, before its first lease has answered,
//   goes by the local share, and what it admitted is taken from that lease
//   (a key new to the node is not refused for want of a round trip).
// - Thread-safe; stop() (on the cluster's thread) drops the connection and
//   makes every limit local for good (the objects may outlive the thread).
#pragma once

#include <array>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/cluster_config.hpp"
#include "cluster/redis_gcra.hpp"
#include "cluster/redis_link.hpp"
#include "ratelimit/rate_limit.hpp"

namespace mailgate::metrics {
class Exposition;
}

namespace mailgate::cluster {

class Cluster;
class LeasedRate;

class LeasedRates final : public ratelimit::RateBackend,
                          public std::enable_shared_from_this<LeasedRates> {
 public:
  // A lease is this much of the rate (bench/cluster_bench.cpp: a round trip
  // is ~51 µs alone, 7-8 µs pipelined, so 50 ms of tokens makes the Redis
  // cost per check negligible while keeping the reserve small).
  static constexpr double kLeaseSeconds = 0.05;
  static constexpr std::int64_t kTokenLifeMs = 100;
  static constexpr std::int64_t kErrorHoldMs = 1000;  // local after a failed refill
  static constexpr std::int64_t kPollUs = 1000;       // "wait" while a refill is in flight
  static constexpr std::chrono::milliseconds kWatchPeriod{100};

  // `cluster` tells whether Redis is up and how many nodes share; it must
  // outlive every check made before stop().
  LeasedRates(const ClusterConfig& cfg, asio::io_context& ctx, const Cluster& cluster);
  ~LeasedRates() override;

  std::shared_ptr<ratelimit::SharedRate> make(ratelimit::RateKind kind, std::string_view key,
                                              double per_second, std::uint32_t burst) override;

  // On the io_context's thread.
  void start();  // watches Redis health: logs and counts fallback
  // Gives back every leased token not spent; `until` is held by each call
  // until Redis answered it (or its deadline passed).
  void leave(const std::shared_ptr<void>& until);
  void stop();

  // Limits are local now (Redis down, a refill just failed, or stopped).
  bool fallback() const { return fallback_.load(std::memory_order_relaxed); }
  unsigned live_nodes() const;
  void export_metrics(metrics::Exposition& e) const;

  struct KindStats {
    std::atomic<std::uint64_t> granted_shared{0};  // events admitted on leased tokens
    std::atomic<std::uint64_t> granted_local{0};   // admitted by the local share
    std::atomic<std::uint64_t> refused{0};         // acquire() said wait
    std::atomic<std::uint64_t> refills{0}, refills_refused{0}, refill_errors{0};
    std::atomic<std::uint64_t> refill_us{0};  // summed round trips of refills answered
    std::atomic<std::uint64_t> returned{0};   // leased tokens given back unspent
  };
  const KindStats& stats(ratelimit::RateKind k) const {
    return stats_[static_cast<std::size_t>(k)];
  }
  double fallback_seconds() const;

 private:
  friend class LeasedRate;
  KindStats& stats_of(ratelimit::RateKind k) { return stats_[static_cast<std::size_t>(k)]; }
  void refill(std::shared_ptr<LeasedRate> rate, std::uint32_t n);  // any thread
  void give_back(std::shared_ptr<LeasedRate> rate, std::uint32_t n,
                 std::shared_ptr<void> until = {});  // any thread
  void return_stale();                               // the cluster's thread
  void refill_failed(const std::string& error);      // the cluster's thread
  void watch();
  void set_fallback(bool on, const std::string& why);

  ClusterConfig cfg_;
  asio::io_context& ctx_;
  const Cluster* cluster_;
  std::unique_ptr<RedisLink> link_;  // on ctx_'s thread; null once stopped
  std::unique_ptr<RedisGcra> gcra_;
  std::unique_ptr<asio::steady_timer> timer_;  // null once stopped (may outlive ctx_)
  std::atomic<bool> stopped_{false};
  std::atomic<bool> fallback_{true};  // local until Redis has answered
  std::atomic<std::int64_t> error_until_us_{0};
  std::int64_t fallback_since_us_ = 0;                // the cluster's thread
  std::atomic<std::int64_t> fallback_us_total_{0};    // closed fallback periods
  std::atomic<std::int64_t> fallback_open_since_{0};  // 0: not in fallback (for scrapes)
  bool ever_shared_ = false;
  // Limits that were granted tokens and may still hold some (the cluster's
  // thread): their stale tokens are given back by watch(), all by leave().
  std::vector<std::weak_ptr<LeasedRate>> holders_;
  std::array<KindStats, ratelimit::kRateKindCount> stats_;
};

}  // namespace mailgate::cluster
