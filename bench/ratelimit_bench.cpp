// Micro-benchmarks of ratelimit/shared_limiter: a new key arriving at a full
// shard (65,536 keys, every one still busy, so none can be dropped), the
// case that used to sweep the whole shard under its lock for each new key;
// and, for scale, a check of a key already held.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "ratelimit/shared_limiter.hpp"

namespace {

using mailgate::ratelimit::SharedLimiter;

constexpr double kSlow = 1.0 / 3600;  // one event per hour: a key stays busy for an hour
constexpr std::int64_t kNow = 1'000'000'000;

// Keys that land in the limiter's shard 0 (SharedLimiter spreads keys by
// std::hash % 16; filling every shard would itself cost the sweeps measured).
std::string shard0_key(const char* prefix, std::uint64_t& n) {
  for (;;) {
    auto k = prefix + std::to_string(n++);
    if (std::hash<std::string_view>{}(k) % 16 == 0) return k;
  }
}

// Fills shard 0 with 65,536 busy keys.
void fill(SharedLimiter& l) {
  std::uint64_t n = 0;
  for (int i = 0; i < 65536; ++i) l.check(shard0_key("busy-", n), kSlow, 1, kNow);
}

void BM_NewKeyIntoFullShard(benchmark::State& state) {
  SharedLimiter l;  // 65,536 keys per shard
  fill(l);
  std::uint64_t n = 0;
  std::vector<std::string> keys;
  for (int i = 0; i < 4096; ++i) keys.push_back(shard0_key("new-", n));
  std::size_t i = 0;
  for (auto _ : state) {
    // Refused (every held key is busy): what it costs to find that out.
    benchmark::DoNotOptimize(l.check(keys[i++ % keys.size()], kSlow, 1, kNow + 1));
  }
  state.counters["keys"] = static_cast<double>(l.size());
}
BENCHMARK(BM_NewKeyIntoFullShard)->Unit(benchmark::kMicrosecond)->Iterations(2000);

void BM_HeldKey(benchmark::State& state) {
  SharedLimiter l;
  fill(l);
  std::int64_t t = kNow;
  for (auto _ : state) benchmark::DoNotOptimize(l.check("busy-1", 1e9, 1, t += 10));
}
BENCHMARK(BM_HeldKey)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
