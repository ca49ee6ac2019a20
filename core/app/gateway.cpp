// app/gateway: see gateway.hpp. Every part is a member of Parts, created by
// start() in order; teardown() runs the stop steps in the order the
// promises need and tolerates parts that never started (a failed start).
#include "app/gateway.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <functional>
#include <future>
#include <memory>

#include "app/admin_api.hpp"
#include "app/cluster_tables.hpp"
#include "app/service_notify.hpp"
#include "cluster/cluster.hpp"
#include "cluster/connection_leases.hpp"
#include "cluster/leased_rates.hpp"
#include "cluster/shared_suppression.hpp"
#include "cluster/shared_tables.hpp"
#include "cluster/shared_warmup.hpp"
#include "delivery/delivery_engine.hpp"
#include "dns/resolver.hpp"
#include "eventlog/delivery_log.hpp"
#include "feedback/sent_sweeper.hpp"
#include "http/http_server.hpp"
#include "httpclient/http_client.hpp"
#include "idempotency/idempotency_cache.hpp"
#include "net/endpoint.hpp"
#include "net/worker_pool.hpp"
#include "policy/runtime.hpp"
#include "ratelimit/shared_limiter.hpp"
#include "server/smtp_server.hpp"
#include "spool/recovery.hpp"
#include "spool/spool_reader.hpp"
#include "spool/spool_writer.hpp"
#include "spool/store.hpp"
#include "submit/submitter.hpp"
#include "suppression/suppression_list.hpp"
#include "tls/reloading_context.hpp"
#include "webhooks/webhooks.hpp"

namespace mailgate::app {

using namespace std::chrono_literals;

struct Gateway::Parts {
  settings::GatewayConfig cfg;
  std::string config_path;
  std::vector<std::string> overrides;
  std::uint64_t counter_start = 0;

  std::unique_ptr<spool::Store> store;
  std::unique_ptr<spool::SpoolWriter> writer;
  std::unique_ptr<spool::SpoolReader> reader;
  std::unique_ptr<eventlog::DeliveryLog> log;
  // The one HTTP client (MTA-STS, webhooks); freed before the workers, whose
  // coroutines its completions resume.
  std::unique_ptr<httpclient::Client> http_client;
  std::unique_ptr<webhooks::Webhooks> webhooks;
  std::unique_ptr<net::WorkerPool> workers;
  bool threads_running = false;
  ratelimit::SharedLimiter limiter;
  std::unique_ptr<suppression::SuppressionList> suppressions;
  std::unique_ptr<feedback::SentSweeper> sent_sweeper;  // feedback.retention
  // One per worker, used only there: the hooks' lookups and delivery's share
  // its cache (recipient_check's MX answer serves the delivery attempt).
  std::vector<std::unique_ptr<dns::Resolver>> resolvers;
  std::unique_ptr<policy::PolicyRuntime> policy;
  std::unique_ptr<server::SmtpServer> smtp;  // acceptors live on the workers
  bool serving = false;
  std::unique_ptr<delivery::DeliveryEngine> engine;  // queues and resolvers live on the workers
  bool engine_started = false;
  std::vector<std::unique_ptr<submit::Submitter>> submitters;
  std::vector<submit::Submitter*> submitter_ptrs;
  AdminContext admin;
  std::shared_ptr<tls::ReloadingContext> http_tls;  // HTTPS (http.tls): reloaded with SMTP's
  std::unique_ptr<idempotency::IdempotencyCache> idempotency_cache;  // inject's Idempotency-Key
  std::unique_ptr<http::HttpServer> http;
  // Heartbeats to the cluster's Redis, leased connection limits and the
  // shared suppression list, all on worker 0 (null: no cluster section).
  std::unique_ptr<cluster::Cluster> cluster;
  // The shared rate limits (leased from that Redis, on worker 0 too). Shared:
  // the limits made from it (Lua keys in `limiter`) hold it; stopped in
  // teardown, after which every limit is local.
  std::shared_ptr<cluster::LeasedRates> rates;
  std::unique_ptr<cluster::ConnectionLeases> leases;
  std::unique_ptr<cluster::SharedSuppression> shared_suppression;
  // Tenant/campaign suspensions and shaping actions, replicated the same way
  // (their replicas reach the engine once it exists).
  std::unique_ptr<cluster::ReplicatedTable> shared_suspensions, shared_shaping;
  std::unique_ptr<cluster::SharedWarmup> warmup;  // shared warm-up quotas
  std::unique_ptr<spool::Recovery> recovery;
  bool torn_down = false;

  std::string start();
  std::string start_spool();
  std::string start_policy();
  std::string start_delivery();
  std::string start_http();
  void make_cluster();
  void leave_cluster();
  void teardown();
  void start_recovery();
};

Gateway::Gateway(settings::GatewayConfig config, std::string config_path,
                 std::vector<std::string> overrides)
    : parts_(std::make_unique<Parts>()) {
  parts_->cfg = std::move(config);
  parts_->config_path = std::move(config_path);
  parts_->overrides = std::move(overrides);
}

Gateway::~Gateway() { parts_->teardown(); }

void Gateway::stop() { parts_->teardown(); }

std::string Gateway::start() { return parts_->start(); }

std::string Gateway::Parts::start() {
  for (auto step :
       {&Parts::start_spool, &Parts::start_policy, &Parts::start_delivery, &Parts::start_http}) {
    if (auto e = (this->*step)(); !e.empty()) return e;
  }
  smtp->serve();  // from here on sessions run (posted: everything above happens-before them)
  serving = true;
  {
    // "listening http=" first: tests read the smtp line as "the gateway is up".
    const auto colon = cfg.http.listen.rfind(':');
    spdlog::info("mailgate {} listening http={}:{}{}", MAILGATE_VERSION,
                 cfg.http.listen.substr(0, colon), http->port(), http_tls ? " (HTTPS)" : "");
  }
  for (const auto& ep : smtp->endpoints()) {
    spdlog::info("mailgate {} listening smtp={} workers={} spool={}", MAILGATE_VERSION,
                 net::format_endpoint(ep), cfg.workers, cfg.spool.path);
  }
  if (writer->disk_low()) {
    spdlog::warn("free disk space under {} is below spool.min_free_space: MAIL gets 452 4.3.1",
                 cfg.spool.path);
  }
  start_recovery();
  notify_ready("serving; recovering the spool");
  return {};
}

// The spool (ids reserved first), its writer and reader, the delivery log,
// the worker contexts (their threads start in start_policy).
std::string Gateway::Parts::start_spool() {
  std::string err;
  store = spool::Store::open(cfg.spool.path, err);
  if (!store) return "cannot open spool " + cfg.spool.path + ": " + err;
  counter_start = store->reserve_counter_floor(err);
  if (!err.empty()) return "cannot reserve message ids in the spool: " + err;

  writer = std::make_unique<spool::SpoolWriter>(*store, cfg.spool.max_queue_bytes,
                                                cfg.spool.min_free_space);
  writer->start();
  reader = std::make_unique<spool::SpoolReader>(*store, 2);
  reader->start();
  log =
      std::make_unique<eventlog::DeliveryLog>(cfg.log.deliveries, cfg.workers, cfg.log.max_pending);
  log->start();
  try {
    http_client = std::make_unique<httpclient::Client>();
  } catch (const std::exception& e) {
    return e.what();
  }
  // Webhook events kept in the spool are loaded before any new one is made.
  webhooks = std::make_unique<webhooks::Webhooks>(
      webhooks::Webhooks::Deps{&cfg.webhooks, store.get(), writer.get(), http_client.get()});
  if (auto e = webhooks->start(); !e.empty()) return "webhooks: " + e;
  workers = std::make_unique<net::WorkerPool>(cfg.workers);
  return {};
}

// The Lua policy, the SMTP listeners (bound, not serving), the worker threads.
std::string Gateway::Parts::start_policy() {
  // The Lua policy: one state per worker, built before any listener opens so
  // no session ever runs without its hooks. Hooks and delivery resolve
  // through the worker's resolver (made here, before the workers run).
  suppressions = std::make_unique<suppression::SuppressionList>(*store, *writer);
  sent_sweeper = std::make_unique<feedback::SentSweeper>(*store, *writer, cfg.feedback.retention);
  sent_sweeper->start();
  std::vector<asio::io_context*> contexts;
  std::vector<dns::Resolver*> resolver_ptrs;
  dns::ResolverOptions dns_opts;
  dns_opts.servers = cfg.dns.servers;
  for (unsigned i = 0; i < workers->size(); ++i) {
    contexts.push_back(&workers->context(i));
    resolvers.push_back(std::make_unique<dns::Resolver>(workers->context(i), dns_opts));
    resolver_ptrs.push_back(resolvers.back().get());
  }
  // The cluster before the policy and the engine: their rate limits are
  // shared through it (heartbeats start with the HTTP server, in start_http).
  if (cfg.cluster.enabled()) {
    cluster = std::make_unique<cluster::Cluster>(cfg.cluster, workers->context(0), [this] {
      return engine ? engine->metrics().connections_active : std::uint64_t{0};
    });
    rates = std::make_shared<cluster::LeasedRates>(cfg.cluster, workers->context(0), *cluster);
    limiter.set_backend(rates.get());
  }
  policy::Services services;
  services.limiter = &limiter;
  services.suppression = suppressions.get();
  policy = std::make_unique<policy::PolicyRuntime>(config_path, overrides, cfg, services, contexts,
                                                   resolver_ptrs);
  try {
    policy->start();
  } catch (const std::exception& e) {
    return std::string("config error: ") + e.what();
  }
  // AUTH with nobody to ask would never succeed: say so now, not at the
  // first client (a reload keeps needing the hook: Policy::auth refuses all).
  for (std::size_t i = 0; i < cfg.listeners.size(); ++i) {
    if (cfg.listeners[i].auth != policy::AuthMode::Off &&
        !policy->current(0)->has(policy::Event::Auth)) {
      return fmt::format(
          "config error: listen[{}].auth: needs an auth hook, e.g. "
          "mailgate.use(\"auth_file\", {{ path = \"conf/users\" }})",
          i + 1);
    }
  }

  smtp = std::make_unique<server::SmtpServer>(cfg, *workers, *store, *writer);
  smtp->set_delivery_log(log.get());
  if (webhooks->enabled()) smtp->set_webhooks(webhooks.get());
  smtp->set_policy(policy.get());
  // Listeners are bound now (the kernel queues connections) but sessions
  // start only in serve(), once the engine that takes their messages runs.
  if (auto e = smtp->bind(); !e.empty()) return e;
  workers->start();
  threads_running = true;
  return {};
}

// The cluster's parts (not started: start_http does, once the engine they
// report on exists): made before the engine, which takes the leases, and
// before anything writes to the suppression list, whose listener they set.
void Gateway::Parts::make_cluster() {
  if (!cluster) return;  // made with the policy (its rate limits are shared through it)
  auto& ctx = workers->context(0);
  leases = std::make_unique<cluster::ConnectionLeases>(cfg.cluster, *cluster, cluster->link(), ctx);
  shared_suppression = std::make_unique<cluster::SharedSuppression>(
      cfg.cluster, *cluster, cluster->link(), ctx,
      suppression_replica(*suppressions, *store, *writer));
  shared_suspensions = std::make_unique<cluster::ReplicatedTable>(
      cluster::suspensions_table(), cfg.cluster, *cluster, cluster->link(), ctx,
      suspension_replica(engine, *store, *writer));
  shared_shaping = std::make_unique<cluster::ReplicatedTable>(
      cluster::shaping_table(), cfg.cluster, *cluster, cluster->link(), ctx,
      shaping_replica(engine, *store, *writer));
  suppressions->set_listener([sync = shared_suppression.get()](const suppression::Change& c) {
    sync->local_change({c.removed, c.address, c.reason, c.ms});
  });
  warmup = std::make_unique<cluster::SharedWarmup>(cfg.cluster, *cluster, cluster->link(), ctx);
}

// The delivery engine and each worker's submission stage.
std::string Gateway::Parts::start_delivery() {
  make_cluster();
  delivery::EngineDeps deps;
  deps.config = &cfg;
  deps.workers = workers.get();
  deps.store = store.get();
  deps.writer = writer.get();
  deps.reader = reader.get();
  deps.log = log.get();
  deps.webhooks = webhooks->enabled() ? webhooks.get() : nullptr;
  deps.http = http_client.get();
  deps.policy = policy.get();
  for (auto& r : resolvers) deps.resolvers.push_back(r.get());
  deps.own_endpoints = smtp->endpoints();
  deps.id_counter_start = counter_start;
  deps.leases = leases.get();
  deps.rates = rates.get();
  if (cluster) {
    deps.suspension_changed = [t = shared_suspensions.get()](const tenancy::Suspension& s,
                                                             bool removed, std::int64_t ms) {
      t->local_change(suspension_row(s, removed, ms));
    };
    deps.destination_changed = [t = shared_suspensions.get()](const std::string& destination,
                                                              bool removed, std::int64_t ms) {
      t->local_change(destination_row(destination, removed, ms));
    };
    deps.shaping_changed = [t = shared_shaping.get()](const egress::ShapingAction& a, bool removed,
                                                      std::int64_t ms) {
      t->local_change(shaping_row(a, removed, ms));
    };
  }
  deps.warmup = warmup.get();
  engine = std::make_unique<delivery::DeliveryEngine>(deps);
  // The submission stage of each worker: every finished message (SMTP, HTTP,
  // generated DSNs) is committed and queued there.
  for (unsigned i = 0; i < workers->size(); ++i) {
    submit::Submitter::Deps sd;
    sd.worker = i;
    sd.context = &workers->context(i);
    sd.config = &cfg;
    sd.writer = writer.get();
    sd.reader = reader.get();
    sd.store = store.get();
    sd.log = log.get();
    sd.webhooks = webhooks->enabled() ? webhooks.get() : nullptr;
    sd.policy = policy.get();
    sd.suppression = suppressions.get();
    sd.labels = &engine->labels();
    sd.queue = [e = engine.get()](const spool::MessageId& id,
                                  const std::vector<spool::QueuedDest>& destinations,
                                  std::uint64_t size) { e->enqueue(id, destinations, size); };
    submitters.push_back(std::make_unique<submit::Submitter>(
        std::move(sd), spool::IdGenerator(static_cast<std::uint16_t>(i), counter_start)));
    submitter_ptrs.push_back(submitters.back().get());
  }
  engine->set_submitters(submitter_ptrs);
  smtp->set_submitters(submitter_ptrs);
  if (auto e = engine->start(); !e.empty()) return e;
  engine_started = true;
  return {};
}

std::string Gateway::Parts::start_http() {
  // The admin HTTP server: after the engine (its handlers ask the engine),
  // stopped first on the way out.
  admin.config = &cfg;
  admin.engine = engine.get();
  admin.smtp = smtp.get();
  admin.writer = writer.get();
  admin.store = store.get();
  admin.log = log.get();
  admin.suppressions = suppressions.get();
  admin.webhooks = webhooks.get();
  admin.policy = policy.get();
  for (auto& r : resolvers) admin.resolvers.push_back(r.get());
  admin.workers = workers.get();
  admin.submitters = submitter_ptrs;
  idempotency_cache = std::make_unique<idempotency::IdempotencyCache>(store.get(), writer.get());
  admin.idempotency = idempotency_cache.get();
  if (cluster) {
    asio::post(workers->context(0), [this] {
      cluster->start();
      rates->start();
      leases->start();
      shared_suppression->start();
      shared_suspensions->start();
      shared_shaping->start();
      warmup->start();
    });
    spdlog::warn("{} (node {}, Redis {})", cluster::kClusterNotYetShared, cfg.cluster.node,
                 cfg.cluster.redis);
    admin.cluster = cluster.get();
    admin.rates = rates.get();
    admin.leases = leases.get();
    admin.shared_suppression = shared_suppression.get();
    admin.shared_suspensions = shared_suspensions.get();
    admin.shared_shaping = shared_shaping.get();
    admin.warmup = warmup.get();
  }
  http::ServerOptions http_opts;
  http_opts.listen = cfg.http.listen;
  http_opts.token = cfg.http.token;
  if (const auto& t = cfg.http.tls; !t.cert.empty()) {
    std::string error;
    http_tls =
        tls::ReloadingContext::make({t.cert, t.key, t.self_signed ? cfg.hostname : ""}, error);
    if (!http_tls) return "http.tls: " + error;
    http_opts.tls = http_tls->server_context();
    admin.http_tls = http_tls.get();
  }
  http = std::make_unique<http::HttpServer>(http_opts);
  register_admin_routes(*http, admin);
  register_inject_route(*http, admin);
  register_webhook_routes(*http, admin);
  register_sites_routes(*http, admin);
  register_shaping_routes(*http, admin);
  register_cluster_routes(*http, admin);
  return http->start();
}

void Gateway::Parts::start_recovery() {
  recovery = std::make_unique<spool::Recovery>(*store);
  admin.recovery = recovery.get();
  // Messages of this run (ids at or above counter_start) belong to the live
  // queue: recovery must neither index them nor take their chunks for orphans.
  recovery->set_live_counter_start(counter_start);
  recovery->start([this](const spool::RecoveredIndex& index) {
    // Generated messages still waiting for the submission stage (a crash came
    // between their commit and their routing) go back to it.
    for (const auto& id : engine->enqueue_recovered(index)) {
      const unsigned w = id.worker() % workers->size();
      asio::post(workers->context(w), [s = submitter_ptrs[w], id] { s->resubmit_pending(id); });
    }
    auto& r = *recovery;
    if (r.skipped())
      spdlog::warn(
          "recovery: {} queue record(s) could not be read and were moved to the spool's "
          "quarantine family ({} message(s) there in all; not retried, their bodies kept): {}",
          r.quarantined(), store->quarantined_messages(), r.error());
    spdlog::info(
        "recovery: done: {} messages, {} queue records, {} orphaned chunks removed in {:.3f}s",
        r.messages(), r.records(), r.orphans_removed(), r.seconds());
    notify_status(
        fmt::format("serving; {} queued messages recovered in {:.1f}s", r.messages(), r.seconds()));
  });
}

// A clean shutdown gives back what this node holds in Redis (connection
// leases, unspent rate tokens, leased warm-up quota) and removes its heartbeat, so the other
// nodes get the slots and count one node less now rather than after
// lease_ttl. Every call has the cluster.timeout deadline: shutdown waits for
// them at most about twice that (never over a second), Redis down or not.
void Gateway::Parts::leave_cluster() {
  if (!cluster || !threads_running) return;
  if (!cluster->redis_up()) {
    spdlog::warn(
        "cluster: node {} stops with Redis down: its leases and heartbeat expire there "
        "within lease_ttl",
        cfg.cluster.node);
    return;
  }
  auto left = std::make_shared<std::promise<void>>();
  auto answered = left->get_future();
  asio::post(workers->context(0), [this, left] {
    // Held by every call made below; the last one answered fulfils `left`.
    const std::shared_ptr<void> until(nullptr, [left](void*) { left->set_value(); });
    rates->leave(until);
    leases->leave(until);
    warmup->leave(until);
    cluster->leave(until);
  });
  const auto wait = std::min<std::chrono::milliseconds>(1s, 2 * cfg.cluster.timeout + 20ms);
  if (answered.wait_for(wait) == std::future_status::ready)
    spdlog::info(
        "cluster: node {} left: its leases, unspent tokens and warm-up quota and its heartbeat "
        "are removed",
        cfg.cluster.node);
  else
    spdlog::warn(
        "cluster: node {} leaving: Redis did not answer within {} ms; its leases and heartbeat "
        "expire within lease_ttl",
        cfg.cluster.node, wait.count());
}

void Gateway::Parts::teardown() {
  if (torn_down) return;
  torn_down = true;
  if (http) http->stop();
  if (serving) {
    const auto left = smtp->drain(30s);
    if (left) spdlog::warn("drain deadline passed with {} session(s) open; closing them", left);
  }
  if (engine_started) {
    engine->stop();
    // Lookups in flight end now (each resolver on its own worker), so the
    // attempts waiting on them finish within the drain.
    if (threads_running) workers->run_on_all([this](unsigned i) { resolvers[i]->shutdown(); });
    // Attempts already talking to a remote server finish and record their
    // results (the writer still runs), so nothing they delivered is sent again.
    if (const auto n = engine->drain(cfg.delivery.drain_timeout); n > 0)
      spdlog::warn("{} delivery attempt(s) still in flight at shutdown; they will be retried", n);
  }
  leave_cluster();
  // The cluster's connection lives on worker 0: closed there, while it runs
  // (calls still waiting fail into the leases and the sync, stopped first).
  admin.cluster = nullptr;
  admin.rates = nullptr;
  admin.leases = nullptr;
  admin.shared_suppression = nullptr;
  admin.shared_suspensions = nullptr;
  admin.shared_shaping = nullptr;
  admin.warmup = nullptr;
  if (cluster && threads_running)
    workers->run_on_all([this](unsigned i) {
      if (i != 0) return;
      warmup->stop();
      shared_suppression->stop();
      shared_suspensions->stop();
      shared_shaping->stop();
      leases->stop();
      rates->stop();
      cluster->stop();
    });
  // Recovery posts to the workers: it must be over while they still run.
  admin.recovery = nullptr;
  recovery.reset();  // cancels a scan still running, then joins
  if (workers) workers->stop();
  threads_running = false;
  // The sender stops before the writer, so the acknowledgements of its last
  // POSTs are written (events made during the drain stay queued in the spool).
  if (webhooks) webhooks->stop();
  if (sent_sweeper) sent_sweeper->stop();  // waits for its write: before the writer stops
  // The writer's completions are posted to the stopped workers; flush it now.
  if (writer) writer->stop();
  if (reader) reader->stop();
  // Objects living on the workers go before the workers' io_contexts.
  if (smtp) smtp->shutdown();
  if (engine) engine->release_io();
  // Their timers and socket belong to worker 0's io_context. (Again, for a
  // start that failed before the threads ran: nothing runs now.)
  if (suppressions) suppressions->set_listener(nullptr);
  shared_suppression.reset();
  shared_suspensions.reset();
  shared_shaping.reset();
  warmup.reset();
  leases.reset();
  if (rates) rates->stop();
  cluster.reset();
  // Completes what is in flight (MTA-STS fetches post to the stopped workers).
  http_client.reset();
  for (auto& r : resolvers) r->shutdown();
  resolvers.clear();
  if (policy) policy->shutdown();   // joins the crypt pool, which posts to the workers
  if (workers) workers->destroy();  // destroys leftover session frames
  if (log) log->stop();
}

void Gateway::log_totals() const {
  auto& p = *parts_;
  if (!p.smtp || !p.writer || !p.engine_started) return;
  server::ServerStats totals;
  p.smtp->totals(totals);
  std::uint64_t received = 0;
  for (const auto* sub : p.submitter_ptrs)
    received += sub->stats().received[static_cast<int>(submit::Source::Smtp)].load() +
                sub->stats().received[static_cast<int>(submit::Source::Http)].load();
  const auto& ws = p.writer->stats();
  const auto ds = p.engine->stats();
  spdlog::info("stopped: {} connections, {} messages received, {} spool rounds, {} syncs",
               totals.connections.load(), received, ws.rounds.load(), ws.syncs.load());
  spdlog::info(
      "delivery: {} delivered, {} deferred, {} bounced, {} expired, {} DSNs, {} connections",
      ds.delivered, ds.deferred, ds.bounced, ds.expired, ds.dsns, ds.connections);
}

void Gateway::run_until_signal() {
  auto& p = *parts_;
  asio::io_context main_ctx(1);
  asio::signal_set signals(main_ctx, SIGTERM, SIGINT, SIGHUP);
  asio::steady_timer progress(main_ctx);
  bool stop = false;
  std::function<void()> wait_signal = [&] {
    signals.async_wait([&](std::error_code ec, int sig) {
      if (ec) return;
      if (sig == SIGHUP) {
        p.log->reopen();
        // Hooks and plugins are reloaded; configure{}/listen{} changes need a restart.
        if (auto e = p.policy->reload(); !e.empty()) spdlog::error("SIGHUP: reload failed: {}", e);
        if (auto e = reload_certificates(p.admin); !e.empty())
          spdlog::error("SIGHUP: TLS certificates not reloaded (the old ones stay): {}", e);
        wait_signal();
        return;
      }
      spdlog::info("signal {}: draining", sig);
      notify_stopping("draining");
      stop = true;
      progress.cancel();
    });
  };
  wait_signal();
  std::function<void()> tick = [&] {
    progress.expires_after(2s);
    progress.async_wait([&](std::error_code ec) {
      if (ec || stop) return;
      if (p.recovery && !p.recovery->done()) {
        const auto& r = *p.recovery;
        const auto progress_text =
            fmt::format("{} of ~{} queue records indexed, {} messages ({:.1f}s)", r.records(),
                        r.estimated_total(), r.messages(), r.seconds());
        spdlog::info("recovery: {}", progress_text);
        notify_status("serving; recovering the spool: " + progress_text);
      }
      tick();
    });
  };
  tick();
  while (!stop) main_ctx.run_one();
}

}  // namespace mailgate::app
