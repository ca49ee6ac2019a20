// app/serve: see serve.hpp. Start-up order matters: the spool is opened and
// the id counter floor reserved before any listener opens (ids must never
// collide), listeners open before recovery starts (recovery of a big spool
// must not delay accepting mail), and shutdown drains sessions before the
// spool writer stops (every acknowledged message is synced first).
#include "app/serve.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <csignal>

#include "app/admin_api.hpp"
#include "delivery/delivery_engine.hpp"
#include "dns/resolver.hpp"
#include "eventlog/delivery_log.hpp"
#include "http/http_server.hpp"
#include "net/endpoint.hpp"
#include "net/worker_pool.hpp"
#include "policy/config.hpp"
#include "policy/runtime.hpp"
#include "ratelimit/shared_limiter.hpp"
#include "server/smtp_server.hpp"
#include "spool/recovery.hpp"
#include "spool/spool_reader.hpp"
#include "spool/spool_writer.hpp"
#include "spool/store.hpp"
#include "submit/submitter.hpp"
#include "suppression/suppression_list.hpp"

namespace mailgate::app {

using namespace std::chrono_literals;

namespace {

void setup_logging(const std::string& level) {
  auto logger = spdlog::stderr_color_mt("mailgate");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

void log_recovery_progress(const spool::Recovery& r) {
  spdlog::info("recovery: {} of ~{} queue records indexed, {} messages ({:.1f}s)", r.records(),
               r.estimated_total(), r.messages(), r.seconds());
}

}  // namespace

int serve(const std::string& config_path, const std::vector<std::string>& overrides) {
  policy::Config cfg;
  try {
    cfg = policy::load_config(config_path, overrides);
  } catch (const policy::ConfigError& e) {
    std::fprintf(stderr, "mailgate: config error: %s\n", e.what());
    return 1;
  }
  setup_logging(cfg.log.level);
  std::signal(SIGPIPE, SIG_IGN);

  std::string err;
  auto store = spool::Store::open(cfg.spool.path, err);
  if (!store) {
    spdlog::critical("cannot open spool {}: {}", cfg.spool.path, err);
    return 1;
  }
  const std::uint64_t counter_start = store->reserve_counter_floor(err);
  if (!err.empty()) {
    spdlog::critical("cannot reserve message ids in the spool: {}", err);
    return 1;
  }

  spool::SpoolWriter writer(*store, cfg.spool.max_queue_bytes, cfg.spool.min_free_space);
  writer.start();
  spool::SpoolReader reader(*store, 2);
  reader.start();
  eventlog::DeliveryLog delivery_log(cfg.log.deliveries, cfg.workers);
  delivery_log.start();
  net::WorkerPool workers(cfg.workers);

  // The Lua policy: one state per worker, built before any listener opens so
  // no session ever runs without its hooks. Hooks resolve through their own
  // resolver per worker (made here, before the workers run; used only on them).
  ratelimit::SharedLimiter limiter;
  suppression::SuppressionList suppressions(*store, writer);
  std::vector<std::unique_ptr<dns::Resolver>> hook_resolvers;
  std::vector<asio::io_context*> contexts;
  std::vector<dns::Resolver*> resolver_ptrs;
  dns::ResolverOptions dns_opts;
  dns_opts.servers = cfg.dns.servers;
  for (unsigned i = 0; i < workers.size(); ++i) {
    contexts.push_back(&workers.context(i));
    hook_resolvers.push_back(std::make_unique<dns::Resolver>(workers.context(i), dns_opts));
    resolver_ptrs.push_back(hook_resolvers.back().get());
  }
  policy::Services services;
  services.limiter = &limiter;
  services.suppression = &suppressions;
  policy::PolicyRuntime policy(config_path, overrides, cfg, services, contexts, resolver_ptrs);
  try {
    policy.start();
  } catch (const std::exception& e) {
    spdlog::critical("config error: {}", e.what());
    writer.stop();
    return 1;
  }

  server::SmtpServer smtp(cfg, workers, *store, writer);
  smtp.set_delivery_log(&delivery_log);
  smtp.set_policy(&policy);
  // Listeners are bound now (the kernel queues connections) but sessions start
  // only in smtp.serve(), once the engine that takes their messages is running.
  if (auto e = smtp.bind(); !e.empty()) {
    spdlog::critical("{}", e);
    hook_resolvers.clear();
    writer.stop();
    return 1;
  }
  workers.start();
  delivery::EngineDeps deps;
  deps.config = &cfg;
  deps.workers = &workers;
  deps.store = store.get();
  deps.writer = &writer;
  deps.reader = &reader;
  deps.log = &delivery_log;
  deps.policy = &policy;
  deps.own_endpoints = smtp.endpoints();
  deps.id_counter_start = counter_start;
  delivery::DeliveryEngine engine(deps);
  // The submission stage of each worker: every finished message (SMTP, HTTP,
  // generated DSNs) is committed and queued there.
  std::vector<std::unique_ptr<submit::Submitter>> submitters;
  std::vector<submit::Submitter*> submitter_ptrs;
  for (unsigned i = 0; i < workers.size(); ++i) {
    submit::Submitter::Deps sd;
    sd.worker = i;
    sd.context = &workers.context(i);
    sd.config = &cfg;
    sd.writer = &writer;
    sd.reader = &reader;
    sd.store = store.get();
    sd.log = &delivery_log;
    sd.policy = &policy;
    sd.labels = &engine.labels();
    sd.queue = [&engine](const spool::MessageId& id,
                         const std::vector<spool::QueuedDest>& destinations,
                         std::uint64_t size) { engine.enqueue(id, destinations, size); };
    submitters.push_back(std::make_unique<submit::Submitter>(
        std::move(sd), spool::IdGenerator(static_cast<std::uint16_t>(i), counter_start)));
    submitter_ptrs.push_back(submitters.back().get());
  }
  engine.set_submitters(submitter_ptrs);
  smtp.set_submitters(submitter_ptrs);
  if (auto e = engine.start(); !e.empty()) {
    spdlog::critical("{}", e);
    workers.stop();
    smtp.shutdown();
    hook_resolvers.clear();
    workers.destroy();
    writer.stop();
    return 1;
  }
  // The admin HTTP server: after the engine (its handlers ask the engine),
  // stopped first on the way out.
  AdminContext admin;
  admin.config = &cfg;
  admin.engine = &engine;
  admin.smtp = &smtp;
  admin.writer = &writer;
  admin.store = store.get();
  admin.suppressions = &suppressions;
  admin.policy = &policy;
  admin.hook_resolvers = resolver_ptrs;
  admin.workers = &workers;
  admin.submitters = submitter_ptrs;
  http::ServerOptions http_opts;
  http_opts.listen = cfg.http.listen;
  http_opts.token = cfg.http.token;
  http::HttpServer http_server(http_opts);
  register_admin_routes(http_server, admin);
  register_inject_route(http_server, admin);
  if (auto e = http_server.start(); !e.empty()) {
    spdlog::critical("{}", e);
    engine.stop();
    workers.stop();
    smtp.shutdown();
    engine.release_io();
    hook_resolvers.clear();
    workers.destroy();
    writer.stop();
    return 1;
  }
  smtp.serve();  // from here on sessions run (posted: everything set above happens-before them)
  {
    // "listening http=" first: tests read the smtp line as "the gateway is up".
    const auto colon = cfg.http.listen.rfind(':');
    spdlog::info("mailgate {} listening http={}:{}", MAILGATE_VERSION,
                 cfg.http.listen.substr(0, colon), http_server.port());
  }
  for (const auto& ep : smtp.endpoints()) {
    spdlog::info("mailgate {} listening smtp={} workers={} spool={}", MAILGATE_VERSION,
                 net::format_endpoint(ep), cfg.workers, cfg.spool.path);
  }
  if (writer.disk_low()) {
    spdlog::warn("free disk space under {} is below spool.min_free_space: MAIL gets 452 4.3.1",
                 cfg.spool.path);
  }

  spool::Recovery recovery(*store);
  // Messages of this run (ids at or above counter_start) belong to the live
  // queue: recovery must neither index them nor take their chunks for orphans.
  recovery.set_live_counter_start(counter_start);
  recovery.start([&r = recovery, &engine, &workers, &submitter_ptrs](const spool::RecoveredIndex& index) {
    // Generated messages still waiting for the submission stage (a crash came
    // between their commit and their routing) go back to it.
    for (const auto& id : engine.enqueue_recovered(index)) {
      const unsigned w = id.worker() % workers.size();
      asio::post(workers.context(w), [s = submitter_ptrs[w], id] { s->resubmit_pending(id); });
    }
    spdlog::info(
        "recovery: done: {} messages, {} queue records, {} orphaned chunks removed in {:.3f}s",
        r.messages(), r.records(), r.orphans_removed(), r.seconds());
  });

  asio::io_context main_ctx(1);
  asio::signal_set signals(main_ctx, SIGTERM, SIGINT, SIGHUP);
  asio::steady_timer progress(main_ctx);
  bool stop = false;
  std::function<void()> wait_signal = [&] {
    signals.async_wait([&](std::error_code ec, int sig) {
      if (ec) return;
      if (sig == SIGHUP) {
        delivery_log.reopen();
        // Hooks and plugins are reloaded; configure{}/listen{} changes need a restart.
        if (auto e = policy.reload(); !e.empty()) spdlog::error("SIGHUP: reload failed: {}", e);
        wait_signal();
        return;
      }
      spdlog::info("signal {}: draining", sig);
      stop = true;
      progress.cancel();
    });
  };
  wait_signal();
  std::function<void()> tick = [&] {
    progress.expires_after(2s);
    progress.async_wait([&](std::error_code ec) {
      if (ec || stop) return;
      if (!recovery.done()) log_recovery_progress(recovery);
      tick();
    });
  };
  tick();
  while (!stop) main_ctx.run_one();

  http_server.stop();
  const auto left = smtp.drain(30s);
  if (left) spdlog::warn("drain deadline passed with {} session(s) open; closing them", left);
  // Order: stop the threads, let the writer finish (its completions are posted
  // to the stopped workers), then free the acceptors and the worker contexts
  // (destroying leftover session frames) while the server state still exists.
  engine.stop();
  // Attempts already talking to a remote server finish and record their
  // results (the writer still runs), so nothing they delivered is sent again.
  if (const auto n = engine.drain(20s); n > 0)
    spdlog::warn("{} delivery attempt(s) still in flight at shutdown; they will be retried", n);
  workers.stop();
  writer.stop();
  reader.stop();
  smtp.shutdown();
  engine.release_io();
  for (auto& r : hook_resolvers) r->shutdown();
  hook_resolvers.clear();
  workers.destroy();
  recovery.join();
  delivery_log.stop();
  server::ServerStats totals;
  smtp.totals(totals);
  const auto& ws = writer.stats();
  const auto ds = engine.stats();
  std::uint64_t received = 0;
  for (const auto* sub : submitter_ptrs)
    received += sub->stats().received[static_cast<int>(submit::Source::Smtp)].load() +
                sub->stats().received[static_cast<int>(submit::Source::Http)].load();
  spdlog::info("stopped: {} connections, {} messages received, {} spool rounds, {} syncs",
               totals.connections.load(), received, ws.rounds.load(), ws.syncs.load());
  spdlog::info(
      "delivery: {} delivered, {} deferred, {} bounced, {} expired, {} DSNs, {} connections",
      ds.delivered, ds.deferred, ds.bounced, ds.expired, ds.dsns, ds.connections);
  return 0;
}

}  // namespace mailgate::app
