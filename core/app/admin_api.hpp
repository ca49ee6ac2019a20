// app/admin_api: the routes of the admin HTTP server (DESIGN §8): health,
// readiness, /metrics, and /api/v1 (queue, messages, bounce, suppression,
// reload). It joins the modules the way serve() wired them; the HTTP module
// itself knows none of them.
// Promises: handlers never touch worker state (the engine's admin calls post
// to the workers and wait at most kWorkerDeadline, else 503); spool reads
// for message listings run on the HTTP thread, never on a worker; every
// error is a JSON body with a 4xx/5xx status.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <atomic>
#include <string>
#include <vector>

namespace mailgate::settings {
struct GatewayConfig;
}
namespace mailgate::policy {
class PolicyRuntime;
}  // namespace mailgate::policy
namespace mailgate::delivery {
class DeliveryEngine;
}
namespace mailgate::server {
class SmtpServer;
}
namespace mailgate::spool {
class SpoolWriter;
class Store;
class Recovery;
}  // namespace mailgate::spool
namespace mailgate::eventlog {
class DeliveryLog;
}
namespace mailgate::suppression {
class SuppressionList;
}
namespace mailgate::dns {
class Resolver;
}
namespace mailgate::http {
class HttpServer;
}
namespace mailgate::net {
class WorkerPool;
}
namespace mailgate::submit {
class Submitter;
}
namespace mailgate::tls {
class ReloadingContext;
}
namespace mailgate::webhooks {
class Webhooks;
}
namespace mailgate::cluster {
class Cluster;
class ConnectionLeases;
class SharedSuppression;
class ReplicatedTable;
class LeasedRates;
class SharedWarmup;
}  // namespace mailgate::cluster
namespace mailgate::idempotency {
class IdempotencyCache;
}

namespace mailgate::app {

struct AdminContext {
  const settings::GatewayConfig* config = nullptr;
  delivery::DeliveryEngine* engine = nullptr;
  server::SmtpServer* smtp = nullptr;
  spool::SpoolWriter* writer = nullptr;
  spool::Store* store = nullptr;
  const eventlog::DeliveryLog* log = nullptr;  // its counters only (atomic loads)
  suppression::SuppressionList* suppressions = nullptr;
  webhooks::Webhooks* webhooks = nullptr;  // GET /api/v1/webhooks, replay
  policy::PolicyRuntime* policy = nullptr;
  std::vector<dns::Resolver*> resolvers;       // per worker; their counters only (relaxed loads)
  net::WorkerPool* workers = nullptr;          // HTTP inject runs its transaction on one
  std::vector<submit::Submitter*> submitters;  // per worker (their counters: relaxed loads)
  tls::ReloadingContext* http_tls = nullptr;   // the HTTPS certificate (null: plain HTTP)
  // POST /api/v1/inject's Idempotency-Key answers (null: the header is refused).
  idempotency::IdempotencyCache* idempotency = nullptr;
  // This node's view of the cluster (null: no `cluster` section); its status
  // is read under its own lock.
  std::atomic<const cluster::Cluster*> cluster{nullptr};
  // Its leased connection limits and suppression sync (null with `cluster`).
  std::atomic<const cluster::ConnectionLeases*> leases{nullptr};
  std::atomic<const cluster::SharedSuppression*> shared_suppression{nullptr};
  std::atomic<const cluster::ReplicatedTable*> shared_suspensions{nullptr};
  std::atomic<const cluster::ReplicatedTable*> shared_shaping{nullptr};
  // Its shared rate limits (null with no cluster): fallback state, metrics.
  std::atomic<const cluster::LeasedRates*> rates{nullptr};
  // Its shared warm-up quotas (null with no cluster): fallback state, metrics.
  std::atomic<const cluster::SharedWarmup*> warmup{nullptr};
  // The background recovery of this run (/readyz shows its progress); null
  // before it starts and once teardown begins.
  std::atomic<const spool::Recovery*> recovery{nullptr};
};

void register_admin_routes(http::HttpServer& server, AdminContext& ctx);
// /api/v1/webhooks (webhooks_api.cpp).
void register_webhook_routes(http::HttpServer& server, AdminContext& ctx);
// GET /api/v1/sites (sites_api.cpp).
void register_sites_routes(http::HttpServer& server, AdminContext& ctx);
// GET /api/v1/shaping, DELETE /api/v1/shaping[/ID] (shaping_api.cpp).
void register_shaping_routes(http::HttpServer& server, AdminContext& ctx);
// GET /api/v1/cluster (cluster_api.cpp).
void register_cluster_routes(http::HttpServer& server, AdminContext& ctx);
// The "cluster" object of /readyz: null without a cluster, else whether
// Redis answers ("degraded" when not: limits local, mail still flows).
nlohmann::json cluster_readiness(const AdminContext& ctx);
// POST /api/v1/inject (http_inject.cpp).
void register_inject_route(http::HttpServer& server, AdminContext& ctx);
// Re-reads every certificate: the SMTP listeners' and the HTTPS listener's
// (SIGHUP and POST /api/v1/reload). "" or why not; a certificate that fails
// to load is not swapped, and the others are still reloaded.
std::string reload_certificates(const AdminContext& ctx);
// The Prometheus text exposition of everything (metrics_page.cpp).
std::string render_metrics(const AdminContext& ctx);

}  // namespace mailgate::app
