// Tests of cluster/connection_leases against a real redis-server: nodes
// share one limit (acquire, release, refusal), renewals keep leases alive
// past their TTL, a node that stops renewing frees its slots within the
// TTL, many acquirers never hold more than max together, and with Redis
// stalled each node falls back to its share (max / live nodes) and writes
// its leases back when Redis answers again; a node holding more than its
// share while another waits is told to give connections back, one per
// renewal, down to its share.
#include "cluster/connection_leases.hpp"

#include <gtest/gtest.h>

#include <asio/io_context.hpp>
#include <chrono>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "cluster/cluster.hpp"
#include "unit/cluster/node_config.hpp"
#include "unit/cluster/redis_server.hpp"
#include "unit/cluster/run_until.hpp"

namespace mailgate::cluster {
namespace {

using namespace std::chrono_literals;
using testing::run_until;

ClusterConfig config_for(const testing::RedisServer& redis, const std::string& node) {
  return testing::node_config(redis.url(), node);
}

// One node: its heartbeats and its leases, on the test's io_context.
struct Node {
  Cluster cluster;
  ConnectionLeases leases;
  Node(const testing::RedisServer& redis, const std::string& name, asio::io_context& ctx)
      : cluster(config_for(redis, name), ctx, [] { return 0; }),
        leases(config_for(redis, name), cluster, cluster.link(), ctx) {
    cluster.start();
    leases.start();
  }
  ~Node() { stop(); }
  void stop() {
    leases.stop();
    cluster.stop();
  }
};

// Asks until granted or `limit` passes.
bool acquire(asio::io_context& ctx, ConnectionLeases& l, const std::string& key, unsigned max,
             std::chrono::milliseconds limit = 2000ms) {
  bool got = false;
  return run_until(
      ctx,
      [&] {
        if (!got) got = l.try_acquire(key, max).granted;
        return got;
      },
      limit);
}

std::size_t zcard(testing::RedisServer& redis, const std::string& key) {
  return std::stoul(redis.run(("ZCARD mailgate:conn:" + key).c_str()));
}

TEST(ConnectionLeases, NodesShareOneLimit) {
  testing::RedisServer redis;
  asio::io_context ctx;
  Node a(redis, "gw-a", ctx), b(redis, "gw-b", ctx);
  // Nothing is granted before Redis is known.
  EXPECT_FALSE(a.leases.try_acquire("dest:x", 3).granted);
  ASSERT_TRUE(run_until(ctx, [&] { return a.leases.shared() && b.leases.shared(); }));

  ASSERT_TRUE(acquire(ctx, a.leases, "dest:x", 3));
  ASSERT_TRUE(acquire(ctx, a.leases, "dest:x", 3));
  ASSERT_TRUE(acquire(ctx, b.leases, "dest:x", 3));
  EXPECT_EQ(zcard(redis, "dest:x"), 3u);
  // Full: b is refused (and asks Redis again only after a backoff).
  EXPECT_FALSE(acquire(ctx, b.leases, "dest:x", 3, 400ms));
  EXPECT_GE(b.leases.stats().refused, 1u);
  // a closes one connection: b gets the slot.
  a.leases.release("dest:x");
  ASSERT_TRUE(acquire(ctx, b.leases, "dest:x", 3));
  EXPECT_EQ(a.leases.stats().held, 1u);
  EXPECT_EQ(b.leases.stats().held, 2u);
  EXPECT_EQ(zcard(redis, "dest:x"), 3u);
  // Another key is another limit.
  ASSERT_TRUE(acquire(ctx, a.leases, "site:/yahoo", 1));
  EXPECT_FALSE(acquire(ctx, b.leases, "site:/yahoo", 1, 300ms));
}

TEST(ConnectionLeases, RenewalsKeepLeasesAliveAndADeadNodesExpire) {
  testing::RedisServer redis;
  asio::io_context ctx;
  Node a(redis, "gw-a", ctx), b(redis, "gw-b", ctx);
  ASSERT_TRUE(run_until(ctx, [&] { return a.leases.shared() && b.leases.shared(); }));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(acquire(ctx, a.leases, "dest:x", 3));
  // 2.5 lease TTLs later a's leases are still there (renewed every TTL/3).
  run_until(
      ctx, [] { return false; }, 2500ms);
  EXPECT_EQ(zcard(redis, "dest:x"), 3u);
  EXPECT_EQ(a.leases.stats().renew_failures, 0u);
  EXPECT_FALSE(acquire(ctx, b.leases, "dest:x", 3, 200ms));

  // a dies (no renewals, no releases): its slots are free within the TTL.
  a.stop();
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(acquire(ctx, b.leases, "dest:x", 3, 3000ms));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1500ms);
  ASSERT_TRUE(acquire(ctx, b.leases, "dest:x", 3));
  ASSERT_TRUE(acquire(ctx, b.leases, "dest:x", 3));
  EXPECT_EQ(b.leases.stats().expired, 3u);
  EXPECT_EQ(zcard(redis, "dest:x"), 3u);
}

TEST(ConnectionLeases, ConcurrentAcquirersNeverHoldMoreThanMax) {
  testing::RedisServer redis;
  asio::io_context ctx;
  std::vector<std::unique_ptr<Node>> nodes;
  for (const char* n : {"gw-a", "gw-b", "gw-c"})
    nodes.push_back(std::make_unique<Node>(redis, n, ctx));
  ASSERT_TRUE(run_until(ctx, [&] {
    for (auto& n : nodes)
      if (!n->leases.shared()) return false;
    return true;
  }));
  std::mt19937 rng(7);
  std::size_t most = 0, grants = 0;
  // Each node asks for up to 4 at once and keeps or drops them at random.
  run_until(
      ctx,
      [&] {
        std::size_t held = 0;
        for (auto& n : nodes) {
          if (n->leases.try_acquire("dest:busy", 4, 4).granted) ++grants;
          if (rng() % 3 == 0) n->leases.release("dest:busy");
          const auto st = n->leases.stats();
          held += st.held;  // and the spares: granted slots not used yet
          for (const auto& k : st.keys) held += k.spare;
        }
        most = std::max(most, held);
        EXPECT_LE(held, 4u);
        return false;
      },
      1500ms);
  EXPECT_EQ(most, 4u);  // the limit was reached, never passed
  EXPECT_GT(grants, 10u);
  EXPECT_LE(zcard(redis, "dest:busy"), 4u);
}

TEST(ConnectionLeases, RedisDownMeansTheLocalShareThenLeasesGoBack) {
  testing::RedisServer redis;
  asio::io_context ctx;
  Node a(redis, "gw-a", ctx), b(redis, "gw-b", ctx);
  ASSERT_TRUE(run_until(
      ctx, [&] { return a.leases.shared() && b.leases.shared() && a.cluster.live_nodes() == 2; }));
  ASSERT_TRUE(acquire(ctx, a.leases, "dest:x", 5));
  redis.pause();  // stalled: three missed heartbeats mean down
  ASSERT_TRUE(run_until(
      ctx, [&] { return !a.leases.shared(); }, 3000ms));
  // Two live nodes last seen: a's share of 5 is 3, the lease it holds included.
  ASSERT_TRUE(acquire(ctx, a.leases, "dest:x", 5));
  ASSERT_TRUE(acquire(ctx, a.leases, "dest:x", 5));
  EXPECT_FALSE(acquire(ctx, a.leases, "dest:x", 5, 300ms));
  EXPECT_EQ(a.leases.stats().local_grants, 2u);
  a.leases.release("dest:x");
  ASSERT_TRUE(acquire(ctx, a.leases, "dest:x", 5));

  redis.resume();
  ASSERT_TRUE(run_until(
      ctx, [&] { return a.leases.shared() && b.leases.shared(); }, 3000ms));
  // The three connections a holds are leased in Redis again.
  EXPECT_EQ(zcard(redis, "dest:x"), 3u);
  ASSERT_TRUE(acquire(ctx, b.leases, "dest:x", 5));
  ASSERT_TRUE(acquire(ctx, b.leases, "dest:x", 5));
  EXPECT_FALSE(acquire(ctx, b.leases, "dest:x", 5, 300ms));
}

// Asks take_yield until it says yes or `limit` passes.
bool yields(asio::io_context& ctx, ConnectionLeases& l, const std::string& key, unsigned max,
            std::chrono::milliseconds limit) {
  bool told = false;
  return run_until(
      ctx,
      [&] {
        if (!told) told = l.take_yield(key, max);
        return told;
      },
      limit);
}

TEST(ConnectionLeases, ANodeAboveItsShareHandsSlotsToAWaitingNode) {
  testing::RedisServer redis;
  asio::io_context ctx;
  Node a(redis, "gw-a", ctx), b(redis, "gw-b", ctx);
  ASSERT_TRUE(run_until(ctx, [&] {
    return a.leases.shared() && b.leases.shared() && a.cluster.live_nodes() == 2 &&
           b.cluster.live_nodes() == 2;
  }));
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(acquire(ctx, a.leases, "dest:x", 4));
  // Nobody waits: a keeps all four (renewals come and go).
  EXPECT_FALSE(yields(ctx, a.leases, "dest:x", 4, 500ms));

  // b is refused: it is written as a waiter, and a's next renewal tells it
  // to retire one connection (once per renewal, not at every message).
  EXPECT_FALSE(acquire(ctx, b.leases, "dest:x", 4, 300ms));
  EXPECT_EQ(redis.run("ZCARD mailgate:connwait:dest:x"), "1");
  ASSERT_TRUE(yields(ctx, a.leases, "dest:x", 4, 1000ms));
  EXPECT_FALSE(a.leases.take_yield("dest:x", 4));
  a.leases.release("dest:x");
  // a asks for no lease beyond its share (2) while b waits.
  EXPECT_FALSE(a.leases.try_acquire("dest:x", 4).granted);
  ASSERT_TRUE(acquire(ctx, b.leases, "dest:x", 4, 1000ms));

  // b still wants more: a gives back one more, then none (it is at its share).
  EXPECT_FALSE(acquire(ctx, b.leases, "dest:x", 4, 300ms));
  ASSERT_TRUE(yields(ctx, a.leases, "dest:x", 4, 1000ms));
  a.leases.release("dest:x");
  ASSERT_TRUE(acquire(ctx, b.leases, "dest:x", 4, 1000ms));
  EXPECT_FALSE(acquire(ctx, b.leases, "dest:x", 4, 300ms));
  EXPECT_FALSE(yields(ctx, a.leases, "dest:x", 4, 800ms));
  EXPECT_EQ(a.leases.stats().held, 2u);
  EXPECT_EQ(b.leases.stats().held, 2u);
  EXPECT_EQ(a.leases.stats().yielded, 2u);
  EXPECT_EQ(zcard(redis, "dest:x"), 4u);
  // b stops asking: its waiter entry is gone within the lease TTL.
  EXPECT_TRUE(run_until(
      ctx, [&] { return redis.run("ZCARD mailgate:connwait:dest:x") == "0"; }, 2500ms));
  // Garbage of the wrong type where the waiters live: cleaned, renewals go on.
  redis.run("SET mailgate:connwait:dest:x garbage");
  EXPECT_FALSE(acquire(ctx, b.leases, "dest:x", 4, 300ms));
  run_until(
      ctx, [] { return false; }, 800ms);
  EXPECT_EQ(a.leases.stats().renew_failures, 0u);
  EXPECT_EQ(redis.run("TYPE mailgate:connwait:dest:x"), "zset");
}

}  // namespace
}  // namespace mailgate::cluster
