// net/worker_pool: N worker threads, each running its own asio::io_context
// (thread per core, shared nothing). Work is posted to a worker; nothing here
// locks on the hot path. Promises: run() returns only after stop() and every
// thread has joined; an exception escaping a handler is logged and the worker
// keeps running (a bug in one session must not stop a core).
#pragma once

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

namespace mailgate::net {

class WorkerPool {
 public:
  explicit WorkerPool(unsigned workers);
  ~WorkerPool();

  unsigned size() const { return static_cast<unsigned>(contexts_.size()); }
  asio::io_context& context(unsigned i) { return *contexts_[i]; }

  void start();
  void stop();  // stops every io_context and joins the threads
  // After stop(): destroys the io_contexts and with them every handler and
  // coroutine frame still pending. Objects those frames reference must outlive
  // this call; I/O objects owned elsewhere must be destroyed before it.
  void destroy();
  // Runs fn(i) on every worker and waits for all to finish (not from a worker!).
  void run_on_all(const std::function<void(unsigned)>& fn);

 private:
  using Guard = asio::executor_work_guard<asio::io_context::executor_type>;
  std::vector<std::unique_ptr<asio::io_context>> contexts_;
  std::vector<std::optional<Guard>> guards_;
  std::vector<std::thread> threads_;
};

}  // namespace mailgate::net
