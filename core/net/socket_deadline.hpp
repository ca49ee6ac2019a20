// net/socket_deadline: a deadline for the I/O of one socket. When it passes,
// the socket's pending operations are cancelled. All deadlines of one
// io_context share one timer (a per-context service that keeps them in an
// intrusive list and sweeps it when the earliest is due), so a deadline costs
// no allocation and no coroutine: an idle inbound session holds ~48 bytes for
// it instead of a timer, a shared state and a watchdog frame (~0.85 KiB).
// Pushing a deadline later costs no timer operation (the sweep finds the new
// time when it wakes); only an earlier one re-arms the shared timer.
// Promises: after stop() (or destruction) the sweep never touches the socket
// again. The socket's io_context is run by one thread (every mailgate
// context is: net/worker_pool), which is what makes the list lock-free.
#pragma once

#include <asio/ip/tcp.hpp>
#include <chrono>

namespace mailgate::net {

class DeadlineService;

class SocketDeadline {
 public:
  explicit SocketDeadline(asio::ip::tcp::socket& socket);
  ~SocketDeadline();  // stop()
  SocketDeadline(const SocketDeadline&) = delete;
  SocketDeadline& operator=(const SocketDeadline&) = delete;

  // Starts watching (again, after stop()) with a deadline `first` from now.
  void start(std::chrono::milliseconds first);
  void set(std::chrono::milliseconds from_now);
  // true once the deadline passed (and the socket's operations were cancelled);
  // set() clears it.
  bool expired() const { return expired_; }
  void stop();

 private:
  friend class DeadlineService;
  asio::ip::tcp::socket* socket_;
  DeadlineService* service_ = nullptr;  // set while linked
  SocketDeadline* prev_ = nullptr;
  SocketDeadline* next_ = nullptr;
  std::chrono::steady_clock::time_point deadline_ = std::chrono::steady_clock::time_point::max();
  bool expired_ = false;
};

}  // namespace mailgate::net
