// Tests of cluster/shared_suppression against a real redis-server: a change
// made on one node reaches the others through the change log (and never
// comes back to its own node), a node started later catches up by a full
// scan and sends what only it had, a node whose version the log no longer
// reaches catches up again, and changes made while Redis is stalled are
// queued and pushed when it answers.
#include "cluster/shared_suppression.hpp"

#include <gtest/gtest.h>

#include <asio/io_context.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <string>

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

// A node: heartbeats, the sync, and its list as a map (newer change wins).
struct Node {
  std::map<std::string, SuppressionChange> list;
  std::size_t applied = 0;
  Cluster cluster;
  SharedSuppression sync;
  Node(const testing::RedisServer& redis, const std::string& name, asio::io_context& ctx,
       std::map<std::string, SuppressionChange> initial = {})
      : list(std::move(initial)),
        cluster(config_for(redis, name), ctx, [] { return 0; }),
        sync(config_for(redis, name), cluster, cluster.link(), ctx, replica()) {
    cluster.start();
    sync.start();
  }
  ~Node() {
    sync.stop();
    cluster.stop();
  }
  SuppressionReplica replica() {
    SuppressionReplica r;
    r.apply = [this](const SuppressionChange& c) {
      ++applied;
      auto it = list.find(c.address);
      if (it != list.end() && it->second.ms > c.ms) return;
      if (c.removed)
        list.erase(c.address);
      else
        list[c.address] = c;
    };
    r.snapshot = [this] {
      std::vector<SuppressionChange> out;
      for (const auto& [a, c] : list) out.push_back(c);
      return out;
    };
    return r;
  }
  // A write through this node's list.
  void add(const std::string& a, std::int64_t ms) {
    list[a] = {false, a, "5.1.1", ms};
    sync.local_change(list[a]);
  }
  void remove(const std::string& a, std::int64_t ms) {
    list.erase(a);
    sync.local_change({true, a, "", ms});
  }
  bool has(const std::string& a) const { return list.count(a) > 0; }
};

TEST(SharedSuppression, ChangesReachTheOtherNodesWithinASecond) {
  testing::RedisServer redis;
  asio::io_context ctx;
  Node a(redis, "gw-a", ctx), b(redis, "gw-b", ctx), c(redis, "gw-c", ctx);
  ASSERT_TRUE(run_until(ctx, [&] { return a.cluster.redis_up() && c.cluster.redis_up(); }));
  a.add("x@example.com", 1000);
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(run_until(ctx, [&] { return b.has("x@example.com") && c.has("x@example.com"); }));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1000ms);
  EXPECT_EQ(b.list["x@example.com"].reason, "5.1.1");
  EXPECT_EQ(redis.run("HGET mailgate:suppress x@example.com"), "1000 5.1.1");

  // A removal from another node, newer: gone everywhere, a tombstone in Redis.
  b.remove("x@example.com", 2000);
  t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(run_until(ctx, [&] { return !a.has("x@example.com") && !c.has("x@example.com"); }));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1000ms);
  EXPECT_EQ(redis.run("HGET mailgate:suppress x@example.com"), "-2000");
  // An older addition loses: nothing is written or logged, and the node
  // that made it takes Redis's newer removal.
  c.add("x@example.com", 1500);
  ASSERT_TRUE(run_until(ctx, [&] { return !c.has("x@example.com"); }));
  EXPECT_EQ(c.sync.stats().pending, 0u);
  run_until(
      ctx, [] { return false; }, 500ms);
  EXPECT_EQ(redis.run("HGET mailgate:suppress x@example.com"), "-2000");
  EXPECT_FALSE(a.has("x@example.com"));
  // Nobody applied its own changes (a: b's removal only).
  EXPECT_EQ(a.sync.stats().applied, 1u);
}

TEST(SharedSuppression, ALateNodeCatchesUpAndSendsWhatOnlyItHad) {
  testing::RedisServer redis;
  asio::io_context ctx;
  Node a(redis, "gw-a", ctx);
  ASSERT_TRUE(run_until(ctx, [&] { return a.cluster.redis_up(); }));
  a.add("one@example.com", 1000);
  a.add("two@example.com", 1000);
  ASSERT_TRUE(run_until(ctx, [&] { return a.sync.stats().pushed == 2; }));
  // c restarts with its spool: an entry nobody else has, one older than Redis's.
  Node c(redis, "gw-c", ctx,
         {{"mine@example.com", {false, "mine@example.com", "local", 500}},
          {"two@example.com", {false, "two@example.com", "old", 10}}});
  ASSERT_TRUE(run_until(ctx, [&] {
    return c.has("one@example.com") && c.list["two@example.com"].ms == 1000 &&
           a.has("mine@example.com");
  }));
  EXPECT_GE(c.sync.stats().full_syncs, 1u);
  EXPECT_EQ(redis.run("HGET mailgate:suppress mine@example.com"), "500 local");
}

TEST(SharedSuppression, ANodeTheTrimmedLogNoLongerReachesScansAgain) {
  testing::RedisServer redis;
  asio::io_context ctx;
  Node a(redis, "gw-a", ctx), b(redis, "gw-b", ctx);
  ASSERT_TRUE(run_until(ctx, [&] { return a.cluster.redis_up() && b.cluster.redis_up(); }));
  a.add("first@example.com", 1000);
  ASSERT_TRUE(run_until(ctx, [&] { return b.has("first@example.com"); }));
  const auto scans = b.sync.stats().full_syncs;
  // The log loses everything b has read and more (as MAXLEN trimming would).
  redis.run("HSET mailgate:suppress late@example.com 2000");  // no reason
  redis.run("XADD mailgate:suppress:log * op a a other@example.com ms 2000 r x n gw-z");
  redis.run("XTRIM mailgate:suppress:log MAXLEN 0");
  redis.run("XADD mailgate:suppress:log * op a a other@example.com ms 2000 r x n gw-z");
  ASSERT_TRUE(run_until(ctx, [&] { return b.has("late@example.com"); }));
  EXPECT_GT(b.sync.stats().full_syncs, scans);
}

TEST(SharedSuppression, WritesMadeWhileRedisIsStalledArePushedWhenItAnswers) {
  testing::RedisServer redis;
  asio::io_context ctx;
  Node a(redis, "gw-a", ctx), b(redis, "gw-b", ctx);
  ASSERT_TRUE(run_until(ctx, [&] { return a.cluster.redis_up() && b.cluster.redis_up(); }));
  redis.pause();
  ASSERT_TRUE(run_until(
      ctx, [&] { return !a.cluster.redis_up(); }, 3000ms));
  a.add("down@example.com", 3000);
  run_until(
      ctx, [] { return false; }, 300ms);
  EXPECT_EQ(a.sync.stats().pending, 1u);
  EXPECT_TRUE(a.has("down@example.com"));  // the local list works meanwhile
  redis.resume();
  ASSERT_TRUE(run_until(
      ctx, [&] { return b.has("down@example.com"); }, 3000ms));
  EXPECT_EQ(a.sync.stats().pending, 0u);
}

}  // namespace
}  // namespace mailgate::cluster
