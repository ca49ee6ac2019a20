// cluster/replicated_table: one table of operator or automation state
// replicated between the nodes of a cluster through Redis (issue 16, DESIGN
// §6b). The suppression list, the tenant/campaign suspensions and the
// traffic shaping actions are each one instance, with their own keys and
// their own replica (apply / snapshot / check); the machinery is this one.
// Redis holds a hash (row key → "<ms> <value>", or "-<ms>" for a removal: a
// tombstone, so a removal wins over an older addition) and a change log, a
// stream (trimmed to about kLogLength entries), whose ids are the version a
// node has read up to.
// - A local write is queued here and pushed at once: one script writes the
//   hash (newest change wins, by the change's wall clock time) and appends
//   to the log; a change Redis holds newer comes back and the replica takes
//   Redis's.
// - Every kPollPeriod the node reads the log past its version and applies
//   other nodes' changes to its replica, so a change made anywhere is in
//   force everywhere within about 250 ms.
// - At start, and whenever the log no longer reaches back to its version
//   (trimmed, or Redis came back empty), it catches up with a full HSCAN of
//   the hash, then pushes its own rows Redis lacks (or holds older).
// - Redis down: the replica keeps working locally; writes queue (at most
//   kMaxPending, the oldest dropped and counted) and are pushed when Redis
//   answers again, then the log is read from where the node was.
// - Redis's content is untrusted (anything with access can write these
//   keys): every row read (log, scan, a push's answer) is bounded (key and
//   value sizes, a time no later than a day ahead) and checked by the
//   replica's check() before it is applied; a refused row is counted, never
//   applied, and reported in at most one log line per poll or scan step.
//   A key of the wrong type (an error reply) is counted and logged at most
//   once per kErrorLogPeriod. At most kReadBatch log entries and
//   kScanStepMax hash fields are applied per step, kMaxRows per catch-up.
// - Queued writes survive a restart when the replica keeps them (save /
//   forget / load: the node's spool): a change queued while Redis is down
//   (or whose push failed) is saved, and forgotten once Redis has it; a
//   restarted node pushes what it loads before anything else, so a removal
//   made while Redis was down is not undone by the catch-up union.
// Promises: never on a worker's hot path (lookups stay in the replica);
// one call in flight at a time; local_change() from any thread, the rest
// on the cluster's io_context (replica callbacks run there too; load() in
// the constructor). Without save/load, queued writes are in memory only (a
// restart then falls back to the catch-up union: an addition survives, a
// removal made meanwhile does not).
#pragma once

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
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

// One change to a row: an addition (or replacement) with its value, or a
// removal, at `ms` (wall clock: the newer wins).
struct TableRow {
  bool removed = false;
  std::string key;
  std::string value;  // additions
  std::int64_t ms = 0;
};

// The node's own copy of the table, as the sync sees it.
struct TableReplica {
  // A change from another node (or Redis's newer row): applied unless the
  // local row is newer; never reported back through local_change().
  std::function<void(const TableRow&)> apply;
  // Every local row in force (additions), for the catch-up union.
  std::function<std::vector<TableRow>()> snapshot;
  // "" when a row read from Redis may be applied, else why not (the table's
  // own decoder and validator; sizes and time are checked before). Unset:
  // every bounded row is accepted.
  std::function<std::string(const TableRow&)> check;
  // Optional, together: where queued changes wait across a restart. save()
  // and forget() must not block (e.g. the spool writer's queue); load()
  // returns what was saved and not forgotten, by sequence number.
  using Saved = std::vector<std::pair<std::uint64_t, std::string>>;  // seq, encode_row()
  std::function<void(Saved)> save;
  std::function<void(std::vector<std::uint64_t>)> forget;
  std::function<Saved()> load;
};

// A queued change as save() keeps it: "a"/"r", ms, then length-prefixed key
// and value; decode_row() refuses anything else.
std::string encode_row(const TableRow& row);
bool decode_row(std::string_view s, TableRow& out);

// Which table: its Redis keys, its names in logs and metrics, its bounds.
struct TableSpec {
  std::string name;      // metric names: mailgate_cluster_<name>_pushed_total, ...
  std::string what;      // in logs and metric help: "suppression", "tenant suspension"
  std::string hash_key;  // e.g. "mailgate:suppress"
  std::string log_key;   // e.g. "mailgate:suppress:log"
  std::size_t max_key = 512;
  std::size_t max_value = 1024;
  std::size_t max_rows = 1'000'000;  // rows one catch-up reads at most
};

struct TableSyncStats {
  std::uint64_t pushed = 0, applied = 0, dropped = 0, full_syncs = 0, pending = 0;
  std::uint64_t refused = 0;  // rows read from Redis and refused (invalid)
  std::uint64_t errors = 0;   // error replies (e.g. a key of the wrong type)
  double lag_seconds = 0;     // since the log was last read (0: never yet)
  std::string version;        // the log id read up to
};

// Parses a row's time: 1..16 decimal digits, nothing else.
std::optional<std::int64_t> parse_row_ms(std::string_view s);

class ReplicatedTable {
 public:
  ReplicatedTable(TableSpec spec, const ClusterConfig& cfg, Cluster& cluster, RedisLink& link,
                  asio::io_context& ctx, TableReplica replica);
  ~ReplicatedTable();
  ReplicatedTable(const ReplicatedTable&) = delete;
  ReplicatedTable& operator=(const ReplicatedTable&) = delete;

  void start();  // on the io_context's thread
  void stop();
  // Any thread: a write made through this node's replica.
  void local_change(TableRow c);

  const TableSpec& spec() const { return spec_; }
  TableSyncStats stats() const;
  void export_metrics(metrics::Exposition& e) const;

  static constexpr std::chrono::milliseconds kPollPeriod{250};
  static constexpr std::chrono::seconds kErrorLogPeriod{30};
  static constexpr std::size_t kMaxPending = 100'000;
  static constexpr std::size_t kPushBatch = 200;
  static constexpr std::size_t kReadBatch = 1000;
  static constexpr std::size_t kScanStepMax = 5000;
  static constexpr long kLogLength = 10'000;
  // A row dated later than now + this is refused (it would win every
  // conflict, and a removal could never replace it).
  static constexpr std::int64_t kMaxFutureMs = 24 * 3600 * 1000;

 private:
  void tick();
  void work();  // push what is queued, then read the log (one call at a time)
  void push();
  void poll();
  void scan(std::string cursor, std::string version);
  void finish_scan(std::string version);
  void apply_entries(const redisReply* entries);
  // The row a hash field holds, if it passes the bounds and the check.
  std::optional<TableRow> hash_row(const redisReply* key, const redisReply* value);
  // "" when `row` may be applied, else why not.
  std::string refuse_reason(const TableRow& row) const;
  void refuse(std::string_view why);
  void error_reply(std::string_view call, const redisReply* r, std::string_view error);
  void end_step();  // logs the step's refusals, once
  void done(bool ok);
  void save_pending();  // queued changes not saved yet go to replica_.save

  struct Pending {
    TableRow row;
    std::uint64_t seq = 0;
    bool saved = false;
  };

  TableSpec spec_;
  ClusterConfig cfg_;
  Cluster& cluster_;
  RedisLink& link_;
  asio::io_context& ctx_;
  TableReplica replica_;
  asio::steady_timer timer_;
  bool stopped_ = true;
  bool busy_ = false;
  std::deque<Pending> pending_;
  std::uint64_t next_seq_ = 1;
  std::string version_;  // "" = never synced: a full catch-up first
  // key → ms of Redis's hash, gathered by a catch-up scan.
  std::unordered_map<std::string, std::int64_t> scanned_;
  std::size_t step_refused_ = 0;
  std::string step_first_why_;
  std::chrono::steady_clock::time_point last_error_log_{};
  std::atomic<std::uint64_t> pushed_{0}, applied_{0}, dropped_{0}, full_syncs_{0}, pending_n_{0},
      refused_{0}, errors_{0};
  std::atomic<std::int64_t> last_read_us_{0};
  mutable std::mutex mu_;  // guards version_copy_
  std::string version_copy_;
  // Metric names and help (Family holds views into these).
  std::string m_pushed_, m_applied_, m_pending_, m_dropped_, m_full_, m_lag_, m_refused_, m_errors_;
  std::string h_pushed_, h_applied_, h_pending_, h_dropped_, h_full_, h_lag_, h_refused_, h_errors_;
};

}  // namespace mailgate::cluster
