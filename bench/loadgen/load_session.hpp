// bench/loadgen/load_session: one client SMTP session of the load generator,
// as a coroutine: connect (from a chosen source address), greeting, EHLO,
// optional STARTTLS (certificate not checked: a benchmark) and AUTH PLAIN,
// then messages claimed from the shared Dispatcher until it has none left,
// reconnecting after `per_connection` messages or any failure. Every reply
// is read with a deadline (LoadOptions::timeout) through the project's own
// reply parser, so a stuck server shows as timeouts, never as a hang.
// Promises: a message counts as accepted only after a 2xx reply to its final
// dot; every other ending is counted once, by reply code or network error.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ssl/context.hpp>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>

#include "load_options.hpp"
#include "load_stats.hpp"

namespace mailgate::loadgen {

// Hands out message numbers to every session of every thread; at a fixed
// rate, also the time each message is due.
class Dispatcher {
 public:
  using Clock = std::chrono::steady_clock;
  Dispatcher(const LoadOptions& o, Clock::time_point start) : opts_(o), start_(start) {}
  struct Ticket {
    std::uint64_t number;
    Clock::time_point due;  // start_ in closed-loop mode
  };
  std::optional<Ticket> claim();
  std::uint64_t claimed() const { return next_.load(); }

 private:
  const LoadOptions& opts_;
  Clock::time_point start_;
  std::atomic<std::uint64_t> next_{0};
};

// Runs one session until the dispatcher runs dry (or, idle mode, until
// `hold_until`). `index`: this session's number (picks its source address).
asio::awaitable<void> run_session(const LoadOptions& opts, Dispatcher& dispatcher,
                                  asio::ssl::context& tls, asio::ip::tcp::endpoint target,
                                  unsigned index, LoadStats& stats,
                                  std::chrono::steady_clock::time_point hold_until);

}  // namespace mailgate::loadgen
