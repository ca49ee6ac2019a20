// cluster/shared_suppression: one suppression list for every node of a
// cluster (issue 16, DESIGN §6b). Redis holds a hash `mailgate:suppress`
// (address → "<ms> <reason>", or "-<ms>" for a removal: a tombstone, so a
// removal wins over an older addition) and a change log, the stream
// `mailgate:suppress:log` (trimmed to about kLogLength entries), whose ids
// are the version a node has read up to.
// - A local write (the API, the plugin, the bounce paths: everything that
//   goes through the node's SuppressionList) is queued here and pushed at
//   once: one script writes the hash (last writer wins by the change's wall
//   clock time) and appends to the log.
// - Every kPollPeriod the node reads the log past its version and applies
//   other nodes' changes to its own list (memory and spool), so an addition
//   made anywhere refuses the address everywhere within about 250 ms.
// - At start, and whenever the log no longer reaches back to its version
//   (trimmed, or Redis came back empty), it catches up with a full HSCAN of
//   the hash, then pushes its own entries Redis lacks (or holds older).
// - Redis down: the local list keeps working; writes queue (at most
//   kMaxPending, the oldest dropped and counted) and are pushed when Redis
//   answers again, then the log is read from where the node was.
// Promises: never on a worker's hot path (RCPT lookups stay in the local
// list); one call in flight at a time; local_change() from any thread, the
// rest on the cluster's io_context. What it does not keep: writes queued
// while Redis is down are in memory (a restart then falls back to the
// catch-up union: an addition survives, a removal made meanwhile does not).
#pragma once

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "cluster/cluster_config.hpp"

struct redisReply;

namespace mailgate::metrics {
class Exposition;
}

namespace mailgate::cluster {

class Cluster;
class RedisLink;

struct SuppressionChange {
  bool removed = false;
  std::string address;  // normalized by the list
  std::string reason;   // additions
  std::int64_t ms = 0;  // wall clock of the change (the newer wins)
};

// The node's own list, as the sync sees it.
struct SuppressionReplica {
  // A change from another node: applied (memory and spool) unless the
  // local entry is newer; never reported back through local_change().
  std::function<void(const SuppressionChange&)> apply;
  // Every local entry (additions), for the catch-up union.
  std::function<std::vector<SuppressionChange>()> snapshot;
};

struct SuppressionSyncStats {
  std::uint64_t pushed = 0, applied = 0, dropped = 0, full_syncs = 0, pending = 0;
  double lag_seconds = 0;  // since the log was last read (0: never yet)
  std::string version;     // the log id read up to
};

inline constexpr const char* kSuppressKey = "mailgate:suppress";
inline constexpr const char* kSuppressLogKey = "mailgate:suppress:log";

class SharedSuppression {
 public:
  SharedSuppression(const ClusterConfig& cfg, Cluster& cluster, RedisLink& link,
                    asio::io_context& ctx, SuppressionReplica replica);
  ~SharedSuppression();
  SharedSuppression(const SharedSuppression&) = delete;
  SharedSuppression& operator=(const SharedSuppression&) = delete;

  void start();  // on the io_context's thread
  void stop();
  // Any thread: a write made through this node's list.
  void local_change(SuppressionChange c);

  SuppressionSyncStats stats() const;
  void export_metrics(metrics::Exposition& e) const;

  static constexpr std::chrono::milliseconds kPollPeriod{250};
  static constexpr std::size_t kMaxPending = 100'000;
  static constexpr std::size_t kPushBatch = 200;
  static constexpr std::size_t kReadBatch = 1000;
  static constexpr long kLogLength = 10'000;

 private:
  void tick();
  void work();  // push what is queued, then read the log (one call at a time)
  void push();
  void poll();
  void scan(std::string cursor, std::string version);
  void finish_scan(std::string version);
  void apply_entries(const redisReply* entries);
  void done(bool ok);

  ClusterConfig cfg_;
  Cluster& cluster_;
  RedisLink& link_;
  asio::io_context& ctx_;
  SuppressionReplica replica_;
  asio::steady_timer timer_;
  bool stopped_ = true;
  bool busy_ = false;
  std::deque<SuppressionChange> pending_;
  std::string version_;  // "" = never synced: a full catch-up first
  // address → ms of Redis's hash, gathered by a catch-up scan.
  std::unordered_map<std::string, std::int64_t> scanned_;
  std::atomic<std::uint64_t> pushed_{0}, applied_{0}, dropped_{0}, full_syncs_{0}, pending_n_{0};
  std::atomic<std::int64_t> last_read_us_{0};
  mutable std::mutex mu_;  // guards version_copy_
  std::string version_copy_;
};

}  // namespace mailgate::cluster
