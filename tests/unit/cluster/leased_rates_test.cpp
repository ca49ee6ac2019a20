// Tests of cluster/leased_rates against a real redis-server: three nodes
// (a Cluster and a LeasedRates each, on one io_context run by a background
// thread, as the gateway's worker 0 runs them) check one shared limit from
// the test's thread, as workers do: together they stay within the bound
// and get at least 85% of the rate; Redis killed makes each node fall back
// to its share (rate / live nodes) at once, and a new Redis makes the limit
// shared again; mailgate.ratelimit.check's SharedLimiter over this backend
// admits a key's first check without waiting for Redis; tokens not spent
// within their life, and all of them on leave(), go back to Redis.
#include "cluster/leased_rates.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <chrono>
#include <cstdio>
#include <functional>
#include <future>
#include <memory>
#include <thread>
#include <vector>

#include "cluster/cluster.hpp"
#include "ratelimit/shared_limiter.hpp"
#include "unit/cluster/node_config.hpp"
#include "unit/cluster/redis_server.hpp"

namespace mailgate::cluster {
namespace {

using namespace std::chrono_literals;
using ratelimit::RateKind;
using ratelimit::RateLimit;

std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds limit = 5000ms) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

// `n` nodes on one io_context driven by a background thread.
class Nodes {
 public:
  Nodes(const testing::RedisServer& redis, unsigned n) {
    for (unsigned i = 0; i < n; ++i) {
      ClusterConfig c = testing::node_config(redis.url(), "node-" + std::to_string(i));
      // Generous: on a loaded machine (ctest -j) a refill slower than the
      // deadline makes its node local for a second (rate / 3 on top of the
      // others' leases): right for a failing Redis, noise for this test.
      c.timeout = config::Duration(300);
      clusters_.push_back(std::make_unique<Cluster>(c, ctx_, [] { return 0; }));
      rates_.push_back(std::make_shared<LeasedRates>(c, ctx_, *clusters_.back()));
      clusters_.back()->start();  // before the context runs: allowed
      rates_.back()->start();
    }
    thread_ = std::thread([this] { ctx_.run(); });
  }
  ~Nodes() {
    std::promise<void> stopped;
    asio::post(ctx_, [&] {
      for (auto& r : rates_) r->stop();
      for (auto& c : clusters_) c->stop();
      stopped.set_value();
    });
    stopped.get_future().wait();
    guard_.reset();
    ctx_.stop();
    thread_.join();
  }
  LeasedRates& rates(unsigned i) { return *rates_[i]; }
  // Runs `f` on the nodes' thread (as the gateway's worker 0) and waits for it.
  void on_thread(const std::function<void()>& f) {
    std::promise<void> done;
    asio::post(ctx_, [&] {
      f();
      done.set_value();
    });
    done.get_future().wait();
  }
  Cluster& cluster(unsigned i) { return *clusters_[i]; }
  unsigned size() const { return static_cast<unsigned>(rates_.size()); }
  bool all(const std::function<bool(unsigned)>& f) {
    for (unsigned i = 0; i < size(); ++i)
      if (!f(i)) return false;
    return true;
  }
  bool shared_with(unsigned live) {
    return all(
        [&](unsigned i) { return !rates_[i]->fallback() && clusters_[i]->live_nodes() == live; });
  }

 private:
  asio::io_context ctx_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_{ctx_.get_executor()};
  std::vector<std::unique_ptr<Cluster>> clusters_;
  std::vector<std::shared_ptr<LeasedRates>> rates_;
  std::thread thread_;
};

// Asks each limit in turn, as fast as a worker would (a short pause per
// round), for `run`: the times of the events admitted, per limit.
std::vector<std::vector<std::int64_t>> hammer(std::vector<RateLimit>& limits,
                                              std::chrono::milliseconds run) {
  std::vector<std::vector<std::int64_t>> admitted(limits.size());
  const auto end = now_us() + run.count() * 1000;
  for (auto t = now_us(); t < end; t = now_us()) {
    for (std::size_t i = 0; i < limits.size(); ++i)
      if (limits[i].acquire(t) == 0) admitted[i].push_back(t);
    std::this_thread::sleep_for(100us);
  }
  return admitted;
}

// The most events in any window of `window_us`.
std::size_t max_in_window(std::vector<std::int64_t> times, std::int64_t window_us) {
  std::sort(times.begin(), times.end());
  std::size_t best = 0;
  for (std::size_t lo = 0, hi = 0; hi < times.size(); ++hi) {
    while (times[hi] - times[lo] >= window_us) ++lo;
    best = std::max(best, hi - lo + 1);
  }
  return best;
}

std::vector<std::int64_t> merged(const std::vector<std::vector<std::int64_t>>& per_node) {
  std::vector<std::int64_t> all;
  for (const auto& v : per_node) all.insert(all.end(), v.begin(), v.end());
  return all;
}

constexpr double kRate = 200;
constexpr std::uint32_t kBurst = 10;
// The promise: burst + (window + token life) × rate (leased_rates.hpp).
constexpr double kTokenLife = LeasedRates::kTokenLifeMs / 1000.0;

TEST(LeasedRates, ThreeNodesShareOneLimit) {
  testing::RedisServer redis;
  Nodes nodes(redis, 3);
  ASSERT_TRUE(wait_until([&] { return nodes.shared_with(3); }));
  std::vector<RateLimit> limits;
  for (unsigned i = 0; i < 3; ++i)
    limits.emplace_back(kRate, kBurst, &nodes.rates(i), RateKind::MessageRate, "dest|x.test");
  ASSERT_TRUE(limits[0].shared());
  const auto admitted = hammer(limits, 2000ms);
  const auto all = merged(admitted);
  const double seconds = 2.0;
  EXPECT_LE(all.size(), kBurst + (seconds + kTokenLife) * kRate);
  EXPECT_GE(all.size(), 0.85 * kRate * seconds);
  for (const std::int64_t w : {100'000, 500'000, 1'000'000}) {
    const double bound = kBurst + (w / 1e6 + kTokenLife) * kRate;
    EXPECT_LE(max_in_window(all, w), bound) << "window " << w << " µs";
  }
  // Every node got tokens from Redis; none went by a local share beyond
  // the first round trip.
  const auto& st = nodes.rates(0).stats(RateKind::MessageRate);
  std::uint64_t shared = 0, local = 0, refills = 0;
  for (unsigned i = 0; i < 3; ++i) {
    const auto& s = nodes.rates(i).stats(RateKind::MessageRate);
    shared += s.granted_shared;
    local += s.granted_local;
    refills += s.refills - s.refills_refused;
    EXPECT_GT(admitted[i].size(), 0u) << "node " << i;
  }
  EXPECT_GT(shared, 0.9 * all.size());
  EXPECT_LE(local, 3u * (kBurst / 3 + 1));
  // Leases: far fewer granting round trips than events (kLeaseSeconds of the rate each).
  EXPECT_LT(refills * 2.0, all.size());
  EXPECT_GT(st.refill_us.load(), 0u);
  std::printf(
      "three nodes, %.0f/s burst %u over %.1f s: %zu events (%.1f%% of rate x time), "
      "%llu refills; max in 100 ms: %zu\n",
      kRate, kBurst, seconds, all.size(), 100.0 * all.size() / (kRate * seconds),
      static_cast<unsigned long long>(refills), max_in_window(all, 100'000));
}

TEST(LeasedRates, RedisKilledMeansEachNodeItsShareThenSharedAgain) {
  testing::RedisServer redis;
  Nodes nodes(redis, 3);
  ASSERT_TRUE(wait_until([&] { return nodes.shared_with(3); }));
  std::vector<RateLimit> limits;
  for (unsigned i = 0; i < 3; ++i)
    limits.emplace_back(kRate, kBurst, &nodes.rates(i), RateKind::SiteRate, "src|gmail");
  hammer(limits, 300ms);  // leased

  redis.kill();
  // Checks go on while Redis is gone: the first failed refill or missed
  // heartbeats make the limits local, within about a second.
  const auto t0 = std::chrono::steady_clock::now();
  while (!nodes.all([&](unsigned i) { return nodes.rates(i).fallback(); })) {
    ASSERT_LT(std::chrono::steady_clock::now() - t0, 3s) << "no fallback";
    hammer(limits, 20ms);
  }
  EXPECT_TRUE(wait_until(
      [&] { return nodes.all([&](unsigned i) { return !nodes.cluster(i).redis_up(); }); }));
  // Each node at its share: rate / 3 (the live count the heartbeats last saw).
  for (unsigned i = 0; i < 3; ++i) EXPECT_EQ(nodes.rates(i).live_nodes(), 3u);
  hammer(limits, 200ms);  // the local buckets settle
  const auto during = hammer(limits, 1500ms);
  for (unsigned i = 0; i < 3; ++i) {
    const double share = kRate / 3;
    EXPECT_LE(during[i].size(), kBurst / 3 + share * 1.5 + 1) << "node " << i;
    EXPECT_GE(during[i].size(), 0.85 * share * 1.5) << "node " << i;
  }
  EXPECT_GT(nodes.rates(0).fallback_seconds(), 1.0);

  redis.start();  // a fresh Redis on the same port
  ASSERT_TRUE(wait_until([&] { return nodes.shared_with(3); }, 10000ms));
  std::uint64_t before = 0;
  for (unsigned i = 0; i < 3; ++i)
    before += nodes.rates(i).stats(RateKind::SiteRate).granted_shared;
  const auto after = merged(hammer(limits, 1500ms));
  std::uint64_t shared = 0;
  for (unsigned i = 0; i < 3; ++i)
    shared += nodes.rates(i).stats(RateKind::SiteRate).granted_shared;
  EXPECT_GT(shared - before, 0.9 * after.size());
  EXPECT_LE(after.size(), kBurst + (1.5 + kTokenLife) * kRate);
  EXPECT_GE(after.size(), 0.85 * kRate * 1.5);
}

TEST(LeasedRates, UnspentTokensGoBackToRedis) {
  testing::RedisServer redis;
  Nodes nodes(redis, 1);
  ASSERT_TRUE(wait_until([&] { return nodes.shared_with(1); }));
  const auto& st = nodes.rates(0).stats(RateKind::MessageRate);
  // 40/s: leases of 2 tokens (50 ms of the rate), each living 100 ms.
  RateLimit limit(40, 20, &nodes.rates(0), RateKind::MessageRate, "dest|back.test");
  EXPECT_EQ(limit.acquire(now_us()), 0);  // the local share; the lease pays it
  ASSERT_TRUE(wait_until([&] { return st.refills.load() >= 1; }));
  // One token left, never spent: back to Redis within its life and a watch period.
  ASSERT_TRUE(wait_until([&] { return st.returned.load() == 1; }, 2000ms));
  EXPECT_EQ(st.granted_shared.load(), 0u);

  // Leaving gives back what is held at once, and says when Redis answered.
  ASSERT_TRUE(wait_until([&] {
    limit.acquire(now_us());
    return st.granted_shared.load() >= 1 && limit.wait_us(now_us()) == 0;
  }));
  const auto before = st.returned.load();
  std::atomic<bool> answered{false};
  nodes.on_thread([&] {
    const std::shared_ptr<void> until(nullptr, [&answered](void*) { answered = true; });
    nodes.rates(0).leave(until);
  });
  EXPECT_TRUE(wait_until([&] { return answered.load(); }, 1000ms));
  EXPECT_GT(st.returned.load(), before);
}

TEST(LeasedRates, RatelimitCheckIsSharedAndAdmitsANewKeyAtOnce) {
  testing::RedisServer redis;
  Nodes nodes(redis, 2);
  ASSERT_TRUE(wait_until([&] { return nodes.shared_with(2); }));
  ratelimit::SharedLimiter a, b;
  a.set_backend(&nodes.rates(0));
  b.set_backend(&nodes.rates(1));
  // A key new to the node: admitted by its share while the first lease is asked.
  EXPECT_TRUE(a.check("sender:x@y", 50, 5, now_us()));
  EXPECT_TRUE(b.check("sender:x@y", 50, 5, now_us()));
  std::size_t admitted = 2;
  const auto end = now_us() + 2'000'000;
  for (auto t = now_us(); t < end; t = now_us()) {
    admitted += a.check("sender:x@y", 50, 5, t);
    admitted += b.check("sender:x@y", 50, 5, t);
    std::this_thread::sleep_for(200us);
  }
  EXPECT_LE(admitted, 5 + (2.0 + kTokenLife) * 50 + 2);
  EXPECT_GE(admitted, 0.85 * 50 * 2.0);
  EXPECT_GT(nodes.rates(0).stats(RateKind::Lua).granted_shared.load(), 0u);
  EXPECT_GT(nodes.rates(1).stats(RateKind::Lua).refused.load(), 0u);
}

TEST(LeasedRates, WithoutRedisEveryLimitIsLocalAtTheNodesShare) {
  const auto port = testing::free_loopback_port();  // nothing listens there
  const ClusterConfig c =
      testing::node_config("redis://127.0.0.1:" + std::to_string(port), "alone");
  asio::io_context ctx;
  Cluster cluster(c, ctx, [] { return 0; });
  auto rates = std::make_shared<LeasedRates>(c, ctx, cluster);
  cluster.start();
  rates->start();
  ctx.run_for(300ms);
  EXPECT_TRUE(rates->fallback());
  RateLimit limit(10, 2, rates.get(), RateKind::ConnectionRate, "k");
  const auto t = now_us();
  EXPECT_EQ(limit.acquire(t), 0);
  EXPECT_EQ(limit.acquire(t), 0);
  EXPECT_NEAR(limit.acquire(t), 100'000, 1);  // one node: the whole rate, 10/s
  rates->stop();
  cluster.stop();
  ctx.run_for(50ms);
  EXPECT_EQ(limit.acquire(t + 100'000), 0);  // stopped: still local
}

}  // namespace
}  // namespace mailgate::cluster
