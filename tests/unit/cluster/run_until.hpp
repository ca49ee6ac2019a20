// tests/unit/cluster/run_until: runs an io_context on the test's thread
// until a condition holds or a deadline passes (the cluster tests' one wait:
// no fixed sleeps for correctness).
#pragma once

#include <asio/io_context.hpp>
#include <chrono>
#include <functional>

namespace mailgate::testing {

// Returns whether `done` held before `limit` passed.
inline bool run_until(asio::io_context& ctx, const std::function<bool()>& done,
                      std::chrono::milliseconds limit = std::chrono::milliseconds(5000)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    ctx.restart();
    ctx.run_for(std::chrono::milliseconds(5));
  }
  return true;
}

}  // namespace mailgate::testing
