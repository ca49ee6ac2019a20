// Tests of cluster/cluster_config (the redis URL grammar, the heartbeat period)
// and cluster/redis_health (three misses in a row mean down).
#include <gtest/gtest.h>

#include "cluster/cluster_config.hpp"
#include "cluster/redis_health.hpp"

namespace mailgate::cluster {
namespace {

TEST(RedisUrl, AcceptsIpLiteralsWithOrWithoutPort) {
  auto a = parse_redis_url("redis://127.0.0.1:6380");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 6380);
  a = parse_redis_url("redis://10.0.0.5");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->port, 6379);
  a = parse_redis_url("redis://[::1]:7000");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "::1");
}

TEST(RedisUrl, RefusesNamesPasswordsSchemesAndJunk) {
  for (const char* bad : {"", "127.0.0.1:6379", "rediss://127.0.0.1:6379", "redis://localhost:6379",
                          "redis://:pw@127.0.0.1:6379", "redis://127.0.0.1:6379/0",
                          "redis://127.0.0.1:0", "redis://127.0.0.1:99999", "redis://"})
    EXPECT_FALSE(parse_redis_url(bad)) << bad;
}

TEST(ClusterConfig, HeartbeatIsATenthOfTheLeaseWithinBounds) {
  ClusterConfig c;
  c.lease_ttl = config::Duration(10000);
  EXPECT_EQ(c.heartbeat_period().count(), 1000);
  c.lease_ttl = config::Duration(3000);
  EXPECT_EQ(c.heartbeat_period().count(), 300);
  c.lease_ttl = config::Duration(60000);
  EXPECT_EQ(c.heartbeat_period().count(), 1000);
  c.lease_ttl = config::Duration(500);
  EXPECT_EQ(c.heartbeat_period().count(), 100);
}

TEST(RedisHealth, StartsDownUpOnFirstAnswerDownAfterThreeMissesInARow) {
  RedisHealth h;
  EXPECT_FALSE(h.up());
  EXPECT_EQ(h.record(true), RedisHealth::Change::Up);
  EXPECT_EQ(h.record(false), RedisHealth::Change::None);
  EXPECT_EQ(h.record(false), RedisHealth::Change::None);
  EXPECT_EQ(h.record(true), RedisHealth::Change::None);  // the run of misses is broken
  EXPECT_TRUE(h.up());
  EXPECT_EQ(h.record(false), RedisHealth::Change::None);
  EXPECT_EQ(h.record(false), RedisHealth::Change::None);
  EXPECT_EQ(h.record(false), RedisHealth::Change::Down);
  EXPECT_FALSE(h.up());
  EXPECT_EQ(h.record(false), RedisHealth::Change::None);  // reported once per outage
  EXPECT_EQ(h.failures(), 6u);
  EXPECT_EQ(h.record(true), RedisHealth::Change::Up);
}

TEST(RedisHealth, NeverReachedIsReportedDownOnce) {
  RedisHealth h;
  EXPECT_EQ(h.record(false), RedisHealth::Change::None);
  EXPECT_EQ(h.record(false), RedisHealth::Change::None);
  EXPECT_EQ(h.record(false), RedisHealth::Change::Down);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(h.record(false), RedisHealth::Change::None);
}

}  // namespace
}  // namespace mailgate::cluster
