// Unit tests for ratelimit/gcra and ratelimit/shared_limiter.
#include <gtest/gtest.h>

#include <functional>
#include <string_view>

#include <atomic>
#include <thread>
#include <vector>

#include "ratelimit/gcra.hpp"
#include "ratelimit/shared_limiter.hpp"

namespace mailgate::ratelimit {
namespace {

TEST(Gcra, UnlimitedAlwaysAdmits) {
  Gcra g;
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(g.acquire(0), 0);
}

TEST(Gcra, BurstOneSpacesEvents) {
  Gcra g(20, 1);  // one every 50 ms
  EXPECT_EQ(g.acquire(0), 0);
  EXPECT_EQ(g.acquire(0), 50'000);
  EXPECT_EQ(g.acquire(49'999), 1);
  EXPECT_EQ(g.acquire(50'000), 0);
}

TEST(Gcra, BurstAdmitsBackToBackThenRate) {
  Gcra g(10, 5);  // 5 at once, then one per 100 ms
  for (int i = 0; i < 5; ++i) EXPECT_EQ(g.acquire(1'000'000), 0) << i;
  EXPECT_GT(g.acquire(1'000'000), 0);
  EXPECT_EQ(g.acquire(1'100'000), 0);
  EXPECT_GT(g.acquire(1'100'000), 0);
}

TEST(Gcra, AdmittedOverAWindowIsBounded) {
  Gcra g(20, 3);
  int admitted = 0;
  for (std::int64_t t = 0; t <= 10'000'000; t += 1'000) admitted += g.acquire(t) == 0;
  // burst + window * rate = 3 + 10 s * 20/s
  EXPECT_LE(admitted, 203);
  EXPECT_GE(admitted, 200);
}

TEST(Gcra, RefusalCostsNothing) {
  Gcra g(1, 1);
  EXPECT_EQ(g.acquire(0), 0);
  for (int i = 0; i < 100; ++i) EXPECT_GT(g.acquire(500'000), 0);
  EXPECT_EQ(g.acquire(1'000'000), 0);
}

TEST(SharedLimiter, PerKeyLimits) {
  SharedLimiter l;
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(l.check("a", 1, 3, 0));
  EXPECT_FALSE(l.check("a", 1, 3, 0));
  EXPECT_TRUE(l.check("b", 1, 3, 0));
  EXPECT_TRUE(l.check("a", 1, 3, 1'000'000));
}

TEST(SharedLimiter, IdleKeysAreDroppedWhenFull) {
  SharedLimiter l(4);
  auto admit_all = [&](std::int64_t now) {
    int n = 0;
    for (int i = 0; i < 64; ++i) n += l.check(std::to_string(i), 1000, 1, now);
    return n;
  };
  const int first = admit_all(0);
  EXPECT_GT(first, 0);
  EXPECT_LE(l.size(), 16u * 4u);
  // Much later every key idled out: the same keys fit again, no growth.
  EXPECT_EQ(admit_all(10'000'000), first);
  EXPECT_LE(l.size(), 16u * 4u);
}

TEST(SharedLimiter, FullOfBusyKeysRefusesNewOnes) {
  SharedLimiter l(1);
  int admitted_new = 0;
  for (int i = 0; i < 100; ++i) admitted_new += l.check(std::to_string(i), 0.001, 1, 0);
  EXPECT_LE(admitted_new, 16);  // one per shard
}

TEST(SharedLimiter, ExactAcrossThreads) {
  SharedLimiter l;
  std::atomic<int> admitted{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 8; ++t) {
    ts.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) admitted += l.check("ip:127.0.0.1", 0.001, 50, 0);
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(admitted.load(), 50);
}

// Keys of one shard (SharedLimiter spreads keys by std::hash % 16).
std::string key_in_shard0(const std::string& prefix, int& n) {
  for (;;) {
    auto k = prefix + std::to_string(n++);
    if (std::hash<std::string_view>{}(k) % 16 == 0) return k;
  }
}

TEST(SharedLimiter, FullShardDoesNotSweepEverythingPerNewKey) {
  constexpr std::size_t kPerShard = 4096;
  SharedLimiter l(kPerShard);
  int n = 0;
  for (std::size_t i = 0; i < kPerShard; ++i)
    ASSERT_TRUE(l.check(key_in_shard0("busy-", n), 0.001, 1, 0));  // busy for 1000 s
  EXPECT_EQ(l.size(), kPerShard);
  const auto before = l.eviction_steps();
  constexpr int kNewKeys = 10'000;
  int admitted = 0;
  for (int i = 0; i < kNewKeys; ++i) admitted += l.check(key_in_shard0("new-", n), 0.001, 1, 1);
  EXPECT_EQ(admitted, 0);  // full of busy keys: refused
  EXPECT_EQ(l.size(), kPerShard);
  // Bounded work per new key; a sweep would have looked at kPerShard each time.
  const auto steps = l.eviction_steps() - before;
  EXPECT_LE(steps, kNewKeys * SharedLimiter::kEvictScan);
  EXPECT_LT(steps, kNewKeys * kPerShard / 100);
}

TEST(SharedLimiter, LeastRecentlyUsedIdleKeysMakeRoomBusyOnesStay) {
  SharedLimiter l(4);
  int n = 0;
  const auto fast1 = key_in_shard0("k", n), fast2 = key_in_shard0("k", n);
  const auto slow1 = key_in_shard0("k", n), slow2 = key_in_shard0("k", n);
  ASSERT_TRUE(l.check(fast1, 1000, 1, 0));  // idle after 1 ms
  ASSERT_TRUE(l.check(fast2, 1000, 1, 0));
  ASSERT_TRUE(l.check(slow1, 0.001, 1, 0));  // busy for 1000 s
  ASSERT_TRUE(l.check(slow2, 0.001, 1, 0));
  EXPECT_FALSE(l.check(key_in_shard0("k", n), 1000, 1, 10));  // full, nothing idle yet
  // A second later the two fast keys are idle: new keys take their places.
  EXPECT_TRUE(l.check(key_in_shard0("k", n), 1000, 1, 1'000'000));
  EXPECT_TRUE(l.check(key_in_shard0("k", n), 1000, 1, 1'000'000));
  EXPECT_EQ(l.size(), 4u);
  // The busy keys kept their state: still refused.
  EXPECT_FALSE(l.check(slow1, 0.001, 1, 1'000'000));
  EXPECT_FALSE(l.check(slow2, 0.001, 1, 1'000'000));
}

TEST(SharedLimiter, IdleKeysAreDroppedAsTheLimiterIsUsed) {
  SharedLimiter l;
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(l.check("once-" + std::to_string(i), 1000, 1, 0));
  EXPECT_EQ(l.size(), 1000u);
  // Later traffic on one key tidies the idle ones away, a few per call.
  for (int i = 0; i < 1000; ++i)
    l.check("steady-" + std::to_string(i % 16), 1e6, 1000, 1'000'000 + i);
  EXPECT_LT(l.size(), 1000u);
}

}  // namespace
}  // namespace mailgate::ratelimit
