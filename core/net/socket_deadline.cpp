// net/socket_deadline: see socket_deadline.hpp. The per-io_context service
// here owns the shared timer and the list of watched deadlines.
#include "net/socket_deadline.hpp"

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <optional>

namespace mailgate::net {

using Clock = std::chrono::steady_clock;

class DeadlineService : public asio::execution_context::service {
 public:
  inline static asio::execution_context::id id;

  explicit DeadlineService(asio::execution_context& ctx) : asio::execution_context::service(ctx) {}

  // The service of the socket's context, created with its first deadline.
  static DeadlineService& of(asio::ip::tcp::socket& socket) {
    auto& ctx = socket.get_executor().context();
    if (!asio::has_service<DeadlineService>(ctx)) {
      // A timer first, so that the timer service is registered before this
      // one: services are destroyed newest first, and ours owns a timer.
      asio::steady_timer registers_timer_service(socket.get_executor());
    }
    auto& svc = asio::use_service<DeadlineService>(ctx);
    if (!svc.timer_) svc.timer_.emplace(socket.get_executor());
    return svc;
  }

  void link(SocketDeadline& d) {
    d.service_ = this;
    d.prev_ = nullptr;
    d.next_ = head_;
    if (head_) head_->prev_ = &d;
    head_ = &d;
  }

  void unlink(SocketDeadline& d) {
    if (d.prev_)
      d.prev_->next_ = d.next_;
    else
      head_ = d.next_;
    if (d.next_) d.next_->prev_ = d.prev_;
    d.prev_ = d.next_ = nullptr;
    d.service_ = nullptr;
    // The last deadline gone: drop the pending wait too. It is outstanding
    // work, and io_context::run() would not return before it fired (a
    // client's whole timeout after its last socket closed).
    if (!head_ && timer_ && wake_ != Clock::time_point::min()) {
      wake_ = Clock::time_point::max();
      timer_->cancel();
    }
  }

  // A deadline moved to `t`: wake then if that is before the next sweep.
  void due(Clock::time_point t) {
    if (t >= wake_) return;
    wake_ = t;
    timer_->expires_at(t);  // (cancels the pending wait, whose handler ignores it)
    timer_->async_wait([this](std::error_code ec) {
      if (!ec) sweep();
    });
  }

 private:
  // Cancels the sockets whose deadline passed and re-arms for the earliest
  // of the rest. socket.cancel() only queues the completions, so the list is
  // not changed under the loop.
  void sweep() {
    const auto now = Clock::now();
    auto next = Clock::time_point::max();
    for (auto* d = head_; d; d = d->next_) {
      if (d->deadline_ <= now) {
        d->expired_ = true;
        d->deadline_ = Clock::time_point::max();
        std::error_code ec;
        d->socket_->cancel(ec);
      } else if (d->deadline_ < next) {
        next = d->deadline_;
      }
    }
    wake_ = Clock::time_point::max();
    if (next != Clock::time_point::max()) due(next);
  }

  void shutdown() override {
    // Deadlines destroyed after this (frames torn down with the context)
    // must not touch the list.
    while (head_) unlink(*head_);
    wake_ = Clock::time_point::min();  // no more waits
    if (timer_) timer_->cancel();
  }

  std::optional<asio::steady_timer> timer_;  // on the first deadline's executor
  SocketDeadline* head_ = nullptr;
  Clock::time_point wake_ = Clock::time_point::max();  // when the timer fires
};

SocketDeadline::SocketDeadline(asio::ip::tcp::socket& socket) : socket_(&socket) {}

SocketDeadline::~SocketDeadline() { stop(); }

void SocketDeadline::start(std::chrono::milliseconds first) {
  if (!service_) DeadlineService::of(*socket_).link(*this);
  set(first);
}

void SocketDeadline::set(std::chrono::milliseconds from_now) {
  expired_ = false;
  deadline_ = Clock::now() + from_now;
  if (service_) service_->due(deadline_);
}

void SocketDeadline::stop() {
  if (service_) service_->unlink(*this);
  deadline_ = Clock::time_point::max();
}

}  // namespace mailgate::net
