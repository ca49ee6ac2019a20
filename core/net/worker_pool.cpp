// net/worker_pool: see worker_pool.hpp.
#include "net/worker_pool.hpp"
#include "net/thread_name.hpp"

#include <asio/post.hpp>
#include <cstdio>
#include <exception>
#include <future>

namespace mailgate::net {

namespace {
// Calls asio::execution_context::shutdown() (protected) on a context: it
// destroys every handler still queued there, and the context stays valid
// (asio::thread_pool does the same before its own destruction).
struct ContextShutdown : asio::io_context {
  static void run(asio::io_context& c) {
    void (asio::execution_context::*fn)() = &ContextShutdown::shutdown;
    (c.*fn)();
  }
};
}  // namespace

WorkerPool::WorkerPool(unsigned workers) {
  if (workers == 0) workers = 1;
  for (unsigned i = 0; i < workers; ++i) {
    // concurrency hint 1: each context is driven by exactly one thread, so
    // Asio can skip its internal locking.
    contexts_.push_back(std::make_unique<asio::io_context>(1));
    guards_.emplace_back(asio::make_work_guard(*contexts_.back()));
  }
}

WorkerPool::~WorkerPool() {
  stop();
  destroy();
}

void WorkerPool::destroy() {
  guards_.clear();
  // A handler queued on one worker may own a coroutine of another (a
  // cross-worker call: DeliveryEngine::Worker::on); destroying it posts the
  // coroutine's destruction to that other worker's context. So every queued
  // handler is destroyed while every context still exists, and only then
  // the contexts (which destroys what those posts queued).
  for (auto& c : contexts_) ContextShutdown::run(*c);
  contexts_.clear();
}

void WorkerPool::start() {
  for (auto& ctx : contexts_) {
    threads_.emplace_back([c = ctx.get(), i = threads_.size()] {
      name_this_thread("worker-" + std::to_string(i));
      for (;;) {
        try {
          c->run();
          return;
        } catch (const std::exception& e) {
          std::fprintf(stderr, "mailgate: worker handler threw: %s\n", e.what());
        }
      }
    });
  }
}

void WorkerPool::stop() {
  for (auto& g : guards_) g.reset();
  for (auto& c : contexts_) c->stop();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
}

void WorkerPool::run_on_all(const std::function<void(unsigned)>& fn) {
  std::vector<std::future<void>> done;
  for (unsigned i = 0; i < size(); ++i) {
    auto p = std::make_shared<std::promise<void>>();
    done.push_back(p->get_future());
    asio::post(*contexts_[i], [p, i, &fn] {
      fn(i);
      p->set_value();
    });
  }
  for (auto& f : done) f.get();
}

}  // namespace mailgate::net
