// webhooks/webhooks: see webhooks.hpp. This unit is the producer side
// (staging rows into commits, handing committed rows to the sender), the
// start-up scan of the spool family and the admin side (status, dead
// letters, replay); the sender itself is sender.cpp.
#include "webhooks/webhooks.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <asio/post.hpp>
#include <chrono>
#include <future>
#include <map>

#include "eventlog/delivery_log.hpp"
#include "net/thread_name.hpp"
#include "spool/spool_writer.hpp"
#include "spool/store.hpp"
#include "spool/write_set.hpp"
#include "webhooks/batching.hpp"
#include "webhooks/impl.hpp"

namespace mailgate::webhooks {

namespace {

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

bool Target::wants(const eventlog::LogRecord& r) const {
  if (!cfg.tenant.empty() && eventlog::tenant_of(r) != cfg.tenant) return false;
  const std::string_view event = r.event;
  return cfg.events.empty() ||
         std::find(cfg.events.begin(), cfg.events.end(), event) != cfg.events.end();
}

Target* Webhooks::Impl::find(const std::string& name) const {
  for (const auto& t : targets)
    if (t->cfg.name == name) return t.get();
  return nullptr;
}

void Webhooks::Impl::set_error(Target& t, std::string text) {
  std::lock_guard lk(t.error_mu);
  t.last_error = std::move(text);
  t.last_error_ms.store(now_ms(), std::memory_order_relaxed);
}

Webhooks::Webhooks(Deps deps) : impl_(std::make_unique<Impl>()) {
  impl_->deps = deps;
  for (const auto& c : deps.config->targets)
    impl_->targets.push_back(std::make_unique<Target>(c, impl_->ctx));
}

Webhooks::~Webhooks() { stop(); }

bool Webhooks::enabled() const { return !impl_->targets.empty(); }

std::string Webhooks::start() {
  auto& m = *impl_;
  if (m.targets.empty() || m.started) return {};
  // Sequences continue above every row kept (queued or dead), so a target's
  // key order stays the order its events were produced in.
  std::map<std::string, std::uint64_t> unknown;
  std::uint64_t bad = 0;
  const auto now = std::chrono::steady_clock::now();
  m.deps.store->for_each_webhook_row([&](spool::WebhookRow kind, const std::string& name,
                                         std::uint64_t seq, std::string_view value) {
    Target* t = m.find(name);
    if (!t) {
      ++unknown[name];
      return true;
    }
    t->next_seq = std::max(t->next_seq.load(), seq + 1);
    if (kind == spool::WebhookRow::Dead) {
      t->dead_letters.fetch_add(1, std::memory_order_relaxed);
      return true;
    }
    Row row;
    if (!decode_row(value, row)) {
      ++bad;
      return true;
    }
    t->backlog_bytes += row.json.size();
    t->backlog_events += 1;
    t->pending.push_back({seq, row.queued_ms, now, std::move(row.json)});
    return true;
  });
  for (const auto& [name, n] : unknown)
    spdlog::warn(
        "webhooks: {} event(s) in the spool for target \"{}\", which is not configured; "
        "kept until it is",
        n, name);
  if (bad) spdlog::error("webhooks: {} undecodable queued event row(s) skipped", bad);
  for (const auto& t : m.targets)
    if (!t->pending.empty() || t->dead_letters.load())
      spdlog::info("webhooks: target {}: {} event(s) queued, {} dead letter(s) from the spool",
                   t->cfg.name, t->pending.size(), t->dead_letters.load());
  m.start_senders();
  m.started = true;
  m.thread = std::thread([&m] {
    net::name_this_thread("webhooks");
    m.ctx.run();
  });
  return {};
}

void Webhooks::stop() {
  auto& m = *impl_;
  if (!m.started || m.stopping.exchange(true)) return;
  asio::post(m.ctx, [&m] {
    for (auto& t : m.targets) {
      t->wake.cancel();
      t->retry.cancel();
    }
  });
  // A POST in flight finishes (bounded by its timeout, at most 2 s here), so
  // its acknowledgement is recorded instead of sending the batch again.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (m.posts_in_flight.load() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  m.ctx.stop();
  if (m.thread.joinable()) m.thread.join();
}

Staged Webhooks::stage(spool::WriteSet& set, std::span<const eventlog::LogRecord> records) {
  Staged out;
  auto& m = *impl_;
  if (m.targets.empty()) return out;
  const auto max_backlog = m.deps.config->max_backlog;
  for (const auto& r : records) {
    std::string json;
    for (std::size_t i = 0; i < m.targets.size(); ++i) {
      auto& t = *m.targets[i];
      if (!t.wants(r)) continue;
      if (json.empty()) json = eventlog::to_json(r);
      const auto seq = t.next_seq.fetch_add(1, std::memory_order_relaxed);
      const auto ms = now_ms();
      const bool full = t.backlog_bytes.load(std::memory_order_relaxed) + json.size() > max_backlog;
      if (full) {
        set.put_webhook(spool::WebhookRow::Dead, t.cfg.name, seq,
                        encode_row(ms, "backlog full (webhooks.max_backlog)", json));
      } else {
        t.backlog_bytes.fetch_add(json.size(), std::memory_order_relaxed);
        t.backlog_events.fetch_add(1, std::memory_order_relaxed);
        set.put_webhook(spool::WebhookRow::Queued, t.cfg.name, seq, encode_row(ms, "", json));
      }
      out.rows_.push_back({i, seq, ms, full, json});
    }
  }
  return out;
}

void Webhooks::committed(Staged&& staged) {
  auto& m = *impl_;
  const auto now = std::chrono::steady_clock::now();
  std::vector<bool> wake(m.targets.size(), false);
  for (auto& r : staged.rows_) {
    auto& t = *m.targets[r.target];
    if (r.dead) {
      t.dead.fetch_add(1, std::memory_order_relaxed);
      t.dead_letters.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    t.queued.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard lk(t.mu);
    t.ready.push_back({r.seq, r.queued_ms, now, std::move(r.json)});
    // The sender looks at `ready` whenever it wakes: wake it for the first
    // event (it may be idle) and when a batch is full (it may be waiting for one).
    if (t.ready.size() == 1 || t.ready.size() % t.cfg.batch_size == 0) wake[r.target] = true;
  }
  staged.rows_.clear();
  for (std::size_t i = 0; i < wake.size(); ++i)
    if (wake[i]) asio::post(m.ctx, [t = m.targets[i].get()] { t->wake.cancel(); });
}

void Webhooks::abandoned(Staged&& staged) {
  for (const auto& r : staged.rows_) {
    if (r.dead) continue;
    auto& t = *impl_->targets[r.target];
    t.backlog_bytes.fetch_sub(r.json.size(), std::memory_order_relaxed);
    t.backlog_events.fetch_sub(1, std::memory_order_relaxed);
  }
  staged.rows_.clear();
}

void Webhooks::publish_uncommitted(const eventlog::LogRecord& record) {
  auto& m = *impl_;
  if (m.stopping.load() || std::none_of(m.targets.begin(), m.targets.end(),
                                        [&](const auto& t) { return t->wants(record); }))
    return;  // the common case (rejection floods): no allocation, no write
  auto set = std::make_shared<spool::WriteSet>(*m.deps.store);
  auto staged = std::make_shared<Staged>(stage(*set, std::span(&record, 1)));
  if (staged->empty()) return;
  // Unsynced: it joins the writer's next round (synced by the next commit).
  m.deps.writer->submit(std::move(*set), false, [this, staged](std::error_code ec) {
    if (ec)
      abandoned(std::move(*staged));
    else
      committed(std::move(*staged));
  });
}

std::vector<TargetStatus> Webhooks::status() const {
  std::vector<TargetStatus> out;
  for (const auto& p : impl_->targets) {
    const auto& t = *p;
    TargetStatus s;
    s.name = t.cfg.name;
    s.url = t.cfg.url;
    s.events = t.cfg.events;
    s.backlog_events = t.backlog_events.load();
    s.backlog_bytes = t.backlog_bytes.load();
    s.max_backlog_bytes = impl_->deps.config->max_backlog;
    s.dead_letters = t.dead_letters.load();
    s.queued = t.queued.load();
    s.sent = t.sent.load();
    s.failed = t.failed.load();
    s.dead = t.dead.load();
    s.consecutive_failures = t.failures.load();
    s.in_flight = t.in_flight.load();
    s.last_error_ms = t.last_error_ms.load();
    s.last_success_ms = t.last_success_ms.load();
    {
      std::lock_guard lk(t.error_mu);
      s.last_error = t.last_error;
    }
    out.push_back(std::move(s));
  }
  return out;
}

std::optional<std::vector<DeadLetter>> Webhooks::dead_letters(const std::string& name,
                                                              std::size_t limit) const {
  if (!impl_->find(name)) return std::nullopt;
  std::vector<DeadLetter> out;
  impl_->deps.store->for_each_webhook_row(
      spool::WebhookRow::Dead, name,
      [&](spool::WebhookRow, const std::string&, std::uint64_t seq, std::string_view value) {
        Row row;
        if (decode_row(value, row))
          out.push_back({seq, row.queued_ms, std::move(row.reason), std::move(row.json)});
        return out.size() < limit;
      });
  return out;
}

std::optional<std::uint64_t> Webhooks::replay(const std::string& name, std::string& error) {
  auto& m = *impl_;
  Target* t = m.find(name);
  if (!t) {
    error = "no webhook target named \"" + name + "\"";
    return std::nullopt;
  }
  // The dead rows move behind the queue with new sequences and a fresh
  // max_age, in one synced write.
  spool::WriteSet set(*m.deps.store);
  Staged staged;
  const std::size_t index =
      std::find_if(m.targets.begin(), m.targets.end(), [t](auto& p) { return p.get() == t; }) -
      m.targets.begin();
  const auto ms = now_ms();
  std::uint64_t n = 0;
  m.deps.store->for_each_webhook_row(
      spool::WebhookRow::Dead, name,
      [&](spool::WebhookRow, const std::string&, std::uint64_t seq, std::string_view value) {
        Row row;
        set.remove_webhook(spool::WebhookRow::Dead, name, seq);
        ++n;
        if (!decode_row(value, row)) return true;  // unreadable: dropped with its row
        const auto new_seq = t->next_seq.fetch_add(1);
        set.put_webhook(spool::WebhookRow::Queued, name, new_seq, encode_row(ms, "", row.json));
        t->backlog_bytes += row.json.size();
        t->backlog_events += 1;
        staged.rows_.push_back({index, new_seq, ms, false, std::move(row.json)});
        return true;
      });
  if (n == 0) return 0;
  std::promise<std::error_code> done;
  auto result = done.get_future();
  m.deps.writer->submit(std::move(set), true, [&done](std::error_code ec) { done.set_value(ec); });
  if (auto ec = result.get()) {
    abandoned(std::move(staged));
    error = "spool write failed: " + ec.message();
    return std::nullopt;
  }
  t->dead_letters.fetch_sub(std::min(n, t->dead_letters.load()));
  const auto requeued = staged.rows_.size();
  committed(std::move(staged));
  spdlog::info("webhooks: target {}: {} dead letter(s) requeued", name, requeued);
  return requeued;
}

}  // namespace mailgate::webhooks
