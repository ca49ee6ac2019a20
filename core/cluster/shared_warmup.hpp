// cluster/shared_warmup: warm-up quotas shared by every node of a cluster
// (issue 16: "warm-up counters ... are shared too"), the Redis backend of
// egress::PathRegistry's take_quota(). A (source, site) path's count for a
// UTC day is one Redis key, mailgate:warmup:<source>/<site>/<day>
// (expiring two days after its last write); one atomic EVALSHA grants
// min(n, quota − count, a fraction of what is left) and adds it. A
// source's day 1 is mailgate:warmup:start:<source>, the earliest day any
// node saw, so every node is on the same day of the schedule.
// - Leases, as in cluster/leased_rates: each path keeps a small reserve of
//   the day's quota on this node (a lease ≈ kLeaseSeconds of its recent
//   use, never more than the caller has ready beyond the reserve, at most
//   what is left ÷ (kLeftDivisor × live nodes): one node cannot take the
//   day from the others, nor sit on quota it has no mail for), spent by
//   take() under a mutex; refilled on the cluster's io_context when half
//   used and more is ready. take() answers
//   Granted, Wait (reserve empty and a refill in flight, or Redis not known
//   yet: ask again in milliseconds) or Spent (Redis said the day's quota is
//   used: hold until 00:00 UTC).
// - Days are Redis's clock (TIME in the script), not the caller's: every
//   node rolls to a new day at the same instant, so a node with a fast
//   clock cannot open tomorrow's count early (which could let a provider
//   see up to twice the quota around midnight). clock_offset_ms() hands
//   that clock to the registry, so its local counts and holds roll then too
//   (an offset under kClockSlackMs counts as none).
// - A reserve not spent by the day's end is lost (under-sending is the safe
//   side); one idle for kIdleGiveBack is given back (DECRBY, never below 0),
//   and so is every reserve at a clean shutdown (leave()). A refund
//   (a message counted that did not leave) goes back to the reserve.
// - Redis down (Cluster::redis_up() false, or a refill failed within
//   kErrorHoldMs): each path runs on this node's share, quota ÷ live nodes
//   (at least 1), less what this node counted today (the registry's local
//   count); past it, take() says Wait (kLocalWaitUs), not Spent, so mail
//   moves again as soon as Redis answers. What was granted locally is
//   added to the day's key (INCRBY, in the first refill) when Redis
//   answers again: the day's total may then exceed the quota by at most
//   what the shares allowed beyond it (the shares add up to the quota and
//   each ignores the other nodes' counts: at most the count Redis had when
//   it went away). A Redis restarted empty has lost the day's count.
// - Redis's data is not trusted: a count that is not a non-negative integer
//   is taken as the whole quota (nothing more that day: the safe side) and
//   rewritten; a day 1 more than kMaxStartAgeDays old or after today is
//   ignored; replies of any other shape are errors. Each is counted.
// Thread-safe: take/refund/spent/first_day from any worker (a map lookup
// and a few integers under a mutex; never a Redis call on the caller's
// thread); the Redis calls and the timer run on the cluster's io_context.
#pragma once

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "cluster/cluster_config.hpp"
#include "egress/warmup_backend.hpp"

namespace mailgate::metrics {
class Exposition;
}

namespace mailgate::cluster {

class Cluster;
class RedisLink;

inline constexpr const char* kWarmupKeyPrefix = "mailgate:warmup:";
inline constexpr const char* kWarmupStartPrefix = "mailgate:warmup:start:";

struct WarmupStats {
  bool shared = false;  // false: local shares (Redis down or failing), or not known yet
  std::uint64_t granted_shared = 0, granted_local = 0, waits = 0, refills = 0, refills_refused = 0,
                refill_errors = 0, pushed = 0, returned = 0, lost = 0, invalid = 0;
};

class SharedWarmup final : public egress::WarmupBackend {
 public:
  static constexpr double kLeaseSeconds = 2.0;  // a lease: this long of the path's recent use
  static constexpr std::uint32_t kMaxLease = 1000;
  static constexpr unsigned kLeftDivisor = 2;              // a lease <= left / (2 × live nodes)
  static constexpr std::int64_t kWaitUs = 5'000;           // a refill is in flight
  static constexpr std::int64_t kStartingWaitUs = 50'000;  // Redis not known yet
  static constexpr std::int64_t kLocalWaitUs = 1'000'000;  // local share used, Redis down
  static constexpr std::int64_t kErrorHoldMs = 1000;       // local after a failed call
  static constexpr std::int64_t kMaxStartAgeDays = 3650;
  static constexpr std::int64_t kClockSlackMs = 1000;  // a smaller offset counts as none
  static constexpr std::chrono::seconds kIdleGiveBack{5};
  static constexpr std::chrono::milliseconds kWatchPeriod{100};

  SharedWarmup(const ClusterConfig& cfg, const Cluster& cluster, RedisLink& link,
               asio::io_context& ctx);
  ~SharedWarmup() override;
  SharedWarmup(const SharedWarmup&) = delete;
  SharedWarmup& operator=(const SharedWarmup&) = delete;

  // On the io_context's thread.
  void start();
  // A clean shutdown, once no message is taken any more: every unused
  // reserve goes back to Redis, and so does what a refill still in flight
  // grants; `until` is held by each call until Redis answered it (or its
  // deadline passed). From here on every path is local.
  void leave(const std::shared_ptr<void>& until);
  void stop();  // from here on every path is local (the calls in flight are dropped)

  std::int64_t clock_offset_ms() const override {
    return offset_ms_.load(std::memory_order_relaxed);
  }
  egress::WarmupTake take(const std::string& source, const std::string& site, std::int64_t day,
                          std::uint64_t quota, std::uint64_t local_today,
                          std::uint64_t ready) override;
  void refund(const std::string& source, const std::string& site, std::int64_t day) override;
  bool spent(const std::string& source, const std::string& site, std::int64_t day) override;
  std::optional<std::uint64_t> shared_count(const std::string& source, const std::string& site,
                                            std::int64_t day) override;
  std::optional<std::int64_t> first_day(const std::string& source,
                                        std::int64_t local_first_day) override;

  bool fallback() const { return mode_.load(std::memory_order_relaxed) == Mode::Local; }
  WarmupStats stats() const;
  void export_metrics(metrics::Exposition& e) const;

 private:
  enum class Mode { Starting, Shared, Local };
  struct Slot {
    std::int64_t day = -1;        // Redis's day of `reserve` and `spent` (-1: none)
    std::int64_t day_end_us = 0;  // that day's end on this node's steady clock
    std::int64_t reserve = 0;     // leased, not spent
    bool spent = false;           // Redis: nothing left on `day`
    std::uint64_t count = 0;      // Redis's count for `day` in its last answer
    std::uint64_t quota = 0;      // the quota last asked with
    bool refilling = false;
    std::int64_t retry_at_us = 0;
    std::uint64_t unpushed = 0;  // granted locally while Redis was away, not yet in Redis
    std::int64_t unpushed_day = -1;
    std::uint64_t granted_since = 0;  // since the last refill started (the lease size)
    std::int64_t since_us = 0;
    double per_second = 0;
    std::int64_t last_take_us = 0;
  };
  struct Start {
    std::int64_t local = 0;              // this node's day 1, as last pushed
    std::optional<std::int64_t> shared;  // Redis's answer (validated)
    bool pushing = false, pushed = false;
  };
  static std::string path_of(const std::string& source, const std::string& site) {
    return source + "/" + site;
  }
  std::uint32_t lease_size(Slot& s, std::int64_t now_us, std::uint64_t wanted);
  // Under mu_; `wanted`: messages ready beyond the reserve (>= 1).
  void start_refill(const std::string& path, Slot& s, std::int64_t now_us,
                    std::uint64_t wanted = 1);
  void refill(std::string path, std::uint32_t n, std::uint64_t quota, std::uint64_t add,
              std::int64_t add_day);                      // on ctx_
  void push_start(std::string source, std::int64_t day);  // on ctx_
  void return_reserve(const std::string& path, std::int64_t day, std::int64_t n,
                      std::shared_ptr<void> until);  // on ctx_
  void failed(const std::string& error);             // on ctx_
  void watch();
  unsigned live_nodes() const;

  ClusterConfig cfg_;
  const Cluster& cluster_;
  RedisLink& link_;
  asio::io_context& ctx_;
  asio::steady_timer timer_;
  std::atomic<bool> stopped_{true};
  std::atomic<Mode> mode_{Mode::Starting};
  std::int64_t error_until_us_ = 0;      // ctx_'s thread
  std::size_t refills_in_flight_ = 0;    // ctx_'s thread, as the one below
  std::shared_ptr<void> leaving_until_;  // leave()'s, while refills it waits for run
  bool leaving_ = false;                 // leave() was called
  std::atomic<std::int64_t> offset_ms_{0};
  mutable std::mutex mu_;                           // guards slots_, starts_
  std::map<std::string, Slot, std::less<>> slots_;  // by "<source>/<site>"
  std::map<std::string, Start, std::less<>> starts_;
  std::atomic<std::uint64_t> granted_shared_{0}, granted_local_{0}, waits_{0}, refills_{0},
      refills_refused_{0}, refill_errors_{0}, pushed_{0}, returned_{0}, lost_{0}, invalid_{0};
  bool invalid_logged_ = false;
};

}  // namespace mailgate::cluster
