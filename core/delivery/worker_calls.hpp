// delivery/worker_calls: how admin calls (from HTTP threads, never a worker)
// reach the engine's workers and the spool: run a function on some workers
// and gather the answers, or write a WriteSet synced, each with a deadline
// (internal to the module: engine_admin.cpp, engine_tenants.cpp).
// Promises: a worker or write that does not answer in time makes the call
// return nullopt / an error, and the late answer is dropped safely (the
// shared state outlives the caller).
#pragma once

#include <asio/post.hpp>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "delivery/delivery_worker.hpp"
#include "spool/spool_writer.hpp"
#include "spool/write_set.hpp"

namespace mailgate::delivery {

template <class R>
struct Gather {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<R> results;
  std::size_t pending = 0;
};

// Runs `f(worker)` on each of `targets` and collects the results.
template <class R, class F>
std::optional<std::vector<R>> run_on(const std::vector<DeliveryEngine::Worker*>& targets, F f,
                                     std::chrono::milliseconds deadline) {
  auto g = std::make_shared<Gather<R>>();
  g->pending = targets.size();
  for (auto* w : targets) {
    asio::post(w->ctx, [g, w, f]() mutable {
      R r = f(*w);
      std::lock_guard lock(g->mu);
      g->results.push_back(std::move(r));
      if (--g->pending == 0) g->cv.notify_all();
    });
  }
  std::unique_lock lock(g->mu);
  if (!g->cv.wait_for(lock, deadline, [&] { return g->pending == 0; })) return std::nullopt;
  return std::move(g->results);
}

// Writes `set` synced and waits up to `deadline` for it: "" or why not.
std::string write_synced(spool::SpoolWriter& writer, spool::WriteSet set,
                         std::chrono::milliseconds deadline);

}  // namespace mailgate::delivery
