// delivery/engine_admin: what the admin API and the metrics scrape ask of the
// delivery engine. Queues live on their owner workers and are touched only
// there: every call posts a task to the worker(s) and waits for the answer
// with a deadline (DESIGN §3: HTTP threads never touch worker state).
// Promises: a worker that does not answer in time makes the call return
// nullopt (the HTTP layer answers 503) and the late answer is dropped safely
// (the shared result outlives the caller). Suspend and resume are written
// to the spool (synced) before the queue changes.
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/post.hpp>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "delivery/delivery_worker.hpp"
#include "delivery/worker_calls.hpp"
#include "net/worker_pool.hpp"
#include "spool/spool_writer.hpp"
#include "spool/store.hpp"
#include "spool/write_set.hpp"

namespace mailgate::delivery {

std::size_t DeliveryEngine::drain(std::chrono::milliseconds deadline) const {
  const auto until = std::chrono::steady_clock::now() + deadline;
  std::size_t in_flight = 0;
  do {
    auto totals = queue_totals(std::chrono::seconds(1));
    if (!totals) return in_flight;
    in_flight = totals->in_flight;
    if (in_flight == 0) return 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  } while (std::chrono::steady_clock::now() < until);
  return in_flight;
}

DeliveryMetrics DeliveryEngine::metrics() const {
  DeliveryMetrics m;
  m.outcomes.assign(labels_.size(), {});
  m.tenant_outcomes.assign(tenant_labels_.size(), {});
  for (std::size_t l = 0; l < tenant_labels_.size(); ++l)
    m.tenant_names.emplace_back(tenant_labels_.name(l));
  for (const auto& w : workers_) {
    if (!w) continue;
    for (std::size_t l = 0; l < labels_.size(); ++l)
      for (std::size_t o = 0; o < metrics::kOutcomeCount; ++o)
        m.outcomes[l][o] += w->counters.outcomes.get(static_cast<metrics::Outcome>(o), l);
    for (std::size_t l = 0; l < tenant_labels_.size(); ++l)
      for (std::size_t o = 0; o < metrics::kOutcomeCount; ++o)
        m.tenant_outcomes[l][o] +=
            w->counters.tenant_outcomes.get(static_cast<metrics::Outcome>(o), l);
    w->delivery_seconds.add_to(m.delivery_seconds);
    w->counters.queue_delay_seconds.add_to(m.queue_delay_seconds);
    const auto started = w->connections.load(std::memory_order_relaxed);
    const auto closed = w->connections_closed.load(std::memory_order_relaxed);
    m.connections_active += started > closed ? started - closed : 0;
    m.opened_tls += w->opened_tls.load(std::memory_order_relaxed);
    m.opened_plain += w->opened_plain.load(std::memory_order_relaxed);
    m.dsns += w->counters.dsns.load(std::memory_order_relaxed);
    m.tls_sessions.resize(w->tls_report.size());
    for (std::size_t i = 0; i < w->tls_report.size(); ++i) m.tls_sessions[i] += w->tls_report.at(i);
    m.dane_sessions.resize(w->dane_sessions.size());
    for (std::size_t i = 0; i < w->dane_sessions.size(); ++i)
      m.dane_sessions[i] += w->dane_sessions[i].load(std::memory_order_relaxed);
  }
  return m;
}

std::optional<std::vector<queue::DestinationSummary>> DeliveryEngine::queue_summary(
    std::chrono::milliseconds deadline) const {
  auto parts = run_on<std::vector<queue::DestinationSummary>>(
      all_, [](Worker& w) { return w.shard ? w.shard->summary() : decltype(w.shard->summary()){}; },
      deadline);
  if (!parts) return std::nullopt;
  std::vector<queue::DestinationSummary> out;
  for (auto& p : *parts)
    for (auto& s : p) out.push_back(std::move(s));
  return out;
}

std::optional<queue::ShardTotals> DeliveryEngine::queue_totals(
    std::chrono::milliseconds deadline) const {
  auto parts = run_on<queue::ShardTotals>(
      all_, [](Worker& w) { return w.shard ? w.shard->totals() : queue::ShardTotals{}; }, deadline);
  if (!parts) return std::nullopt;
  queue::ShardTotals out;
  for (const auto& p : *parts) out.add(p);
  return out;
}

std::optional<std::vector<std::optional<queue::ItemState>>> DeliveryEngine::item_states(
    const spool::MessageId& id, const std::vector<std::string>& destinations,
    std::chrono::milliseconds deadline) const {
  std::vector<std::optional<queue::ItemState>> out(destinations.size());
  for (std::size_t i = 0; i < destinations.size(); ++i) {
    if (workers_.empty()) break;
    auto r = run_on<std::optional<queue::ItemState>>(
        {workers_[owner(destinations[i])].get()},
        [id, name = destinations[i]](Worker& w) -> std::optional<queue::ItemState> {
          return w.shard ? w.shard->item_state(name, id) : std::nullopt;
        },
        deadline);
    if (!r) return std::nullopt;
    out[i] = r->front();
  }
  return out;
}

std::optional<std::vector<queue::ItemView>> DeliveryEngine::queued_items(
    const std::string& destination, std::chrono::milliseconds deadline) const {
  auto parts = run_on<std::vector<queue::ItemView>>(
      all_,
      [destination](Worker& w) {
        return w.shard ? w.shard->items(destination) : std::vector<queue::ItemView>{};
      },
      deadline);
  if (!parts) return std::nullopt;
  std::vector<queue::ItemView> out;
  for (auto& p : *parts)
    for (auto& s : p) out.push_back(std::move(s));
  return out;
}

DeliveryEngine::ActResult DeliveryEngine::act(Action a, const std::string& destination,
                                              std::chrono::milliseconds deadline,
                                              std::string& error) {
  if (workers_.empty()) return ActResult::NoQueue;
  // Durable first: a suspension the API confirmed is in force after any restart.
  if (a == Action::Suspend || a == Action::Resume) {
    const auto now = queue::now_ms();
    spool::WriteSet set(*deps_.store);
    if (a == Action::Suspend)
      set.put_suspension(destination, now);
    else
      set.remove_suspension(destination);
    error = write_synced(*deps_.writer, std::move(set), deadline);
    if (!error.empty()) return ActResult::NotSaved;
    // Saved: told to the cluster; a resume never dated before the
    // suspension it ends (another node's clock may be behind).
    std::int64_t ms = now;
    {
      std::lock_guard lock(suspended_mu_);
      auto it = suspended_.find(destination);
      if (a == Action::Suspend) {
        suspended_[destination] = now;
      } else if (it != suspended_.end()) {
        ms = std::max(now, it->second);
        suspended_.erase(it);
      }
    }
    if (deps_.destination_changed) deps_.destination_changed(destination, a == Action::Resume, ms);
  }
  auto* owner_worker = workers_[owner(destination)].get();
  auto r = run_on<bool>(
      {owner_worker},
      [a, destination](Worker& w) {
        if (!w.shard) return false;
        switch (a) {
          case Action::Suspend:
            return w.shard->suspend(destination);
          case Action::Resume:
            return w.shard->resume(destination);
          case Action::Flush:
            return w.shard->flush(destination);
        }
        return false;
      },
      deadline);
  if (!r) return ActResult::Busy;
  return r->front() ? ActResult::Done : ActResult::NoQueue;
}

std::string write_synced(spool::SpoolWriter& writer, spool::WriteSet set,
                         std::chrono::milliseconds deadline) {
  struct Done {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    std::error_code ec;
  };
  auto d = std::make_shared<Done>();
  writer.submit(std::move(set), true, [d](std::error_code ec) {
    std::lock_guard lock(d->mu);
    d->done = true;
    d->ec = ec;
    d->cv.notify_all();
  });
  std::unique_lock lock(d->mu);
  if (!d->cv.wait_for(lock, deadline, [&] { return d->done; }))
    return "the spool write did not finish in time";
  return d->ec ? "the spool write failed: " + d->ec.message() : "";
}

std::optional<std::size_t> DeliveryEngine::bounce(const std::string& destination,
                                                  const spool::MessageId* id,
                                                  const std::string& reason,
                                                  std::chrono::milliseconds deadline,
                                                  const queue::TenancyFilter& filter) {
  std::vector<Worker*> targets = all_;
  if (!destination.empty() && !workers_.empty()) targets = {workers_[owner(destination)].get()};
  const std::optional<spool::MessageId> only = id ? std::optional(*id) : std::nullopt;
  const smtp::Reply reply{550, "5.0.0",
                          "message bounced by the administrator" +
                              (reason.empty() ? "" : ": " + reason.substr(0, 200))};
  auto counts = run_on<std::size_t>(
      targets,
      [destination, only, reply, filter](Worker& w) -> std::size_t {
        if (!w.shard) return 0;
        auto items = w.shard->extract(destination, only ? &*only : nullptr, filter);
        for (auto& [d, item] : items) {
          asio::co_spawn(
              w.ctx,
              w.fail_item(DestinationLink(w, *d), std::move(item), reply, FailedBy::Administrator),
              asio::detached);
        }
        return items.size();
      },
      deadline);
  if (!counts) return std::nullopt;
  std::size_t n = 0;
  for (auto c : *counts) n += c;
  return n;
}

}  // namespace mailgate::delivery
