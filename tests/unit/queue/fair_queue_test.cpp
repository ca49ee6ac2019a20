// Tests of queue/fair_queue and the shard's tenant holds (issue 12 items
// 4-5): FIFO without tenancy; equal tenants share takes evenly whatever
// their backlog; campaigns of one tenant share that tenant's turn; the
// priority classes get 9:3:1 shares (high at most 90% while bulk waits,
// bulk never starved); a held campaign keeps its items out of the rotation
// without blocking the others, and comes back on release or when its
// `until` passes; held items still expire; extract by tenant; memory is
// freed as sub-queues empty.
#include "queue/fair_queue.hpp"

#include <gtest/gtest.h>

#include <asio/io_context.hpp>
#include <map>
#include <memory>
#include <string>

#include "queue/queue_shard.hpp"

namespace mailgate::queue {
namespace {

using tenancy::Priority;

Item item(std::uint64_t n, const std::string& tenant = "", const std::string& campaign = "",
          Priority p = Priority::Normal, std::int64_t received_ms = 0) {
  Item it;
  it.id = spool::MessageId::make(static_cast<std::uint64_t>(received_ms ? received_ms : now_ms()),
                                 0, n);
  it.ref = std::make_shared<MessageRef>(1);
  if (!tenant.empty() || p != Priority::Normal)
    it.tenancy = std::make_shared<const tenancy::Tenancy>(tenancy::Tenancy{tenant, campaign, p});
  return it;
}

std::string tenant_of(const Item& it) { return it.tenancy_or_none().tenant; }

TEST(FairQueue, WithoutTenancyItIsFifo) {
  FairQueue q;
  for (int i = 0; i < 100; ++i) q.push(item(i), {});
  for (int i = 0; i < 100; ++i) EXPECT_EQ(q.take()->id.counter(), std::uint64_t(i));
  EXPECT_FALSE(q.take());
  EXPECT_TRUE(q.empty());
}

TEST(FairQueue, EqualTenantsAlternateWhateverTheBacklog) {
  FairQueue q;
  for (int i = 0; i < 10000; ++i) q.push(item(i, "bulk"), {});
  for (int i = 0; i < 100; ++i) q.push(item(100000 + i, "tx"), {});
  std::map<std::string, int> first200;
  for (int i = 0; i < 200; ++i) ++first200[tenant_of(*q.take())];
  EXPECT_EQ(first200["tx"], 100);
  EXPECT_EQ(first200["bulk"], 100);
  // FIFO inside a tenant.
  EXPECT_EQ(q.take()->id.counter(), 100u);
}

TEST(FairQueue, CampaignsShareTheirTenantsTurn) {
  FairQueue q;
  for (int i = 0; i < 300; ++i)
    q.push(item(i, "a", i % 3 == 0 ? "c1" : i % 3 == 1 ? "c2" : "c3"), {});
  for (int i = 0; i < 300; ++i) q.push(item(1000 + i, "b"), {});
  std::map<std::string, int> n;
  std::map<std::string, int> campaigns;
  for (int i = 0; i < 300; ++i) {
    auto it = *q.take();
    ++n[tenant_of(it)];
    ++campaigns[it.tenancy_or_none().campaign];
  }
  EXPECT_EQ(n["a"], 150);
  EXPECT_EQ(n["b"], 150);
  EXPECT_EQ(campaigns["c1"], 50);
  EXPECT_EQ(campaigns["c2"], 50);
}

TEST(FairQueue, PriorityClassesGetNineThreeOneAndNothingStarves) {
  FairQueue q;
  for (int i = 0; i < 3000; ++i) {
    q.push(item(i, "h", "", Priority::High), {});
    q.push(item(10000 + i, "n", "", Priority::Normal), {});
    q.push(item(20000 + i, "b", "", Priority::Bulk), {});
  }
  std::map<std::string, int> n;
  for (int i = 0; i < 1300; ++i) ++n[tenant_of(*q.take())];
  EXPECT_EQ(n["h"], 900);
  EXPECT_EQ(n["n"], 300);
  EXPECT_EQ(n["b"], 100);
  // High against bulk alone: at most 90%.
  FairQueue hb;
  for (int i = 0; i < 2000; ++i) {
    hb.push(item(i, "h", "", Priority::High), {});
    hb.push(item(10000 + i, "b", "", Priority::Bulk), {});
  }
  n.clear();
  for (int i = 0; i < 1000; ++i) ++n[tenant_of(*hb.take())];
  EXPECT_EQ(n["h"], 900);
  EXPECT_EQ(n["b"], 100);
}

TEST(FairQueue, AClassThatWasIdleGetsNoBankedCredit) {
  FairQueue q;
  for (int i = 0; i < 1000; ++i) q.push(item(i, "n"), {});
  for (int i = 0; i < 900; ++i) q.take();  // normal alone for a long time
  for (int i = 0; i < 100; ++i) q.push(item(5000 + i, "b", "", Priority::Bulk), {});
  std::map<std::string, int> n;
  for (int i = 0; i < 40; ++i) ++n[tenant_of(*q.take())];
  EXPECT_EQ(n["n"], 30);  // 3:1, not bulk first for 300 takes
  EXPECT_EQ(n["b"], 10);
}

TEST(FairQueue, HeldCampaignStaysQueuedWithoutBlockingOthers) {
  FairQueue q;
  auto held_c1 = [](const tenancy::Tenancy& t) { return t.campaign == "c1"; };
  for (int i = 0; i < 10; ++i) q.push(item(i, "a", "c1"), held_c1);
  for (int i = 0; i < 10; ++i) q.push(item(100 + i, "a", "c2"), held_c1);
  EXPECT_EQ(q.size(), 20u);
  EXPECT_EQ(q.held(), 10u);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(q.take()->tenancy_or_none().campaign, "c2");
  EXPECT_FALSE(q.take());  // only held items left
  EXPECT_EQ(q.size(), 10u);
  int seen_held = 0;
  q.for_each([&](const Item&, bool held) { seen_held += held; });
  EXPECT_EQ(seen_held, 10);
  EXPECT_TRUE(q.rehold({}));  // released
  EXPECT_EQ(q.held(), 0u);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(q.take()->id.counter(), std::uint64_t(i));
  EXPECT_TRUE(q.empty());
}

TEST(FairQueue, EraseIfKeepsOrderAndCounts) {
  FairQueue q;
  for (int i = 0; i < 20; ++i) q.push(item(i, i % 2 ? "odd" : "even"), {});
  int removed = 0;
  q.erase_if([](const Item& it) { return it.id.counter() % 4 == 0; }, [&](Item&&) { ++removed; });
  EXPECT_EQ(removed, 5);
  EXPECT_EQ(q.size(), 15u);
  q.erase_if([](const Item& it) { return tenant_of(it) == "odd"; }, [](Item&&) {});
  EXPECT_EQ(q.size(), 5u);
  std::vector<std::uint64_t> order;
  while (auto it = q.take()) order.push_back(it->id.counter());
  EXPECT_EQ(order, (std::vector<std::uint64_t>{2, 6, 10, 14, 18}));
}

// --- the shard's holds ---

struct ShardHarness {
  ShardHarness() {
    Shaping s;
    s.max_connections = 1;
    RetryPolicy p;
    p.max_age = std::chrono::hours(1);
    shard = std::make_unique<QueueShard>(
        ctx, p, s, [this](Destination& d) { dest = &d; },
        [this](Destination&, Item it) { expired.push_back(std::move(it)); });
  }
  ~ShardHarness() { shard->stop(); }
  asio::io_context ctx;
  std::unique_ptr<QueueShard> shard;
  Destination* dest = nullptr;
  std::vector<Item> expired;
};

tenancy::Suspension suspension(std::string tenant, std::string campaign = "",
                               std::string destination = "", std::int64_t until = 0) {
  return {std::move(tenant), std::move(campaign), std::move(destination), now_ms(), until};
}

TEST(QueueShardHolds, SuspendedCampaignHoldsMailQueuedBeforeAndAfter) {
  ShardHarness h;
  h.shard->add("x.test", item(1, "acme", "spring"));
  h.shard->hold(suspension("acme", "spring"));
  h.shard->add("x.test", item(2, "acme", "spring"));  // after the suspension
  h.shard->add("x.test", item(3, "acme", "summer"));
  ASSERT_TRUE(h.dest);
  auto t = h.shard->take(*h.dest);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->id.counter(), 3u);
  EXPECT_FALSE(h.shard->take(*h.dest));
  auto totals = h.shard->totals();
  EXPECT_EQ(totals.suspended, 2u);
  EXPECT_EQ(totals.ready, 0u);
  auto views = h.shard->items("");
  ASSERT_EQ(views.size(), 2u);
  for (const auto& v : views) EXPECT_TRUE(v.held);
  // A rule for another destination does not hold it; releasing the right one does.
  EXPECT_FALSE(h.shard->release(suspension("acme", "spring", "other.test")));
  EXPECT_TRUE(h.shard->release(suspension("acme", "spring")));
  EXPECT_EQ(h.shard->totals().ready, 2u);
  EXPECT_TRUE(h.shard->take(*h.dest));
}

TEST(QueueShardHolds, TenantRuleAtOneDestinationOnly) {
  ShardHarness h;
  h.shard->hold(suspension("acme", "", "x.test"));
  h.shard->add("x.test", item(1, "acme"));
  h.shard->add("y.test", item(2, "acme"));
  auto sum = h.shard->summary();
  std::map<std::string, DestinationSummary> by;
  for (auto& s : sum) by[s.name] = s;
  EXPECT_EQ(by["x.test"].held, 1u);
  EXPECT_EQ(by["y.test"].held, 0u);
}

TEST(QueueShardHolds, UntilPassesAndTheSweepReleases) {
  ShardHarness h;
  h.shard->hold(suspension("acme", "", "", now_ms() + 300));
  h.shard->add("x.test", item(1, "acme"));
  EXPECT_EQ(h.shard->totals().suspended, 1u);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (h.shard->totals().suspended != 0 && std::chrono::steady_clock::now() < deadline)
    h.ctx.run_for(std::chrono::milliseconds(100));
  EXPECT_EQ(h.shard->totals().suspended, 0u);
  EXPECT_TRUE(h.shard->holds().empty());
}

TEST(QueueShardHolds, HeldItemsStillExpireAndExtractByTenant) {
  ShardHarness h;
  h.shard->hold(suspension("acme"));
  const auto old = now_ms() - 2 * 3'600'000;
  h.shard->add("x.test", item(1, "acme", "", Priority::Normal, old));
  h.shard->add("x.test", item(2, "acme"));
  h.shard->add("x.test", item(3, "other"));
  h.shard->add("x.test", item(4, "acme", "c"));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (h.expired.empty() && std::chrono::steady_clock::now() < deadline)
    h.ctx.run_for(std::chrono::milliseconds(100));
  ASSERT_EQ(h.expired.size(), 1u);
  EXPECT_EQ(h.expired[0].id.counter(), 1u);
  auto out = h.shard->extract("", nullptr, TenancyFilter{"acme", "c"});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].second.id.counter(), 4u);
  out = h.shard->extract("", nullptr, TenancyFilter{"acme", ""});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].second.id.counter(), 2u);
  EXPECT_EQ(h.shard->size(), 1u);
}

}  // namespace
}  // namespace mailgate::queue
