// Micro-benchmarks of a shared rate limit (issue 16 item 2): the cost of one
// check against the local limiter (ratelimit/shared_limiter, one mutex) and
// against Redis (cluster/redis_gcra: one EVALSHA per check) — one check at a
// time (the latency a message would wait) and 64 in flight on one connection
// (the throughput one worker's link gives), and with 8 events leased per
// call. Then the cost of one check as callers see it, through
// ratelimit::RateLimit: local (a Gcra) against leased from Redis
// (cluster/leased_rates: a per-node reserve refilled by RedisGcra on a
// background io_context thread, as worker 0 runs it in the gateway).
// And the cost of one warm-up take_quota() (egress::PathRegistry): per node
// against shared through Redis (cluster/shared_warmup: leases of the day's
// count spent locally).
// Starts its own redis-server on a free loopback port (stopped by PID).
#include <benchmark/benchmark.h>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <chrono>
#include <future>
#include <memory>
#include <thread>

#include "cluster/cluster.hpp"
#include "cluster/leased_rates.hpp"
#include "cluster/redis_gcra.hpp"
#include "cluster/shared_warmup.hpp"
#include "egress/path_registry.hpp"
#include "ratelimit/rate_limit.hpp"
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

std::int64_t steady_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void BM_LocalRateLimit(benchmark::State& state) {
  mailgate::ratelimit::RateLimit limit(kFast, 1000);
  for (auto _ : state) benchmark::DoNotOptimize(limit.acquire(steady_us()));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_LocalRateLimit);

// One node (a Cluster and its LeasedRates on a background thread); the
// benchmark thread checks as a worker would. state.range(0): the rate
// (events/s; the burst is a second of it), so the lease is 50 ms of it.
void BM_LeasedRateLimit(benchmark::State& state) {
  using namespace mailgate::cluster;
  ClusterConfig cfg;
  cfg.redis = redis().url();
  cfg.node = "bench";
  cfg.lease_ttl = mailgate::config::Duration(1000);
  cfg.timeout = mailgate::config::Duration(50);
  asio::io_context ctx;
  auto guard = asio::make_work_guard(ctx);
  Cluster cluster(cfg, ctx, [] { return 0; });
  auto rates = std::make_shared<LeasedRates>(cfg, ctx, cluster);
  cluster.start();
  rates->start();
  std::thread io([&] { ctx.run(); });
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (rates->fallback() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(5ms);
  if (rates->fallback()) state.SkipWithError("Redis not up");
  const double rate = static_cast<double>(state.range(0));
  mailgate::ratelimit::RateLimit limit(rate, static_cast<std::uint32_t>(rate), rates.get(),
                                       mailgate::ratelimit::RateKind::MessageRate,
                                       "bench|" + std::to_string(state.range(0)));
  std::int64_t granted = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) granted += limit.acquire(steady_us()) == 0;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto& st = rates->stats(mailgate::ratelimit::RateKind::MessageRate);
  state.counters["granted_per_s"] = static_cast<double>(granted) / seconds;
  state.counters["refills"] = static_cast<double>(st.refills.load());
  state.counters["refill_us"] =
      st.refills ? static_cast<double>(st.refill_us.load()) / static_cast<double>(st.refills) : 0;
  state.SetItemsProcessed(state.iterations());
  std::promise<void> stopped;
  asio::post(ctx, [&] {
    rates->stop();
    cluster.stop();
    stopped.set_value();
  });
  stopped.get_future().wait();
  guard.reset();
  ctx.stop();
  io.join();
}
// 1e6/s (the finest rate Redis's µs clock holds): most checks granted, the
// refills keeping up); 1e3/s: most checks find the reserve empty (refused
// locally, no round trip).
BENCHMARK(BM_LeasedRateLimit)->UseRealTime()->Arg(1'000'000)->Arg(1'000);

// A source warming up with a quota no run reaches (1e12 a day): every
// take is granted, so this measures the take, not a hold.
mailgate::egress::Source warm_source() {
  mailgate::egress::Source s;
  s.name = "bench";
  s.warmup = mailgate::egress::Warmup{1'000'000'000'000, 1, 30};
  return s;
}

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void BM_LocalWarmupTake(benchmark::State& state) {
  mailgate::egress::PathRegistry registry;
  const auto src = warm_source();
  const auto now = wall_ms();
  for (auto _ : state) benchmark::DoNotOptimize(registry.take_quota(src, "gmail", now));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_LocalWarmupTake);

// One node (a Cluster and its SharedWarmup on a background thread); the
// benchmark thread takes as an owner worker would, with a long queue ready
// (leases grow to kMaxLease: one round trip per thousand takes at most).
void BM_SharedWarmupTake(benchmark::State& state) {
  using namespace mailgate::cluster;
  ClusterConfig cfg;
  cfg.redis = redis().url();
  cfg.node = "bench";
  cfg.lease_ttl = mailgate::config::Duration(1000);
  cfg.timeout = mailgate::config::Duration(50);
  asio::io_context ctx;
  auto guard = asio::make_work_guard(ctx);
  Cluster cluster(cfg, ctx, [] { return 0; });
  SharedWarmup warmup(cfg, cluster, cluster.link(), ctx);
  cluster.start();
  warmup.start();
  std::thread io([&] { ctx.run(); });
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!warmup.stats().shared && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(5ms);
  if (!warmup.stats().shared) state.SkipWithError("Redis not up");
  mailgate::egress::PathRegistry registry;
  registry.set_warmup_backend(&warmup);
  const auto src = warm_source();
  std::int64_t granted = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) granted += registry.take_quota(src, "gmail", wall_ms(), 1'000'000) ? 1 : 0;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto st = warmup.stats();
  state.counters["granted_per_s"] = static_cast<double>(granted) / seconds;
  state.counters["refills"] = static_cast<double>(st.refills);
  state.SetItemsProcessed(state.iterations());
  std::promise<void> stopped;
  asio::post(ctx, [&] {
    warmup.stop();
    cluster.stop();
    stopped.set_value();
  });
  stopped.get_future().wait();
  guard.reset();
  ctx.stop();
  io.join();
}
BENCHMARK(BM_SharedWarmupTake)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
