// net/socket_deadline: see socket_deadline.hpp.
#include "net/socket_deadline.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>

namespace mailgate::net {

using Clock = std::chrono::steady_clock;

struct SocketDeadline::State {
  explicit State(asio::ip::tcp::socket& s) : socket(&s), timer(s.get_executor()) {}
  asio::ip::tcp::socket* socket;
  asio::steady_timer timer;
  Clock::time_point deadline = Clock::time_point::max();
  bool expired = false;
  bool stopped = false;
};

namespace {

asio::awaitable<void> watch(std::shared_ptr<SocketDeadline::State> st) {
  while (!st->stopped) {
    st->timer.expires_at(st->deadline);
    std::error_code ec;
    co_await st->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (st->stopped) break;
    if (st->deadline <= Clock::now()) {
      st->expired = true;
      st->socket->cancel(ec);
      st->deadline = Clock::time_point::max();
    }
  }
}

}  // namespace

SocketDeadline::SocketDeadline(asio::ip::tcp::socket& socket)
    : state_(std::make_shared<State>(socket)) {}

SocketDeadline::~SocketDeadline() { stop(); }

void SocketDeadline::start(std::chrono::milliseconds first) {
  state_->deadline = Clock::now() + first;
  asio::co_spawn(state_->timer.get_executor(), watch(state_), asio::detached);
}

void SocketDeadline::set(std::chrono::milliseconds from_now) {
  auto& st = *state_;
  st.expired = false;
  st.deadline = Clock::now() + from_now;
  if (st.deadline < st.timer.expiry()) st.timer.cancel();  // wake to re-arm earlier
}

bool SocketDeadline::expired() const { return state_->expired; }

void SocketDeadline::stop() {
  if (!state_ || state_->stopped) return;
  state_->stopped = true;
  state_->timer.cancel();
}

}  // namespace mailgate::net
