// Unit tests of net/worker_pool: destroy() after stop() with work still
// queued. Promise checked: handlers and coroutine frames left in the
// workers' queues are destroyed without touching a context that is already
// gone, even when a handler pending on one worker owns a coroutine of
// another (under scripts/asan this was a heap-use-after-free at gateway
// shutdown: found by the ASan integration suite).
#include "net/worker_pool.hpp"

#include <gtest/gtest.h>

#include <asio/async_result.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>
#include <atomic>
#include <memory>

namespace mailgate::net {
namespace {

// Completes on worker `other` (as DeliveryEngine::Worker::on does): the
// awaiting coroutine's handler waits in that worker's queue.
asio::awaitable<void> call_on(asio::io_context& other) {
  auto initiate = [&other](auto handler) {
    asio::post(other, [h = std::move(handler)]() mutable {
      auto back = asio::get_associated_executor(h);
      asio::post(back, std::move(h));
    });
  };
  co_await asio::async_initiate<decltype(asio::use_awaitable), void()>(initiate,
                                                                       asio::use_awaitable);
}

TEST(WorkerPool, DestroyWithACoroutineOfOneWorkerPendingOnAnother) {
  for (unsigned pending_on : {0u, 1u}) {
    const unsigned runs_on = 1 - pending_on;
    WorkerPool pool(2);
    auto frame_alive = std::make_shared<int>(0);
    std::weak_ptr<int> watch = frame_alive;
    asio::co_spawn(
        pool.context(runs_on),
        [&pool, pending_on, keep = std::move(frame_alive)]() -> asio::awaitable<void> {
          co_await call_on(pool.context(pending_on));
          ADD_FAILURE() << "resumed after stop()";
        },
        asio::detached);
    // The coroutine starts and suspends; its handler is queued on the other
    // worker, which never runs it.
    pool.context(runs_on).poll();
    EXPECT_FALSE(watch.expired());
    pool.stop();
    pool.destroy();
    EXPECT_TRUE(watch.expired()) << "the suspended coroutine's frame was not destroyed";
  }
}

TEST(WorkerPool, DestroyAfterRunningWorkersWithQueuedWork) {
  WorkerPool pool(3);
  pool.start();
  std::atomic<int> ran{0};
  pool.run_on_all([&ran](unsigned) { ++ran; });
  EXPECT_EQ(ran.load(), 3);
  pool.stop();
  for (unsigned i = 0; i < pool.size(); ++i) asio::post(pool.context(i), [] {});
  pool.destroy();
}

}  // namespace
}  // namespace mailgate::net
