// delivery/delivery_worker: the per-worker half of the delivery engine
// (internal to the module): the worker's queue shard and resolver, and the
// coroutines of its connections and attempts (delivery_attempt.cpp).
#pragma once

#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>
#include <atomic>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "delivery/delivery_engine.hpp"
#include "delivery/smtp_client.hpp"
#include "dns/resolver.hpp"
#include "metrics/histogram.hpp"
#include "metrics/outcome_counters.hpp"
#include "policy/runtime.hpp"
#include "queue/queue_shard.hpp"
#include "smtp/bounce_class.hpp"
#include "spool/message_id.hpp"
#include "spool/spool_reader.hpp"

namespace mailgate::delivery {

struct Target {
  std::string host;  // MX host name (or the literal)
  asio::ip::tcp::endpoint endpoint;
};

struct Route {
  smtp::Reply failure;  // code 0: targets are usable
  std::vector<Target> targets;
};

// One recipient's outcome in an attempt.
struct Outcome {
  std::uint32_t index;  // into Envelope::recipients
  smtp::Reply reply;
};

template <class R>
struct CompletionOf {
  using type = void(R);
};
template <>
struct CompletionOf<void> {
  using type = void();
};

struct DeliveryEngine::Worker {
  Worker(const EngineDeps& deps, unsigned index);

  const EngineDeps& deps;
  unsigned index;
  asio::io_context& ctx;
  std::unique_ptr<dns::Resolver> resolver;
  std::unique_ptr<queue::QueueShard> shard;
  spool::IdGenerator ids;
  smtp::BounceClassifier classifier;
  // Queues a new message (a DSN) with its owner, which may be another worker.
  std::function<void(const spool::MessageId&, std::vector<spool::QueuedDest>, std::uint64_t)>
      enqueue;
  std::atomic<std::uint64_t> delivered{0}, deferred{0}, bounced{0}, expired{0}, dsns{0},
      connections{0};
  // Metrics (this worker writes them; scrapes sum every worker's).
  const metrics::DestinationLabels* labels = nullptr;
  metrics::OutcomeCounters outcome_counts;
  metrics::Histogram delivery_seconds{metrics::delivery_buckets()};
  metrics::Histogram queue_delay_seconds{metrics::queue_delay_buckets()};
  std::atomic<std::uint64_t> connections_closed{0}, opened_tls{0}, opened_plain{0};

  std::vector<Worker*>* all = nullptr;  // every worker, for spreading connections
  unsigned next_worker = 0;             // round robin over `all` (owner side)
  std::mt19937_64 rng{std::random_device{}()};

  // Owner side: start one connection for `d`, on this or another worker.
  void start_connection(queue::Destination& d);
  // Owner side: is `d.shaping` from the current policy? If not, runs its
  // egress_path hook (once) and tells the shard when it is.
  bool shaping_current(queue::Destination& d);
  asio::awaitable<void> evaluate_egress(queue::Destination& d, policy::PolicyRef policy);
  void expire_item(queue::Destination& d, queue::Item item);

  // Runs `f` on `owner`'s thread (where the destination's queue lives) and
  // resumes here with its result. Direct call when this is the owner.
  // `f` is taken by reference (it lives in the caller's full expression,
  // which spans the suspension) and must not own resources: g++ 12 copies
  // coroutine parameters with init-captures wrongly (double release seen).
  template <class F>
  asio::awaitable<std::invoke_result_t<F&>> on(Worker& owner, F&& f);

  // The rest run on the worker of the connection; `owner` holds `d`.
  asio::awaitable<void> connection(Worker& owner, queue::Destination& d);
  asio::awaitable<Route> resolve(const std::string& destination);
  asio::awaitable<void> attempt(Worker& owner, queue::Destination& d, queue::Item item,
                                SmtpClient* client);
  // Final failure for every pending recipient of `item` without a connection
  // (DNS permanent failure, mail loop, expiry: kExpired).
  asio::awaitable<void> fail_item(Worker& owner, queue::Destination& d, queue::Item item,
                                  smtp::Reply reply, const char* event = nullptr);
  // Persists the outcomes of one attempt (+ DSN) and moves the item on.
  // `client` is the connection used (null when none was).
  asio::awaitable<void> settle(Worker& owner, queue::Destination& d, queue::Item item,
                               std::shared_ptr<spool::LoadedMessage> msg,
                               std::vector<Outcome> outcomes, const SmtpClient* client,
                               const char* final_event = nullptr);

  static const smtp::Reply kExpired;
};

template <class F>
asio::awaitable<std::invoke_result_t<F&>> DeliveryEngine::Worker::on(Worker& owner, F&& f) {
  // Written without `co_return f()` / `co_return co_await` (see session.cpp).
  using R = std::invoke_result_t<F&>;
  auto initiate = [&owner, &f](auto handler) {
    auto back = asio::get_associated_executor(handler);
    asio::post(owner.ctx, [&f, h = std::move(handler), back]() mutable {
      if constexpr (std::is_void_v<R>) {
        f();
        asio::post(back, std::move(h));
      } else {
        asio::post(back, [h = std::move(h), r = f()]() mutable { h(std::move(r)); });
      }
    });
  };
  if constexpr (std::is_void_v<R>) {
    if (&owner == this) {
      f();
    } else {
      co_await asio::async_initiate<decltype(asio::use_awaitable), void()>(initiate,
                                                                           asio::use_awaitable);
    }
    co_return;
  } else {
    if (&owner == this) {
      R r = f();
      co_return r;
    }
    R r = co_await asio::async_initiate<decltype(asio::use_awaitable), void(R)>(
        initiate, asio::use_awaitable);
    co_return r;
  }
}

}  // namespace mailgate::delivery
