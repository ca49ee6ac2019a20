// net/socket_deadline: a deadline for the I/O of one socket. A watchdog
// coroutine cancels the socket's pending operations when the deadline
// passes; pushing the deadline later costs no timer operation (the watchdog
// re-arms itself when it wakes early). Promises: after stop() the watchdog
// never touches the socket again, even if the socket is destroyed right away.
#pragma once

#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <memory>

namespace mailgate::net {

class SocketDeadline {
 public:
  explicit SocketDeadline(asio::ip::tcp::socket& socket);
  ~SocketDeadline();  // stop()

  void start(std::chrono::milliseconds first);
  void set(std::chrono::milliseconds from_now);
  // true once the deadline passed (and the socket's operations were cancelled);
  // set() clears it.
  bool expired() const;
  void stop();

  struct State;  // shared with the watchdog coroutine

 private:
  std::shared_ptr<State> state_;
};

}  // namespace mailgate::net
