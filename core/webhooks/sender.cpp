// webhooks/sender: the sender of each target, a coroutine on the webhooks
// io_context (one thread for all targets: the work per POST is building a
// body and a signature, the waiting is done by the HTTP client's thread, so
// one thread keeps up with many targets and never competes with workers).
// Loop: take committed events → wait for a full batch or batch_time → POST
// one batch (one in flight per target: order) → on 2xx delete its rows, on a
// permanent refusal move them to the dead letters, else back off (the batch
// stays at the front) and dead-letter events older than max_age.
#include <spdlog/spdlog.h>

#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/post.hpp>
#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>
#include <memory>

#include "httpclient/http_client.hpp"
#include "spool/spool_writer.hpp"
#include "spool/write_set.hpp"
#include "webhooks/batching.hpp"
#include "webhooks/impl.hpp"
#include "webhooks/signature.hpp"

namespace mailgate::webhooks {

namespace {

using asio::use_awaitable;
using Clock = std::chrono::steady_clock;

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

asio::awaitable<httpclient::Response> post(httpclient::Client& http, httpclient::Request req) {
  auto r = co_await asio::async_initiate<decltype(use_awaitable), void(httpclient::Response)>(
      [&http](auto handler, httpclient::Request q) {
        // The client's callback must be copyable; the handler is move-only.
        auto h = std::make_shared<decltype(handler)>(std::move(handler));
        http.send(std::move(q), [h](httpclient::Response resp) {
          auto ex = asio::get_associated_executor(*h);
          asio::post(ex,
                     [h, resp = std::move(resp)]() mutable { std::move (*h)(std::move(resp)); });
        });
      },
      use_awaitable, std::move(req));
  co_return r;
}

// Waits on `timer` until `when` or until it is cancelled (new events, stop).
asio::awaitable<void> sleep_until(asio::steady_timer& timer, Clock::time_point when) {
  timer.expires_at(when);
  std::error_code ec;
  co_await timer.async_wait(asio::redirect_error(use_awaitable, ec));
}

void take_ready(Target& t) {
  std::lock_guard lk(t.mu);
  while (!t.ready.empty()) {
    t.pending.push_back(std::move(t.ready.front()));
    t.ready.pop_front();
  }
}

std::string describe(const httpclient::Response& r) {
  if (r.status == httpclient::Response::Status::Answered) return "HTTP " + std::to_string(r.code);
  return r.error.empty() ? std::string("no answer") : r.error;
}

// Removes the first `n` pending events: deleted (acknowledged) or moved to
// the dead letters with `reason`. Unsynced: a crash before the next synced
// round sends them again (at least once) or keeps them queued.
void retire(Webhooks::Impl& m, Target& t, std::size_t n, const std::string* dead_reason) {
  spool::WriteSet set(*m.deps.store);
  std::uint64_t bytes = 0;
  const auto ms = wall_ms();
  for (std::size_t i = 0; i < n; ++i) {
    auto& e = t.pending.front();
    set.remove_webhook(spool::WebhookRow::Queued, t.cfg.name, e.seq);
    if (dead_reason)
      set.put_webhook(spool::WebhookRow::Dead, t.cfg.name, e.seq,
                      encode_row(ms, *dead_reason, e.json));
    bytes += e.json.size();
    t.pending.pop_front();
  }
  t.backlog_bytes.fetch_sub(bytes, std::memory_order_relaxed);
  t.backlog_events.fetch_sub(n, std::memory_order_relaxed);
  if (dead_reason) {
    t.dead.fetch_add(n, std::memory_order_relaxed);
    t.dead_letters.fetch_add(n, std::memory_order_relaxed);
  }
  m.deps.writer->submit(std::move(set), false, [](std::error_code) {});
}

// After a failed POST: events of the batch older than max_age become dead
// letters (in queue order, so the ones before them go first).
void expire(Webhooks::Impl& m, Target& t, std::size_t batch) {
  const auto oldest_allowed = wall_ms() - t.cfg.max_age.count();
  std::size_t n = 0;
  while (n < batch && n < t.pending.size() && t.pending[n].queued_ms <= oldest_allowed) ++n;
  if (n == 0) return;
  const std::string reason = "not acknowledged within max_age; last error: " + [&t] {
    std::lock_guard lk(t.error_mu);
    return t.last_error;
  }();
  spdlog::warn("webhooks: target {}: {} event(s) older than max_age are now dead letters",
               t.cfg.name, n);
  retire(m, t, n, &reason);
}

asio::awaitable<void> run_target(Webhooks::Impl& m, Target& t) {
  for (;;) {
    if (m.stopping.load()) co_return;
    take_ready(t);
    if (t.pending.empty()) {
      co_await sleep_until(t.wake, Clock::time_point::max());
      continue;
    }
    const auto d = decide(t.pending.size(), t.cfg.batch_size, t.pending.front().arrived,
                          t.cfg.batch_time, t.failures.load() > 0, Clock::now());
    if (d.send == 0) {
      co_await sleep_until(t.wake, d.wait_until);
      continue;
    }
    const auto n = d.send;
    httpclient::Request req;
    req.method = "POST";
    req.url = t.cfg.url;
    req.body = batch_body(t.pending.begin(), t.pending.begin() + static_cast<std::ptrdiff_t>(n),
                          [](const QueuedEvent& e) -> const std::string& { return e.json; });
    const auto ts = wall_ms() / 1000;
    req.headers = {"Content-Type: application/json", "X-Mailgate-Timestamp: " + std::to_string(ts),
                   "X-Mailgate-Signature: " + signature(t.cfg.secret, ts, req.body)};
    req.ca_file = m.deps.config->ca_file;
    req.timeout = t.cfg.timeout;
    req.user_agent = "mailgate webhooks";
    t.in_flight = true;
    ++m.posts_in_flight;
    auto r = co_await post(*m.deps.http, std::move(req));
    --m.posts_in_flight;
    t.in_flight = false;
    t.post_seconds.observe(r.seconds);
    const auto outcome = classify(r.status == httpclient::Response::Status::Answered, r.code);
    if (outcome == PostOutcome::Ack) {
      retire(m, t, n, nullptr);
      t.sent.fetch_add(n, std::memory_order_relaxed);
      t.failures = 0;
      t.last_success_ms = wall_ms();
      continue;
    }
    const auto what = describe(r);
    m.set_error(t, what);
    if (outcome == PostOutcome::Dead) {
      spdlog::warn("webhooks: target {} refused a batch of {} event(s) ({}): dead letters",
                   t.cfg.name, n, what);
      t.failures = 0;
      retire(m, t, n, &what);
      continue;
    }
    t.failed.fetch_add(n, std::memory_order_relaxed);
    const auto failures = ++t.failures;
    const auto wait =
        backoff(static_cast<unsigned>(failures), t.cfg.retry_first, t.cfg.retry_max, m.rng);
    if (failures == 1 || failures % 10 == 0)
      spdlog::warn("webhooks: target {}: POST of {} event(s) failed ({}); retry {} in {} ms",
                   t.cfg.name, n, what, failures, wait.count());
    expire(m, t, n);
    if (m.stopping.load()) co_return;
    co_await sleep_until(t.retry, Clock::now() + wait);
  }
}

}  // namespace

void Webhooks::Impl::start_senders() {
  for (auto& t : targets) asio::co_spawn(ctx, run_target(*this, *t), asio::detached);
}

}  // namespace mailgate::webhooks
