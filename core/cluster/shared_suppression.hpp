// cluster/shared_suppression: one suppression list for every node of a
// cluster (issue 16, DESIGN §6b), as one cluster/replicated_table: Redis
// holds the hash `mailgate:suppress` (address → "<ms> <reason>", or "-<ms>"
// for a removal) and the change log `mailgate:suppress:log`; the table's
// timing, catch-up, Redis-down queue and checks of what is read are
// replicated_table.hpp's. What this adds: the list's change as a row
// (address = key, reason = value) and its metric names
// (mailgate_cluster_suppression_*).
// - A local write (the API, the plugin, the bounce paths: everything that
//   goes through the node's SuppressionList) is pushed at once; other
//   nodes apply it within about 250 ms; a removal is a tombstone, so it
//   wins over an older addition.
// - Rows read from Redis are checked by the replica's check() (the list's
//   own normaliser: a normalised address, a bounded reason) before they
//   are applied.
// Promises: those of ReplicatedTable (never on a worker's hot path; RCPT
// lookups stay in the local list; local_change() from any thread).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "cluster/replicated_table.hpp"

namespace mailgate::cluster {

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
  // "" when a change read from Redis may be applied, else why not (unset:
  // only the table's size and time bounds).
  std::function<std::string(const SuppressionChange&)> check;
  // Where changes queued while Redis is down wait across a restart
  // (TableReplica's save / forget / load; optional, together).
  std::function<void(TableReplica::Saved)> save;
  std::function<void(std::vector<std::uint64_t>)> forget;
  std::function<TableReplica::Saved()> load;
};

using SuppressionSyncStats = TableSyncStats;

inline constexpr const char* kSuppressKey = "mailgate:suppress";
inline constexpr const char* kSuppressLogKey = "mailgate:suppress:log";

class SharedSuppression {
 public:
  SharedSuppression(const ClusterConfig& cfg, Cluster& cluster, RedisLink& link,
                    asio::io_context& ctx, SuppressionReplica replica);

  void start() { table_.start(); }  // on the io_context's thread
  void stop() { table_.stop(); }
  // Any thread: a write made through this node's list.
  void local_change(const SuppressionChange& c);

  SuppressionSyncStats stats() const { return table_.stats(); }
  void export_metrics(metrics::Exposition& e) const { table_.export_metrics(e); }

 private:
  ReplicatedTable table_;
};

}  // namespace mailgate::cluster
