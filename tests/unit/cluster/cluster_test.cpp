// Tests of cluster/cluster against a real redis-server: heartbeats make
// every node see the others (live count, connections), a stalled Redis
// (SIGSTOP) is declared down after three missed heartbeats and up again
// after SIGCONT, and a node that stops beating is no longer live after
// lease_ttl.
#include "cluster/cluster.hpp"

#include <gtest/gtest.h>

#include <asio/io_context.hpp>
#include <chrono>
#include <functional>

#include "unit/cluster/node_config.hpp"
#include "unit/cluster/redis_server.hpp"
#include "unit/cluster/run_until.hpp"

namespace mailgate::cluster {
namespace {

using namespace std::chrono_literals;
using testing::run_until;

ClusterConfig config_for(const testing::RedisServer& redis, const char* node) {
  return testing::node_config(redis.url(), node);
}

TEST(Cluster, NodesSeeEachOtherThroughHeartbeats) {
  testing::RedisServer redis;
  asio::io_context ctx;
  Cluster a(config_for(redis, "gw-a"), ctx, [] { return 3; });
  Cluster b(config_for(redis, "gw-b"), ctx, [] { return 5; });
  a.start();
  b.start();
  ASSERT_TRUE(run_until(ctx, [&] { return a.live_nodes() == 2 && b.live_nodes() == 2; }));
  EXPECT_TRUE(a.redis_up());
  const auto s = a.status();
  ASSERT_EQ(s.nodes.size(), 2u);
  EXPECT_EQ(s.nodes[0].node, "gw-a");
  EXPECT_EQ(s.nodes[0].connections, 3u);
  EXPECT_EQ(s.nodes[1].node, "gw-b");
  EXPECT_EQ(s.nodes[1].connections, 5u);
  EXPECT_GT(s.latency_ms, 0);

  // b stops beating: after lease_ttl, a counts only itself (b is still listed).
  b.stop();
  ASSERT_TRUE(run_until(ctx, [&] { return a.live_nodes() == 1; }));
  const auto later = a.status();
  ASSERT_EQ(later.nodes.size(), 2u);
  EXPECT_FALSE(later.nodes[1].live);
  a.stop();
}

TEST(Cluster, AStalledRedisIsDownAfterThreeMissesAndUpAfterItAnswers) {
  testing::RedisServer redis;
  asio::io_context ctx;
  Cluster a(config_for(redis, "gw-a"), ctx, {});
  Cluster b(config_for(redis, "gw-b"), ctx, {});
  a.start();
  b.start();
  ASSERT_TRUE(run_until(ctx, [&] { return a.redis_up() && a.live_nodes() == 2; }));

  redis.pause();
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(run_until(ctx, [&] { return !a.redis_up(); }));
  // Three heartbeats of 100 ms, each missing its 50 ms deadline.
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1500ms);
  EXPECT_EQ(a.live_nodes(), 2u);  // the last count seen: the share stays stable
  EXPECT_GE(a.status().failures, 3u);
  EXPECT_FALSE(a.status().last_error.empty());

  redis.resume();
  ASSERT_TRUE(run_until(ctx, [&] { return a.redis_up(); }));
  a.stop();
  b.stop();
}

TEST(Cluster, StartsDownWhenRedisIsNotThere) {
  ClusterConfig c;
  c.redis = "redis://127.0.0.1:" + std::to_string(testing::free_loopback_port());
  c.node = "alone";
  c.lease_ttl = config::Duration(1000);
  asio::io_context ctx;
  Cluster a(c, ctx, {});
  a.start();
  ASSERT_TRUE(run_until(ctx, [&] { return a.status().failures >= 3; }));
  EXPECT_FALSE(a.redis_up());
  EXPECT_EQ(a.live_nodes(), 1u);
  a.stop();
}

}  // namespace
}  // namespace mailgate::cluster
