// Micro-benchmarks of a shared rate limit (issue 16 item 2): the cost of one
// check against the local limiter (ratelimit/shared_limiter, one mutex) and
// against Redis (cluster/redis_gcra: one EVALSHA per check) — one check at a
// time (the latency a message would wait) and 64 in flight on one connection
// (the throughput one worker's link gives), and with 8 events leased per
// call. Starts its own redis-server on a free loopback port (stopped by PID).
#include <benchmark/benchmark.h>

#include <asio/io_context.hpp>
#include <chrono>
#include <memory>

#include "cluster/redis_gcra.hpp"
#include "ratelimit/shared_limiter.hpp"
#include "unit/cluster/redis_server.hpp"

namespace {

using namespace std::chrono_literals;
using mailgate::cluster::GcraAnswer;
using mailgate::cluster::RedisGcra;
using mailgate::cluster::RedisLink;

constexpr double kFast = 1e9;  // never refuses: measures the check, not the wait

mailgate::testing::RedisServer& redis() {
  static mailgate::testing::RedisServer server;
  return server;
}

void BM_LocalLimiterCheck(benchmark::State& state) {
  mailgate::ratelimit::SharedLimiter limiter;
  std::int64_t now = 1'000'000;
  for (auto _ : state) benchmark::DoNotOptimize(limiter.check("dest:gmail.com", kFast, 10, ++now));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_LocalLimiterCheck);

// state.range(0) checks in flight, state.range(1) events per check.
void BM_RedisGcraCheck(benchmark::State& state) {
  asio::io_context ctx;
  RedisLink link(ctx, "127.0.0.1", redis().port(), 1000ms);
  RedisGcra gcra(link);
  const auto depth = state.range(0);
  const auto n = static_cast<std::uint32_t>(state.range(1));
  std::int64_t answered = 0;
  for (auto _ : state) {
    answered = 0;
    for (std::int64_t i = 0; i < depth; ++i)
      gcra.acquire("dest:gmail.com", kFast, 1000, n, [&](const GcraAnswer& a) {
        if (!a.error.empty()) state.SkipWithError(a.error.c_str());
        ++answered;
      });
    while (answered < depth) ctx.run_one();
  }
  state.SetItemsProcessed(state.iterations() * depth * n);  // events admitted
}
BENCHMARK(BM_RedisGcraCheck)
    ->UseRealTime()
    ->Args({1, 1})
    ->Args({64, 1})
    ->Args({1, 8})
    ->Args({64, 8});

}  // namespace

BENCHMARK_MAIN();
