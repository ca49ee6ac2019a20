// Tests of cluster/replicated_table against a real redis-server, on what
// Redis may hold that no node wrote: rows of a bad shape, oversized, binary,
// dated far ahead, refused by the table's check, and keys of the wrong type
// are counted and never applied, the good rows around them still are, and
// the sync recovers once the keys are sane again. Two tables on one Redis
// keep to their own keys. Changes queued while Redis is down survive a
// restart when the node saves them.
#include "cluster/replicated_table.hpp"

#include <gtest/gtest.h>

#include <asio/io_context.hpp>
#include <chrono>
#include <map>
#include <string>

#include "cluster/cluster.hpp"
#include "unit/cluster/node_config.hpp"
#include "unit/cluster/redis_server.hpp"
#include "unit/cluster/run_until.hpp"

namespace mailgate::cluster {
namespace {

using namespace std::chrono_literals;
using testing::run_until;

TableSpec spec(const std::string& name) {
  TableSpec s;
  s.name = name;
  s.what = name;
  s.hash_key = "t:" + name;
  s.log_key = "t:" + name + ":log";
  s.max_key = 64;
  s.max_value = 128;
  return s;
}

// A node with one table whose rows are "<name>@example.com" keys; `saved`
// plays its spool for queued changes (none: kept in memory only).
struct Node {
  std::map<std::string, TableRow> rows;
  std::map<std::uint64_t, std::string>* saved;
  Cluster cluster;
  ReplicatedTable table;
  Node(const testing::RedisServer& redis, const std::string& node, asio::io_context& ctx,
       const std::string& name = "things", std::map<std::uint64_t, std::string>* spool = nullptr)
      : saved(spool),
        cluster(testing::node_config(redis.url(), node), ctx, [] { return 0; }),
        table(spec(name), testing::node_config(redis.url(), node), cluster, cluster.link(), ctx,
              replica()) {
    cluster.start();
    table.start();
  }
  ~Node() {
    table.stop();
    cluster.stop();
  }
  TableReplica replica() {
    TableReplica r;
    r.apply = [this](const TableRow& c) {
      auto it = rows.find(c.key);
      if (it != rows.end() && it->second.ms > c.ms) return;
      if (c.removed)
        rows.erase(c.key);
      else
        rows[c.key] = c;
    };
    r.snapshot = [this] {
      std::vector<TableRow> out;
      for (const auto& [k, c] : rows) out.push_back(c);
      return out;
    };
    r.check = [](const TableRow& c) -> std::string {
      if (!c.key.ends_with("@example.com")) return "not an address of example.com";
      for (char ch : c.key)
        if (static_cast<unsigned char>(ch) < 0x21 || ch == 0x7f) return "control byte";
      return {};
    };
    if (saved) {
      r.save = [this](TableReplica::Saved rows) {
        for (auto& [seq, text] : rows) (*saved)[seq] = text;
      };
      r.forget = [this](std::vector<std::uint64_t> seqs) {
        for (auto seq : seqs) saved->erase(seq);
      };
      r.load = [this] { return TableReplica::Saved(saved->begin(), saved->end()); };
    }
    return r;
  }
  void add(const std::string& k, std::int64_t ms) {
    rows[k] = {false, k, "v", ms};
    table.local_change(rows[k]);
  }
  void remove(const std::string& k, std::int64_t ms) {
    rows.erase(k);
    table.local_change({true, k, "", ms});
  }
  bool has(const std::string& k) const { return rows.count(k) > 0; }
};

TEST(ReplicatedTable, RowsRedisShouldNotHoldAreRefusedAndCountedTheRestApplied) {
  testing::RedisServer redis;
  asio::io_context ctx;
  // Written straight into the hash before any node reads it.
  redis.run_args({"HSET", "t:things", "good@example.com", "1000 fine"});
  redis.run("HSET t:things gone@example.com -1000");
  redis.run_args({"HSET", "t:things", "notanaddress", "1000 x"});   // the check refuses
  redis.run_args({"HSET", "t:things", "n1@example.com", "abc x"});  // not a time
  redis.run_args({"HSET", "t:things", "n2@example.com", "-12x"});   // not a time
  redis.run_args({"HSET", "t:things", "n3@example.com", "99999999999999999 x"});  // 17 digits
  redis.run_args({"HSET", "t:things", "n4@example.com", "9999999999999 x"});  // year 2286: ahead
  redis.run_args({"HSET", "t:things", "big@example.com", "1000 " + std::string(1 << 20, 'x')});
  redis.run_args({"HSET", "t:things", std::string(200, 'k') + "@example.com", "1000 x"});
  redis.run_args({"HSET", "t:things", std::string("b\0\xff@example.com", 15), "1000 x"});
  Node a(redis, "gw-a", ctx);
  ASSERT_TRUE(run_until(ctx, [&] { return a.has("good@example.com"); }));
  ASSERT_TRUE(run_until(ctx, [&] { return a.table.stats().full_syncs >= 1; }));
  EXPECT_EQ(a.rows.size(), 1u);
  EXPECT_EQ(a.rows["good@example.com"].value, "fine");
  EXPECT_EQ(a.table.stats().refused, 8u);

  // The same through the change log, then a good entry after the bad ones.
  const auto refused = a.table.stats().refused;
  redis.run("XADD t:things:log * op a a x1@example.com ms soon r y n gw-z");
  redis.run("XADD t:things:log * op z a x2@example.com ms 2000 r y n gw-z");
  redis.run("XADD t:things:log * op a a x3 ms 2000 r y n gw-z");
  redis.run("XADD t:things:log * op a a x4@example.com ms 99999999999999 r y n gw-z");
  redis.run_args({"XADD", "t:things:log", "*", "op", "a", "a", "x5@example.com", "ms", "2000", "r",
                  std::string(1 << 20, 'r'), "n", "gw-z"});
  redis.run(
      "XADD t:things:log * op a a x6@example.com ms 2000 r y n gw-z f1 1 f2 2 f3 3 f4 4 f5 5");
  redis.run("XADD t:things:log * op a a later@example.com ms 2000 r y n gw-z");
  ASSERT_TRUE(run_until(ctx, [&] { return a.has("later@example.com"); }));
  EXPECT_EQ(a.rows.size(), 2u);
  EXPECT_EQ(a.table.stats().refused, refused + 6);
  EXPECT_EQ(a.table.stats().applied, 1u);
}

TEST(ReplicatedTable, KeysOfTheWrongTypeAreCountedAndTheTableStaysLocalUntilFixed) {
  testing::RedisServer redis;
  asio::io_context ctx;
  redis.run("SET t:things a-string");
  redis.run("SET t:things:log another-string");
  Node a(redis, "gw-a", ctx);
  ASSERT_TRUE(run_until(ctx, [&] { return a.cluster.redis_up(); }));
  ASSERT_TRUE(run_until(ctx, [&] { return a.table.stats().errors >= 2; }));
  a.add("mine@example.com", 1000);
  run_until(
      ctx, [] { return false; }, 300ms);
  EXPECT_TRUE(a.has("mine@example.com"));  // local meanwhile
  EXPECT_TRUE(a.cluster.redis_up());       // Redis's content is not its health
  // Fixed: the queued write goes, and a second node sees it.
  redis.run("DEL t:things t:things:log");
  Node b(redis, "gw-b", ctx);
  ASSERT_TRUE(run_until(ctx, [&] { return b.has("mine@example.com"); }));
  EXPECT_EQ(redis.run("HGET t:things mine@example.com"), "1000 v");
}

TEST(ReplicatedTable, TwoTablesKeepToTheirOwnKeys) {
  testing::RedisServer redis;
  asio::io_context ctx;
  Node a(redis, "gw-a", ctx, "one"), b(redis, "gw-b", ctx, "two"), c(redis, "gw-c", ctx, "one");
  ASSERT_TRUE(run_until(ctx, [&] { return a.cluster.redis_up() && b.cluster.redis_up(); }));
  a.add("x@example.com", 1000);
  ASSERT_TRUE(run_until(ctx, [&] { return c.has("x@example.com"); }));
  run_until(
      ctx, [] { return false; }, 300ms);
  EXPECT_FALSE(b.has("x@example.com"));
  EXPECT_EQ(redis.run("HGET t:one x@example.com"), "1000 v");
}

TEST(ReplicatedTable, QueuedRowsRoundTripAndRefuseGarbage) {
  TableRow back;
  ASSERT_TRUE(decode_row(encode_row({false, "a:b@example.com", "x y:z", 1234}), back));
  EXPECT_FALSE(back.removed);
  EXPECT_EQ(back.key, "a:b@example.com");
  EXPECT_EQ(back.value, "x y:z");
  EXPECT_EQ(back.ms, 1234);
  ASSERT_TRUE(decode_row(encode_row({true, "k", "", 5}), back));
  EXPECT_TRUE(back.removed);
  for (const char* bad : {"", "x1 1:k", "a 1:k", "a1 9:k", "a1 k", "a1x 1:k"})
    EXPECT_FALSE(decode_row(bad, back)) << bad;
}

// A removal made while Redis is down, on a node restarted before Redis
// returns: without the saved queue the catch-up would bring the row back.
TEST(ReplicatedTable, ChangesQueuedWhileRedisIsDownSurviveARestart) {
  testing::RedisServer redis;
  asio::io_context ctx;
  std::map<std::uint64_t, std::string> spool;
  Node b(redis, "gw-b", ctx);
  {
    Node a(redis, "gw-a", ctx, "things", &spool);
    ASSERT_TRUE(run_until(ctx, [&] { return a.cluster.redis_up() && b.cluster.redis_up(); }));
    a.add("x@example.com", 1000);
    ASSERT_TRUE(run_until(ctx, [&] { return b.has("x@example.com"); }));
    EXPECT_TRUE(spool.empty());  // pushed at once: nothing to keep
    redis.pause();
    ASSERT_TRUE(run_until(
        ctx, [&] { return !a.cluster.redis_up(); }, 3000ms));
    a.remove("x@example.com", 2000);
    run_until(
        ctx, [] { return false; }, 50ms);
    ASSERT_EQ(spool.size(), 1u);
  }
  Node a(redis, "gw-a", ctx, "things", &spool);  // restarted, its list without x
  EXPECT_EQ(a.table.stats().pending, 1u);
  redis.resume();
  ASSERT_TRUE(run_until(
      ctx, [&] { return !b.has("x@example.com") && spool.empty(); }, 5000ms));
  run_until(
      ctx, [] { return false; }, 300ms);
  EXPECT_FALSE(a.has("x@example.com"));
  EXPECT_EQ(redis.run("HGET t:things x@example.com"), "-2000");
}

}  // namespace
}  // namespace mailgate::cluster
