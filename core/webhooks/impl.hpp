// webhooks/impl: the state behind Webhooks (internal to the module): one
// Target per mailgate.webhook{} with its counters (any thread), its queue
// hand-off (`ready`, under a mutex) and its sender state (the sender
// thread only), and the sender's io_context.
#pragma once

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <atomic>
#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "metrics/histogram.hpp"
#include "webhooks/webhooks.hpp"

namespace mailgate::webhooks {

struct QueuedEvent {
  std::uint64_t seq = 0;
  std::int64_t queued_ms = 0;
  std::chrono::steady_clock::time_point arrived;  // when the sender may see it
  std::string json;
};

struct Target {
  Target(TargetConfig c, asio::io_context& ctx)
      : cfg(std::move(c)), wake(ctx), retry(ctx), post_seconds(post_buckets()) {}
  static std::vector<double> post_buckets() {
    return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
  }
  // Its `events` name the record's event, and with a `tenant` filter the
  // record is that tenant's.
  bool wants(const eventlog::LogRecord& r) const;

  const TargetConfig cfg;
  std::atomic<std::uint64_t> next_seq{1};
  // Reserved at stage time (so the bound holds before the commit lands).
  std::atomic<std::uint64_t> backlog_bytes{0}, backlog_events{0};
  std::atomic<std::uint64_t> dead_letters{0};                         // rows kept now
  std::atomic<std::uint64_t> queued{0}, sent{0}, failed{0}, dead{0};  // totals
  std::atomic<std::uint64_t> failures{0};                             // in a row
  std::atomic<bool> in_flight{false};
  std::atomic<std::int64_t> last_error_ms{0}, last_success_ms{0};
  mutable std::mutex error_mu;
  std::string last_error;

  std::mutex mu;
  std::deque<QueuedEvent> ready;  // committed, not yet taken by the sender

  // Sender thread only.
  std::deque<QueuedEvent> pending;
  asio::steady_timer wake;   // batch fill / idle wait; cancelled by new events
  asio::steady_timer retry;  // backoff wait
  metrics::Histogram post_seconds;
};

struct Webhooks::Impl {
  Deps deps;
  asio::io_context ctx{1};
  std::vector<std::unique_ptr<Target>> targets;
  std::atomic<bool> stopping{false};
  std::atomic<int> posts_in_flight{0};
  std::mt19937_64 rng{std::random_device{}()};  // sender thread only
  std::thread thread;
  bool started = false;

  Target* find(const std::string& name) const;
  void set_error(Target& t, std::string text);
  // The sender (sender.cpp): one coroutine per target on `ctx`.
  void start_senders();
};

}  // namespace mailgate::webhooks
