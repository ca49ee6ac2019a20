// queue/queue_shard with a PathGate (egress sources and sites): add() asks
// the gate for each new item's source and keeps one Destination per
// (name, source); a refused site slot starts no connection and asks again
// shortly; a warm-up Move sends the item to the other source's queue, a
// Hold schedules it (no attempt counted), a Wait (a cluster's shared quota
// on its way) leaves it ready and asks again shortly, and a refused rate
// gives the quota back; suspend/resume act on every source of a name.
#include <gtest/gtest.h>

#include <asio/io_context.hpp>
#include <chrono>
#include <memory>

#include "queue/queue_shard.hpp"

namespace mailgate::queue {
namespace {

using namespace std::chrono_literals;

struct FakeGate final : PathGate {
  std::string next_source = "ip1";
  bool slots = true;
  int open = 0, closed = 0, refunds = 0;
  std::int64_t rate_wait = 0;
  Quota quota;
  std::string pick_source(const std::string&, const Item& item) override {
    return item.pool == "none" ? "" : next_source;
  }
  bool open_connection(Destination&) override {
    if (!slots) return false;
    ++open;
    return true;
  }
  void close_connection(Destination&) override { ++closed; }
  std::int64_t admit_message(Destination&, std::int64_t) override { return rate_wait; }
  Quota take_quota(Destination&, const Item&) override { return quota; }
  void refund_quota(Destination&) override { ++refunds; }
};

Item item(std::uint64_t n, std::string pool = "bulk") {
  Item it;
  it.id = spool::MessageId::make(static_cast<std::uint64_t>(now_ms()), 0, n);
  it.ref = std::make_shared<MessageRef>(1);
  it.pool = std::move(pool);
  return it;
}

struct Rig {
  Rig() {
    Shaping s;
    s.max_connections = 5;
    shard = std::make_unique<QueueShard>(
        ctx, RetryPolicy{}, s, [this](Destination& d) { starts.push_back(&d); },
        [](Destination&, Item) {});
    shard->set_gate(&gate);
  }
  ~Rig() { shard->stop(); }
  asio::io_context ctx;
  FakeGate gate;
  std::vector<Destination*> starts;
  std::unique_ptr<QueueShard> shard;
};

TEST(PathGate, OneDestinationPerSourceAndSlotsGateConnections) {
  Rig r;
  r.shard->add("a.test", item(1));
  r.gate.next_source = "ip2";
  r.shard->add("a.test", item(2));
  r.shard->add("a.test", item(3, "none"));  // the default source: the plain destination
  ASSERT_EQ(r.starts.size(), 3u);
  EXPECT_EQ(r.starts[0]->source, "ip1");
  EXPECT_EQ(r.starts[1]->source, "ip2");
  EXPECT_EQ(r.starts[2]->source, "");
  EXPECT_EQ(r.shard->destinations(), 3u);
  EXPECT_EQ(r.gate.open, 3);
  for (auto* d : r.starts) EXPECT_EQ(d->name, "a.test");

  r.gate.slots = false;  // the site is full: nothing starts, and it asks again
  r.gate.next_source = "ip3";
  r.shard->add("a.test", item(4));
  EXPECT_EQ(r.starts.size(), 3u);
  r.gate.slots = true;
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (r.starts.size() < 4 && std::chrono::steady_clock::now() < deadline) r.ctx.run_for(5ms);
  ASSERT_EQ(r.starts.size(), 4u);
  EXPECT_EQ(r.starts[3]->source, "ip3");
  r.shard->connection_closed(*r.starts[3]);
  EXPECT_EQ(r.gate.closed, 1);

  EXPECT_TRUE(r.shard->suspend("a.test"));
  for (auto& s : r.shard->summary()) EXPECT_TRUE(s.suspended) << s.source;
  EXPECT_EQ(r.shard->suspended(), std::vector<std::string>{"a.test"});
  EXPECT_TRUE(r.shard->resume("a.test"));
  for (auto& s : r.shard->summary()) EXPECT_FALSE(s.suspended) << s.source;
}

TEST(PathGate, WarmupMovesOrHoldsAndRateRefundsTheQuota) {
  Rig r;
  auto first = item(1);
  const auto id1 = first.id;
  r.shard->add("b.test", std::move(first));
  ASSERT_EQ(r.starts.size(), 1u);
  Destination& ip1 = *r.starts[0];

  r.gate.quota = {PathGate::Quota::Kind::Move, "ip2", 0};
  EXPECT_FALSE(r.shard->take(ip1));  // moved, not taken here
  ASSERT_EQ(r.starts.size(), 2u);
  Destination& ip2 = *r.starts[1];
  EXPECT_EQ(ip2.source, "ip2");
  EXPECT_EQ(ip2.ready.size(), 1u);
  EXPECT_EQ(r.shard->size(), 1u);

  const auto midnight = now_ms() + 3'600'000;
  r.gate.quota = {PathGate::Quota::Kind::Hold, "", midnight};
  EXPECT_FALSE(r.shard->take(ip2));
  auto st = r.shard->item_state("b.test", id1);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->where, ItemState::Where::Scheduled);
  EXPECT_EQ(st->next_ms, midnight);
  EXPECT_EQ(ip2.scheduled, 1u);
  EXPECT_EQ(r.shard->size(), 1u);

  r.gate.quota = {};
  r.gate.rate_wait = 1'000'000;  // the site's rate says wait: the quota goes back
  r.shard->add("b.test", item(2));
  EXPECT_FALSE(r.shard->take(ip1));
  EXPECT_EQ(r.gate.refunds, 1);
  r.gate.rate_wait = 0;
  auto taken = r.shard->take(ip1);
  ASSERT_TRUE(taken);
  EXPECT_EQ(taken->source, "ip1");
}

TEST(PathGate, WarmupWaitLeavesTheItemReadyAndAsksAgainShortly) {
  Rig r;
  auto first = item(1);
  const auto id1 = first.id;
  r.gate.quota = {PathGate::Quota::Kind::Wait, "", 0, 20'000};
  r.shard->add("c.test", std::move(first));
  ASSERT_EQ(r.starts.size(), 1u);
  Destination& d = *r.starts[0];
  EXPECT_FALSE(r.shard->take(d));
  // Not scheduled, not an attempt: still ready, and a timer asks again.
  auto st = r.shard->item_state("c.test", id1);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->where, ItemState::Where::Ready);
  EXPECT_EQ(d.scheduled, 0u);
  EXPECT_EQ(d.ready.takeable(), 1u);
  EXPECT_NE(d.rate_timer_at_us, 0);
  EXPECT_EQ(r.gate.refunds, 0);
  r.gate.quota = {};  // the lease came
  auto taken = r.shard->take(d);
  ASSERT_TRUE(taken);
  EXPECT_EQ(taken->id, id1);
  EXPECT_EQ(taken->attempts, 0u);
}

}  // namespace
}  // namespace mailgate::queue
