// delivery/delivery_engine: turns queued messages into delivery attempts
// (DESIGN §3, §4). Each destination has an owner worker (hash of its name)
// whose QueueShard holds its messages, rate limits and connection count; the
// owner starts its connections round robin on every worker, so one large
// destination uses every core. A connection resolves the destination with
// its own worker's dns::Resolver (MX, or a literal / [host]:port route; the
// worker's one resolver and cache, shared with the Lua hooks: EngineDeps),
// connects in preference order (next MX on a connection failure or a non-2xx
// greeting), takes messages from the owner and reuses the connection for up
// to max_messages_per_connection of them. The per-worker state and the
// layout of the code are described in delivery_worker.hpp.
// Promises: a recipient's result is persisted (one synced spool write with
// the DSN, if any) before anything is logged or the message moves on, so a
// restart never re-sends to a recipient already delivered; the batch that
// closes a message's last destination also deletes its body and envelope; a
// message whose sender is <> never gets a DSN; connection-level failures
// defer the whole destination without counting attempts.
#pragma once

#include <array>
#include <asio/ip/tcp.hpp>
#include <asio/ssl/context.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "dns/dns_metrics.hpp"
#include "egress/path_registry.hpp"
#include "egress/shaping_actions.hpp"
#include "metrics/histogram.hpp"
#include "metrics/outcome_counters.hpp"
#include "queue/queue_shard.hpp"
#include "spool/message_id.hpp"
#include "spool/records.hpp"

namespace mailgate::settings {
struct GatewayConfig;
}
namespace mailgate::net {
class WorkerPool;
}
namespace mailgate::spool {
class Store;
class SpoolWriter;
class SpoolReader;
struct RecoveredIndex;
}  // namespace mailgate::spool
namespace mailgate::eventlog {
class DeliveryLog;
}
namespace mailgate::policy {
class PolicyRuntime;
}
namespace mailgate::submit {
class Submitter;
}
namespace mailgate::mtasts {
class PolicyService;
}
namespace mailgate::httpclient {
class Client;
}
namespace mailgate::webhooks {
class Webhooks;
}
namespace mailgate::cluster {
class ConnectionLeases;
}

namespace mailgate::delivery {

struct EngineDeps {
  const settings::GatewayConfig* config = nullptr;
  net::WorkerPool* workers = nullptr;
  spool::Store* store = nullptr;
  spool::SpoolWriter* writer = nullptr;
  spool::SpoolReader* reader = nullptr;
  eventlog::DeliveryLog* log = nullptr;
  webhooks::Webhooks* webhooks = nullptr;   // delivery events to HTTP targets (may be null)
  httpclient::Client* http = nullptr;       // the program's HTTP client (MTA-STS)
  policy::PolicyRuntime* policy = nullptr;  // egress_path, delivered/deferred/bounced (may be null)
  // Per worker (index = worker): the worker's resolver, shared with the hooks
  // that run there (one cache per worker). Owned by the caller, who shuts them
  // down after stop() and destroys them after release_io().
  std::vector<dns::Resolver*> resolvers;
  std::vector<asio::ip::tcp::endpoint> own_endpoints;  // mail-loop detection
  std::uint64_t id_counter_start = 0;                  // for DSN message ids
  // Shared connection limits (configure{ cluster }): every connection holds
  // a lease of its destination's max_connections and of its site's, cluster
  // wide. Null: limits are this node's alone.
  cluster::ConnectionLeases* leases = nullptr;
  std::vector<submit::Submitter*>
      submitters;  // per worker: where generated DSNs go (set_submitters)
  // Shared rate limits (a cluster's Redis: cluster::LeasedRates); null: local.
  ratelimit::RateBackend* rates = nullptr;
  // Cluster (issue 16): told of every tenant/campaign suspension and shaping
  // action made or ended on this node (API, CLI, a rule firing; never of
  // those applied from other nodes, nor of expiries), with the change's wall
  // clock time, so the cluster's replicated tables share them. Called on
  // the caller's thread (a worker for a rule). Empty: a single node.
  std::function<void(const tenancy::Suspension&, bool removed, std::int64_t ms)> suspension_changed;
  std::function<void(const egress::ShapingAction&, bool removed, std::int64_t ms)> shaping_changed;
  // Destination suspensions (act(Suspend / Resume)), the same way.
  std::function<void(const std::string& destination, bool removed, std::int64_t ms)>
      destination_changed;
  // Shared warm-up quotas (cluster::SharedWarmup); null: each node its own.
  egress::WarmupBackend* warmup = nullptr;
};

struct DeliveryStats {
  std::uint64_t delivered = 0, deferred = 0, bounced = 0, expired = 0, dsns = 0, connections = 0;
};

// Everything a scrape needs from delivery, summed over workers.
struct DeliveryMetrics {
  // [label][outcome]; labels as in labels() (the last one is "other").
  std::vector<std::array<std::uint64_t, metrics::kOutcomeCount>> outcomes;
  // [tenant label][outcome] (metrics.tenants, then "other") and the label names.
  std::vector<std::array<std::uint64_t, metrics::kOutcomeCount>> tenant_outcomes;
  std::vector<std::string> tenant_names;
  metrics::HistogramSnapshot delivery_seconds, queue_delay_seconds;
  std::uint64_t connections_active = 0, opened_tls = 0, opened_plain = 0, dsns = 0;
  // TLS-RPT sessions, indexed as TlsReportCounters::index() (tls_report.hpp).
  std::vector<std::uint64_t> tls_sessions;
  // DANE outcomes, indexed by DaneResult (dane.hpp).
  std::vector<std::uint64_t> dane_sessions;
};

class DeliveryEngine {
 public:
  explicit DeliveryEngine(EngineDeps deps);
  ~DeliveryEngine();

  // Before start(): each worker's submission stage (generated DSNs go there).
  void set_submitters(std::vector<submit::Submitter*> submitters) {
    deps_.submitters = std::move(submitters);
  }
  // Creates the TLS client context, and each worker's queue (on that
  // worker), with the suspensions kept in the spool already in force.
  // Returns "" or an error (an unreadable tls_ca_file).
  std::string start();
  // Thread-safe: a message was committed; hand each destination to its owner.
  void enqueue(const spool::MessageId& id, const std::vector<spool::QueuedDest>& destinations,
               std::uint64_t size);
  // Thread-safe: messages found by recovery. Returns the generated messages
  // still waiting for the submission stage (spool::kSubmitPending), which
  // the engine does not queue.
  std::vector<spool::MessageId> enqueue_recovered(const spool::RecoveredIndex& index);
  // Stops the queues (in-flight attempts finish or are abandoned when the
  // workers stop; their messages stay in the spool).
  void stop();
  // After stop(): waits up to `deadline` for attempts in flight to record
  // their results, so a clean shutdown does not send a message twice.
  // Returns how many were still in flight.
  std::size_t drain(std::chrono::milliseconds deadline) const;
  // After the workers' threads stopped, before their io_contexts are
  // destroyed: frees the I/O objects the engine owns on each worker.
  void release_io();

  unsigned owner(const std::string& destination) const;
  DeliveryStats stats() const;
  DeliveryMetrics metrics() const;  // any thread
  const metrics::DestinationLabels& labels() const { return labels_; }

  // Admin (any thread but a worker's): each posts to the worker(s) holding
  // the state and waits up to `deadline`; nullopt when a worker did not answer.
  std::optional<std::vector<queue::DestinationSummary>> queue_summary(
      std::chrono::milliseconds deadline) const;
  // The shards' totals summed (the /metrics scrape: no per-destination copy).
  std::optional<queue::ShardTotals> queue_totals(std::chrono::milliseconds deadline) const;
  // Where `id` waits at each of `destinations` (by their owners); an entry
  // is nullopt when its owner does not know the destination.
  std::optional<std::vector<std::optional<queue::ItemState>>> item_states(
      const spool::MessageId& id, const std::vector<std::string>& destinations,
      std::chrono::milliseconds deadline) const;
  std::optional<std::vector<queue::ItemView>> queued_items(
      const std::string& destination, std::chrono::milliseconds deadline) const;
  enum class Action { Suspend, Resume, Flush };
  // Busy: the owner did not answer in time; NoQueue: nothing known of that
  // destination (resume, flush); NotSaved: the spool write of a suspension
  // (or of its removal) failed, `error` says why, and nothing changed.
  enum class ActResult { Done, NoQueue, Busy, NotSaved };
  // Suspend and resume are persisted (synced) in the spool before the
  // queue changes, so a suspension survives a restart (start() reloads them).
  ActResult act(Action a, const std::string& destination, std::chrono::milliseconds deadline,
                std::string& error);
  // Bounces waiting messages (all of `id`'s destinations, or every message of
  // `destination`) with DSNs, logged as admin_bounce. Returns how many queue
  // entries were bounced (in-flight attempts are left to finish).
  // With a tenant in `filter`: only that tenant's (campaign's) messages, at
  // `destination` or (empty) everywhere.
  std::optional<std::size_t> bounce(const std::string& destination, const spool::MessageId* id,
                                    const std::string& reason, std::chrono::milliseconds deadline,
                                    const queue::TenancyFilter& filter = {});

  // --- Tenants and campaigns (engine_tenants.cpp) ---
  // Suspends the mail of s.tenant (s.campaign's only, when set) at
  // s.destination (everywhere when empty) until s.until_ms (0: until
  // resumed): persisted (synced) first, then in force on every worker for
  // queued and later mail. The same rule again replaces its times.
  ActResult suspend_tenant(const tenancy::Suspension& s, std::chrono::milliseconds deadline,
                           std::string& error);
  // Removes the rule with s's tenant, campaign and destination; NoQueue
  // when there is none.
  ActResult resume_tenant(const tenancy::Suspension& s, std::chrono::milliseconds deadline,
                          std::string& error);
  // The rules in force (every worker has the same; expired ones are gone).
  std::optional<std::vector<tenancy::Suspension>> tenant_suspensions(
      std::chrono::milliseconds deadline) const;
  // Scheduled messages of the tenant (campaign) at `destination` (or
  // everywhere) go to their ready queues now. How many moved.
  std::optional<std::size_t> flush_tenant(const std::string& destination,
                                          const queue::TenancyFilter& filter,
                                          std::chrono::milliseconds deadline);

  // Sources and sites (any thread): every (source, site) path with its
  // counts, and the newest egress plan (GET /api/v1/sites, /metrics).
  std::vector<egress::PathView> paths() const;
  std::shared_ptr<const egress::Plan> egress_plan() const;
  std::uint64_t warmup_holds() const;

  // --- Traffic shaping automation (shaping_engine.cpp; DESIGN §6b) ---
  // The actions in force (any thread), and the table itself (metrics).
  std::vector<egress::ShapingAction> shaping_actions() const;
  const egress::ShapingActions& shaping() const { return shaping_; }
  // Ends action `id` (every action when `id` is empty) before its time: its
  // spool row is deleted (synced) and a tenant or campaign suspension it
  // made is resumed. NoQueue: no such action. `cleared`: how many ended.
  ActResult clear_shaping(const std::string& id, std::chrono::milliseconds deadline,
                          std::string& error, std::size_t& cleared);

  // --- Cluster (issue 16; engine_shared.cpp) ---
  // Changes other nodes made, applied here without waiting and never
  // reported back through EngineDeps' callbacks. On worker 0's thread only
  // (the cluster's): they read worker 0's shard, then post to every worker
  // and write the spool asynchronously. A suspension is applied unless the
  // rule here started after `ms`; a shaping action as ShapingActions::adopt
  // / clear_target decide (its tenant or campaign hold with it).
  void apply_shared_suspension(const tenancy::Suspension& s, bool removed, std::int64_t ms);
  void apply_shared_shaping(const egress::ShapingAction& a, bool removed, std::int64_t ms);
  // The tenant/campaign suspensions in force here that an operator made
  // (those of shaping actions travel with their action): the catch-up's
  // snapshot. Worker 0's thread only.
  std::vector<tenancy::Suspension> shared_suspensions() const;
  // How many tenant/campaign rules are in force here (every worker holds
  // the same). Worker 0's thread only.
  std::size_t tenant_holds_here() const;
  // A destination suspended or resumed on another node (the owner's queue
  // takes it: posted, or at once when called on the owner); applied unless
  // the suspension here is newer than `ms`. On a worker or the cluster's
  // thread.
  void apply_shared_destination(const std::string& destination, bool removed, std::int64_t ms);
  // The destinations suspended here, with since when (ms; 0 when restored
  // from the spool at start). Any thread.
  std::vector<std::pair<std::string, std::int64_t>> suspended_destinations() const;

  struct Worker;  // per-worker state (delivery_worker.hpp)

 private:
  EngineDeps deps_;
  metrics::DestinationLabels labels_;
  metrics::DestinationLabels tenant_labels_;  // metrics.tenants (+ "other")
  // Every outbound connection's TLS client context (trusting
  // delivery.tls_ca_file or the system store), made by start().
  std::shared_ptr<asio::ssl::context> tls_context_;
  // MTA-STS policies (delivery.mta_sts), shared by every worker; null when off.
  std::unique_ptr<mtasts::PolicyService> mta_sts_;
  // From delivery.retry; immutable, shared by every worker (and its shard).
  queue::RetryPolicy retry_;
  std::vector<std::unique_ptr<Worker>> workers_;
  // The workers a tenant action touches: the destination's owner, or all.
  std::vector<Worker*> targets(const std::string& destination) const;
  std::vector<Worker*> all_;
  // Destinations suspended (since when), for the cluster: the owners' shards
  // hold the state, this copy answers without asking them.
  mutable std::mutex suspended_mu_;
  std::map<std::string, std::int64_t, std::less<>> suspended_;
  // (source, site) limits and warm-up counts, shared by every worker
  // (mutable: its views roll the UTC day). Persisted by warmup_persist.cpp.
  mutable egress::PathRegistry paths_;
  std::unique_ptr<asio::steady_timer> warmup_timer_;  // on worker 0
  void load_warmup();
  void arm_warmup_flush();
  void flush_warmup();
  // What the shaping rules did (persisted under "shaping/"; restored by
  // start(), expired once a second with the warm-up flush).
  egress::ShapingActions shaping_;
  void load_shaping();
  void expire_shaping();
  // resume_tenant(), told to the cluster or not (`share`: a shaping
  // action's hold ends with its action, which the cluster hears of).
  ActResult release_tenant(const tenancy::Suspension& s, std::chrono::milliseconds deadline,
                           std::string& error, bool share);
};

}  // namespace mailgate::delivery
