// delivery/delivery_engine: engine set-up (one Worker per worker thread,
// made on that thread), ownership of destinations (hash of the name) and
// hand-over of committed or recovered messages to their owner's queue. The
// rest of the engine is listed in delivery_worker.hpp.
#include "delivery/delivery_engine.hpp"

#include <spdlog/spdlog.h>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/post.hpp>
#include <functional>
#include <map>

#include "delivery/delivery_worker.hpp"
#include "net/worker_pool.hpp"
#include "settings/gateway_config.hpp"
#include "spool/recovery.hpp"
#include "spool/store.hpp"

namespace mailgate::delivery {

DeliveryEngine::Worker::Worker(const EngineDeps& d, const queue::RetryPolicy& r, unsigned i)
    : deps(d),
      retry(r),
      index(i),
      ctx(d.workers->context(i)),
      resolver(d.resolvers.at(i)),
      // DSN ids use worker numbers above the SMTP workers' so they never collide.
      ids(static_cast<std::uint16_t>(d.workers->size() + i), d.id_counter_start),
      counters(d.config->metrics.destinations.size() + 1, d.config->metrics.tenants.size() + 1),
      tls_report(d.config->metrics.destinations.size() + 1) {
  for (const auto& rule : d.config->delivery.bounce_rules) classifier.add_rule(rule);
  verp = feedback::Verp::from_config(d.config->delivery.verp, d.config->delivery.verp_secret);
  queue::Shaping defaults;
  defaults.max_connections = d.config->delivery.max_connections;
  defaults.max_messages_per_connection = d.config->delivery.max_messages_per_connection;
  shard = std::make_unique<queue::QueueShard>(
      ctx, retry, defaults, [this](queue::Destination& dest) { start_connection(dest); },
      [this](queue::Destination& dest, queue::Item item) { expire_item(dest, std::move(item)); });
  if (d.policy)
    shard->set_shaper([this](queue::Destination& dest) { return shaping_current(dest); });
}

DestinationLink::DestinationLink(DeliveryEngine::Worker& owner, queue::Destination& d)
    : owner_(&owner), dest_(&d), name_(d.name), owner_index_(owner.index) {}

void DeliveryEngine::Worker::start_connection(queue::Destination& d) {
  // Round robin from the owner: one big destination uses every core, while
  // its queue, limits and counts stay with the owner.
  Worker* w = (*all)[(index + next_worker++) % all->size()];
  w->connections.fetch_add(1, std::memory_order_relaxed);
  asio::co_spawn(w->ctx, w->connection(DestinationLink(*this, d)), [](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      spdlog::error("delivery connection failed: {}", ex.what());
    }
  });
}

void DeliveryEngine::Worker::expire_item(queue::Destination& d, queue::Item item) {
  asio::co_spawn(ctx, fail_item(DestinationLink(*this, d), std::move(item), kExpired),
                 asio::detached);
}

DeliveryEngine::DeliveryEngine(EngineDeps deps)
    : deps_(std::move(deps)),
      labels_(deps_.config->metrics.destinations),
      tenant_labels_(deps_.config->metrics.tenants),
      retry_{deps_.config->delivery.retry.first, deps_.config->delivery.retry.max,
             deps_.config->delivery.retry.max_age} {
  paths_.set_rate_backend(deps_.rates);
  paths_.set_warmup_backend(deps_.warmup);
}

DeliveryEngine::~DeliveryEngine() = default;

std::string DeliveryEngine::start() {
  std::string error;
  tls_context_ = make_client_context(deps_.config->delivery.tls_ca_file, error);
  if (!tls_context_) return error;
  if (deps_.config->delivery.mta_sts) {
    if (!deps_.http) return "delivery.mta_sts: no HTTP client";
    mta_sts_ =
        std::make_unique<mtasts::PolicyService>(*deps_.http, deps_.config->delivery.tls_ca_file);
  }
  const unsigned n = deps_.workers->size();
  if (deps_.resolvers.size() != n) return "delivery: needs one resolver per worker";
  workers_.resize(n);
  load_warmup();
  load_shaping();
  // Suspensions survive restarts: in force before any message is queued.
  const auto suspended = deps_.store ? deps_.store->read_suspensions() : std::vector<std::string>{};
  {
    std::lock_guard lock(suspended_mu_);
    for (const auto& name : suspended) suspended_.emplace(name, 0);
  }
  std::size_t bad_holds = 0;
  auto holds = deps_.store ? deps_.store->read_tenant_suspensions(&bad_holds)
                           : std::vector<tenancy::Suspension>{};
  std::erase_if(holds, [now = queue::now_ms()](const auto& h) { return h.expired(now); });
  deps_.workers->run_on_all([&](unsigned i) {
    try {
      workers_[i] = std::make_unique<Worker>(deps_, retry_, i);
      for (const auto& name : suspended)
        if (owner(name) == i) workers_[i]->shard->suspend(name);
      for (const auto& h : holds) workers_[i]->shard->hold(h);
      workers_[i]->labels = &labels_;
      workers_[i]->tenant_labels = &tenant_labels_;
      workers_[i]->tls_context = tls_context_;
      workers_[i]->mta_sts = mta_sts_.get();
      if (deps_.policy) {
        workers_[i]->paths = std::make_unique<EgressPaths>(*workers_[i], paths_, shaping_);
        workers_[i]->shard->set_gate(workers_[i]->paths.get());
      }
    } catch (const std::exception& e) {
      error = e.what();  // same error on every worker; any one will do
    }
  });
  for (auto& w : workers_) all_.push_back(w.get());
  for (auto& w : workers_) w->all = &all_;
  if (error.empty()) arm_warmup_flush();
  if (!suspended.empty()) {
    std::string names;
    for (std::size_t i = 0; i < suspended.size() && i < 10; ++i)
      names += (i ? ", " : "") + suspended[i];
    spdlog::info("delivery: {} destination(s) suspended (kept in the spool): {}{}",
                 suspended.size(), names, suspended.size() > 10 ? ", ..." : "");
  }
  if (!holds.empty())
    spdlog::info("delivery: {} tenant or campaign suspension(s) in force (kept in the spool)",
                 holds.size());
  if (bad_holds)
    spdlog::warn("delivery: {} unreadable tenant suspension row(s) in the spool ignored",
                 bad_holds);
  return error.empty() ? "" : "delivery: " + error;
}

unsigned DeliveryEngine::owner(const std::string& destination) const {
  return static_cast<unsigned>(std::hash<std::string>{}(destination) % workers_.size());
}

void DeliveryEngine::enqueue(const spool::MessageId& id,
                             const std::vector<spool::QueuedDest>& destinations,
                             std::uint64_t size) {
  auto ref = std::make_shared<queue::MessageRef>(static_cast<int>(destinations.size()));
  const auto ms = static_cast<std::int64_t>(id.millis());
  // One tenancy for the message (every destination has the same).
  std::shared_ptr<const tenancy::Tenancy> tenancy;
  if (!destinations.empty() && !destinations.front().tenancy.empty())
    tenancy = std::make_shared<const tenancy::Tenancy>(destinations.front().tenancy);
  for (const auto& dest : destinations) {
    auto* w = workers_[owner(dest.name)].get();
    std::shared_ptr<const spool::RouteAuth> auth;
    if (dest.auth) auth = std::make_shared<const spool::RouteAuth>(*dest.auth);
    queue::Item item{id, size, 0, ms, ref, dest.tls, auth, tenancy};
    item.pool = dest.pool;
    asio::post(w->ctx, [w, name = dest.name, item = std::move(item)]() mutable {
      w->shard->add(name, std::move(item));
    });
  }
}

std::vector<spool::MessageId> DeliveryEngine::enqueue_recovered(
    const spool::RecoveredIndex& index) {
  std::vector<spool::MessageId> pending;
  const auto& entries = index.entries;
  auto is_pending = [&](const spool::IndexEntry& e) {
    return index.destinations[e.destination] == spool::kSubmitPending;
  };
  for (std::size_t i = 0; i < entries.size();) {
    std::size_t j = i;
    int queued = 0;
    for (; j < entries.size() && entries[j].id == entries[i].id; ++j) {
      if (is_pending(entries[j])) {
        pending.push_back(entries[j].id);
      } else {
        ++queued;
      }
    }
    auto ref = std::make_shared<queue::MessageRef>(queued);
    for (std::size_t k = i; k < j; ++k) {
      const auto& e = entries[k];
      if (is_pending(e)) continue;
      const std::string& dest = index.destinations[e.destination];
      auto* w = workers_[owner(dest)].get();
      const auto auth = e.destination < index.destination_auth.size()
                            ? index.destination_auth[e.destination]
                            : nullptr;
      queue::Item item{e.id, e.size, 0, e.next_attempt_ms, ref, e.tls, auth, index.tenancy_of(k)};
      item.pool = index.pool_of(k);
      asio::post(w->ctx, [w, dest, item = std::move(item)]() mutable {
        w->shard->add(dest, std::move(item));
      });
    }
    i = j;
  }
  return pending;
}

void DeliveryEngine::stop() {
  if (workers_.empty()) return;
  deps_.workers->run_on_all([this](unsigned i) {
    if (!workers_[i]) return;
    workers_[i]->shard->stop();
    if (i == 0 && warmup_timer_) warmup_timer_->cancel();
  });
  flush_warmup();  // the last counts, before the writer stops
}

void DeliveryEngine::release_io() {
  warmup_timer_.reset();
  for (auto& w : workers_) {
    if (!w) continue;
    w->shard.reset();
    w->mta_sts = nullptr;
  }
  // Its thread completes fetches in flight by posting to the workers'
  // io_contexts, which must still exist.
  mta_sts_.reset();
}

DeliveryStats DeliveryEngine::stats() const {
  DeliveryStats s;
  for (const auto& w : workers_) {
    if (!w) continue;
    s.delivered += w->counters.delivered.load();
    s.deferred += w->counters.deferred.load();
    s.bounced += w->counters.bounced.load();
    s.expired += w->counters.expired.load();
    s.dsns += w->counters.dsns.load();
    s.connections += w->connections.load();
  }
  return s;
}

}  // namespace mailgate::delivery
