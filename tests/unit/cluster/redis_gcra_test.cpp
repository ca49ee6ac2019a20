// Tests of cluster/redis_gcra against a real redis-server: two links (two
// nodes) drawing from one key stay within burst + window × rate and get at
// least 85% of the rate; n events at once; a refused request's wait; the key
// expires; events given back can be granted again, never past the burst;
// a key holding garbage (text, another type, a time far ahead) is left alone
// by a give-back and taken as a full bucket by a take; Redis gone is an
// error that grants nothing.
#include "cluster/redis_gcra.hpp"

#include <gtest/gtest.h>

#include <asio/io_context.hpp>
#include <chrono>
#include <functional>

#include "unit/cluster/redis_server.hpp"
#include "unit/cluster/run_until.hpp"

namespace mailgate::cluster {
namespace {

using namespace std::chrono_literals;
using testing::run_until;

TEST(RedisGcra, TwoNodesShareOneLimit) {
  testing::RedisServer redis;
  asio::io_context ctx;
  RedisLink l1(ctx, "127.0.0.1", redis.port(), 1000ms), l2(ctx, "127.0.0.1", redis.port(), 1000ms);
  RedisGcra g1(l1), g2(l2);
  constexpr double kRate = 100;
  constexpr std::uint32_t kBurst = 5;
  int granted = 0, asked = 0;
  bool stop = false;
  std::function<void(RedisGcra&)> loop = [&](RedisGcra& g) {
    if (stop) return;
    ++asked;
    g.acquire("shared", kRate, kBurst, 1, [&, gp = &g](const GcraAnswer& a) {
      EXPECT_TRUE(a.error.empty()) << a.error;
      if (a.granted) ++granted;
      loop(*gp);
    });
  };
  const auto t0 = std::chrono::steady_clock::now();
  loop(g1);
  loop(g2);
  run_until(ctx, [&] { return std::chrono::steady_clock::now() - t0 >= 1500ms; });
  stop = true;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  run_until(ctx, [&] { return l1.in_flight() == 0 && l2.in_flight() == 0; });
  EXPECT_GT(asked, granted * 2) << "the nodes asked faster than the rate";
  EXPECT_LE(granted, kBurst + kRate * seconds + 1);
  EXPECT_GE(granted, 0.85 * kRate * 1.5);
}

TEST(RedisGcra, NEventsAtOnceThenTheWait) {
  testing::RedisServer redis;
  asio::io_context ctx;
  RedisLink link(ctx, "127.0.0.1", redis.port(), 1000ms);
  RedisGcra g(link);
  GcraAnswer first, second;
  bool d1 = false, d2 = false;
  g.acquire("k", 10, 5, 5, [&](const GcraAnswer& a) {
    first = a;
    d1 = true;
    g.acquire("k", 10, 5, 1, [&](const GcraAnswer& b) {
      second = b;
      d2 = true;
    });
  });
  run_until(ctx, [&] { return d1 && d2; });
  EXPECT_TRUE(first.granted);
  EXPECT_FALSE(second.granted);
  EXPECT_GT(second.wait_us, 50'000);  // one interval is 100 ms
  EXPECT_LE(second.wait_us, 100'000);
  const auto ttl = std::stoll(redis.run("PTTL mailgate:rate:k"));
  EXPECT_GT(ttl, 0);
  EXPECT_LE(ttl, 501);  // full again 5 intervals later
}

// One call, run to its answer.
GcraAnswer ask(asio::io_context& ctx, const std::function<void(RedisGcra::Callback)>& call) {
  GcraAnswer out;
  bool done = false;
  call([&](const GcraAnswer& a) {
    out = a;
    done = true;
  });
  run_until(ctx, [&] { return done; });
  return out;
}

TEST(RedisGcra, GivenBackEventsAreGrantedAgainNeverPastTheBurst) {
  testing::RedisServer redis;
  asio::io_context ctx;
  RedisLink link(ctx, "127.0.0.1", redis.port(), 1000ms);
  RedisGcra g(link);
  auto take = [&](std::uint32_t n) {
    return ask(ctx, [&](RedisGcra::Callback cb) { g.acquire("k", 1, 4, n, std::move(cb)); });
  };
  auto give = [&](std::uint32_t n) {
    return ask(ctx, [&](RedisGcra::Callback cb) { g.give_back("k", 1, n, std::move(cb)); });
  };
  EXPECT_TRUE(take(4).granted);  // the whole burst (1/s: nothing refills meanwhile)
  EXPECT_FALSE(take(1).granted);
  EXPECT_TRUE(give(2).granted);  // two unspent
  EXPECT_TRUE(take(2).granted);  // theirs again
  EXPECT_FALSE(take(1).granted);
  // More given back than was taken: the bucket is full, no fuller.
  EXPECT_TRUE(give(100).granted);
  EXPECT_TRUE(take(4).granted);
  EXPECT_FALSE(take(1).granted);
  // Garbage in the key (anything with Redis access may write it): left as is.
  redis.run("SET mailgate:rate:k garbage");
  EXPECT_TRUE(give(1).granted);
  EXPECT_EQ(redis.run("GET mailgate:rate:k"), "garbage");
  // ... and taken as a full bucket (overwritten), never a script error or a
  // limit stuck waiting: text, another type, a time far ahead.
  EXPECT_TRUE(take(4).granted);
  EXPECT_FALSE(take(1).granted);
  redis.run("DEL mailgate:rate:k");
  redis.run("HSET mailgate:rate:k a b");
  EXPECT_TRUE(give(1).granted);
  GcraAnswer wrong_type = take(4);
  EXPECT_TRUE(wrong_type.granted) << wrong_type.error;
  EXPECT_FALSE(take(1).granted);
  redis.run("SET mailgate:rate:k 99999999999999999");
  EXPECT_TRUE(take(4).granted);
  EXPECT_FALSE(take(1).granted);
}

TEST(RedisGcra, RedisGoneIsAnErrorThatGrantsNothing) {
  asio::io_context ctx;
  RedisLink link(ctx, "127.0.0.1", testing::free_loopback_port(), 200ms);
  RedisGcra g(link);
  GcraAnswer a;
  bool done = false;
  g.acquire("k", 10, 5, 1, [&](const GcraAnswer& r) {
    a = r;
    done = true;
  });
  run_until(ctx, [&] { return done; });
  ASSERT_TRUE(done);
  EXPECT_FALSE(a.granted);
  EXPECT_FALSE(a.error.empty());
  const auto back =
      ask(ctx, [&](RedisGcra::Callback cb) { g.give_back("k", 10, 1, std::move(cb)); });
  EXPECT_FALSE(back.granted);
  EXPECT_FALSE(back.error.empty());
}

}  // namespace
}  // namespace mailgate::cluster
