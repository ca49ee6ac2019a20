// Tests of cluster/shared_warmup against a real redis-server: three nodes
// (a Cluster, a SharedWarmup and an egress::PathRegistry each; the cluster
// parts on one io_context run by a background thread, as the gateway's
// worker 0 runs them) take one source's warm-up quota for one site from the
// test's thread, as workers do. Together they are granted exactly the
// quota, spread over the nodes, and then told "spent"; a stalled Redis
// makes each node go on with its share (quota / live nodes, less what it
// counted) and push what it counted when Redis answers again; a count
// that is not a number is taken as spent; the nodes agree on the earliest
// day 1; a clean shutdown gives unused leases back.
#include "cluster/shared_warmup.hpp"

#include <gtest/gtest.h>

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
#include "egress/path_registry.hpp"
#include "unit/cluster/node_config.hpp"
#include "unit/cluster/redis_server.hpp"

namespace mailgate::cluster {
namespace {

using namespace std::chrono_literals;
using Kind = egress::WarmupTake::Kind;

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
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

egress::Source warm_source(std::uint64_t start, double factor = 1) {
  egress::Source s;
  s.name = "ip1";
  s.warmup = egress::Warmup{start, factor, 30};
  return s;
}

// The day's count in Redis (the key the script writes: Redis's day, the
// same as this machine's).
std::string count_key(const std::string& site) {
  return std::string(kWarmupKeyPrefix) + "ip1/" + site + "/" +
         std::to_string(egress::utc_day(wall_ms()));
}

// `n` nodes on one io_context driven by a background thread.
class Nodes {
 public:
  Nodes(const testing::RedisServer& redis, unsigned n) {
    for (unsigned i = 0; i < n; ++i) {
      ClusterConfig c = testing::node_config(redis.url(), "node-" + std::to_string(i));
      c.timeout = config::Duration(300);  // a loaded machine (ctest -j) is not a failing Redis
      clusters_.push_back(std::make_unique<Cluster>(c, ctx_, [] { return 0; }));
      warmups_.push_back(
          std::make_unique<SharedWarmup>(c, *clusters_.back(), clusters_.back()->link(), ctx_));
      registries_.push_back(std::make_unique<egress::PathRegistry>());
      registries_.back()->set_warmup_backend(warmups_.back().get());
      clusters_.back()->start();  // before the context runs: allowed
      warmups_.back()->start();
    }
    thread_ = std::thread([this] { ctx_.run(); });
  }
  ~Nodes() {
    std::promise<void> stopped;
    asio::post(ctx_, [&] {
      for (auto& w : warmups_) w->stop();
      for (auto& c : clusters_) c->stop();
      stopped.set_value();
    });
    stopped.get_future().wait();
    guard_.reset();
    ctx_.stop();
    thread_.join();
  }
  SharedWarmup& warmup(unsigned i) { return *warmups_[i]; }
  egress::PathRegistry& registry(unsigned i) { return *registries_[i]; }
  unsigned size() const { return static_cast<unsigned>(warmups_.size()); }
  bool all(const std::function<bool(unsigned)>& f) {
    for (unsigned i = 0; i < size(); ++i)
      if (!f(i)) return false;
    return true;
  }
  bool shared_with(unsigned live) {
    return all([&](unsigned i) {
      return warmups_[i]->stats().shared && clusters_[i]->live_nodes() == live;
    });
  }
  // Runs f on the cluster's thread and waits for it.
  void on_thread(const std::function<void(std::function<void()>)>& f) {
    std::promise<void> done;
    asio::post(ctx_, [&] { f([&] { done.set_value(); }); });
    done.get_future().wait();
  }

 private:
  asio::io_context ctx_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_{ctx_.get_executor()};
  std::vector<std::unique_ptr<Cluster>> clusters_;
  std::vector<std::unique_ptr<SharedWarmup>> warmups_;
  std::vector<std::unique_ptr<egress::PathRegistry>> registries_;
  std::thread thread_;
};

struct Takes {
  std::vector<std::uint64_t> granted;
  std::vector<bool> spent;
  std::uint64_t waits = 0;
  std::uint64_t total() const {
    std::uint64_t n = 0;
    for (auto g : granted) n += g;
    return n;
  }
};

// The nodes take in turn, as workers would (a short pause per round), those
// in `who` until each is told something other than Granted or Wait
// (Spent, or Wait for longer than a refill takes when `until_wait`), or
// `limit` passes.
Takes take_all(Nodes& nodes, const egress::Source& src, const std::string& site,
               std::vector<unsigned> who, std::chrono::milliseconds limit = 5000ms,
               bool until_local_wait = false) {
  Takes t;
  t.granted.assign(nodes.size(), 0);
  t.spent.assign(nodes.size(), false);
  std::vector<bool> done(nodes.size(), false);
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    bool any = false;
    for (auto i : who) {
      if (done[i]) continue;
      any = true;
      // As a destination with a long queue: leases sized by use alone.
      const auto r = nodes.registry(i).take_quota(src, site, wall_ms(), 1000);
      if (r.kind == Kind::Granted) {
        ++t.granted[i];
      } else if (r.kind == Kind::Spent) {
        t.spent[i] = done[i] = true;
      } else {
        ++t.waits;
        if (until_local_wait && r.wait_us >= SharedWarmup::kLocalWaitUs) done[i] = true;
      }
    }
    if (!any) break;
    std::this_thread::sleep_for(200us);
  }
  return t;
}

TEST(SharedWarmup, ThreeNodesAreGrantedExactlyTheQuotaTogether) {
  testing::RedisServer redis;
  Nodes nodes(redis, 3);
  ASSERT_TRUE(wait_until([&] { return nodes.shared_with(3); }));
  const auto src = warm_source(300);
  // Before any lease: "wait", never "spent" (the message must not be held for the day).
  EXPECT_EQ(nodes.registry(0).take_quota(src, "gmail", wall_ms()).kind, Kind::Wait);

  const auto t = take_all(nodes, src, "gmail", {0, 1, 2});
  EXPECT_EQ(t.total(), 300u);
  for (unsigned i = 0; i < 3; ++i) {
    EXPECT_TRUE(t.spent[i]) << "node " << i;
    // Spread: leases are a fraction of what is left, so nobody takes the day.
    EXPECT_GE(t.granted[i], 10u) << "node " << i;
  }
  EXPECT_EQ(redis.run(("GET " + count_key("gmail")).c_str()), "300");
  // Another site has its own count.
  EXPECT_EQ(take_all(nodes, src, "yahoo", {1}).granted[1], 300u);
  // Spent stays spent (no round trip): held until 00:00 UTC, which the answer says.
  const auto held = nodes.registry(2).take_quota(src, "gmail", wall_ms());
  EXPECT_EQ(held.kind, Kind::Spent);
  // (Redis's midnight on this node's clock: the same machine, so within the
  // offset's measuring error.)
  EXPECT_NEAR(static_cast<double>(held.until_ms),
              static_cast<double>(egress::next_utc_midnight_ms(wall_ms())), 1000);
  EXPECT_EQ(nodes.registry(2).remaining(src, "gmail", wall_ms()), std::optional<std::uint64_t>(0));
  // A message counted that did not leave goes back to its node's reserve.
  nodes.registry(1).refund_quota(src, "gmail", wall_ms());
  EXPECT_EQ(nodes.registry(1).take_quota(src, "gmail", wall_ms()).kind, Kind::Granted);
  EXPECT_EQ(nodes.registry(1).take_quota(src, "gmail", wall_ms()).kind, Kind::Spent);

  std::uint64_t refills = 0, shared = 0;
  for (unsigned i = 0; i < 3; ++i) {
    const auto s = nodes.warmup(i).stats();
    refills += s.refills;
    shared += s.granted_shared;
    EXPECT_EQ(s.granted_local, 0u);
    EXPECT_EQ(s.refill_errors, 0u);
  }
  EXPECT_EQ(shared, 601u);   // 300 + 300 + the refunded one
  EXPECT_LT(refills, 300u);  // leases: fewer round trips than messages
  std::printf("quota 300 over three nodes: %llu / %llu / %llu granted, %llu refills, %llu waits\n",
              static_cast<unsigned long long>(t.granted[0]),
              static_cast<unsigned long long>(t.granted[1]),
              static_cast<unsigned long long>(t.granted[2]),
              static_cast<unsigned long long>(refills), static_cast<unsigned long long>(t.waits));
}

// A node that has sent all it had keeps no quota back: its leases never
// exceed what it has ready, so the other node gets the rest of the day
// (not a hold until 00:00 UTC while quota sits unused on the first).
TEST(SharedWarmup, ANodeLeasesNoMoreThanItHasReady) {
  testing::RedisServer redis;
  Nodes nodes(redis, 2);
  ASSERT_TRUE(wait_until([&] { return nodes.shared_with(2); }));
  const auto src = warm_source(12);
  for (std::uint64_t ready = 10; ready > 0;) {  // ten queued on node 0, sent one by one
    const auto r = nodes.registry(0).take_quota(src, "gmail", wall_ms(), ready);
    ASSERT_NE(r.kind, Kind::Spent) << ready;
    if (r) --ready;
    std::this_thread::sleep_for(200us);
  }
  EXPECT_EQ(redis.run(("GET " + count_key("gmail")).c_str()), "10");
  const auto t = take_all(nodes, src, "gmail", {1});
  EXPECT_EQ(t.granted[1], 2u);
  EXPECT_TRUE(t.spent[1]);
}

TEST(SharedWarmup, RedisStalledMeansLocalSharesThenCountsArePushed) {
  testing::RedisServer redis;
  Nodes nodes(redis, 3);
  ASSERT_TRUE(wait_until([&] { return nodes.shared_with(3); }));
  const auto src = warm_source(90);
  // Node 0 sends a little through Redis first.
  std::uint64_t before = 0;
  while (before < 5) {
    const auto r = nodes.registry(0).take_quota(src, "gmail", wall_ms(), 100);
    ASSERT_NE(r.kind, Kind::Spent);
    if (r) ++before;
    std::this_thread::sleep_for(1ms);
  }

  redis.pause();  // SIGSTOP: calls time out, heartbeats miss
  ASSERT_TRUE(wait_until(
      [&] { return nodes.all([&](unsigned i) { return nodes.warmup(i).fallback(); }); }));
  // Each node its share, 90 / 3 = 30, less what it counted today; past it
  // "wait" (not "spent": Redis may come back today).
  auto down = take_all(nodes, src, "gmail", {0, 1}, 3000ms, true);
  EXPECT_EQ(down.granted[0], 25u);
  EXPECT_EQ(down.granted[1], 30u);
  EXPECT_FALSE(down.spent[0]);
  EXPECT_FALSE(down.spent[1]);
  EXPECT_EQ(nodes.warmup(0).stats().granted_local, 25u);

  redis.resume();
  ASSERT_TRUE(wait_until([&] { return nodes.shared_with(3); }));
  // What the nodes counted while Redis was away is added to the day's count.
  ASSERT_TRUE(wait_until([&] {
    return nodes.warmup(0).stats().pushed == 25 && nodes.warmup(1).stats().pushed == 30;
  }));
  // The rest of the day's quota, shared again: over the whole day exactly
  // the quota (the shares did not exceed it here).
  auto after = take_all(nodes, src, "gmail", {0, 1, 2});
  EXPECT_EQ(before + down.total() + after.total(), 90u);
  EXPECT_EQ(redis.run(("GET " + count_key("gmail")).c_str()), "90");
  for (unsigned i = 0; i < 3; ++i) EXPECT_TRUE(after.spent[i]) << "node " << i;
}

TEST(SharedWarmup, ACountThatIsNotANumberIsTakenAsSpent) {
  testing::RedisServer redis;
  Nodes nodes(redis, 1);
  ASSERT_TRUE(wait_until([&] { return nodes.shared_with(1); }));
  const auto src = warm_source(50);
  redis.run(("SET " + count_key("gmail") + " lots").c_str());
  const auto t = take_all(nodes, src, "gmail", {0});
  EXPECT_EQ(t.granted[0], 0u);
  EXPECT_TRUE(t.spent[0]);
  EXPECT_EQ(nodes.warmup(0).stats().invalid, 1u);
  EXPECT_EQ(redis.run(("GET " + count_key("gmail")).c_str()), "50");  // readable again
  // Another type at the key: the same, and no Redis error (the node stays shared).
  redis.run(("HSET " + count_key("yahoo") + " a b").c_str());
  const auto other = take_all(nodes, src, "yahoo", {0});
  EXPECT_EQ(other.granted[0], 0u);
  EXPECT_TRUE(other.spent[0]);
  const auto st = nodes.warmup(0).stats();
  EXPECT_EQ(st.invalid, 2u);
  EXPECT_EQ(st.refill_errors, 0u);
  EXPECT_FALSE(nodes.warmup(0).fallback());
  EXPECT_EQ(redis.run(("GET " + count_key("yahoo")).c_str()), "50");
}

TEST(SharedWarmup, NodesAgreeOnTheEarliestDayOneAndGiveBackUnusedLeases) {
  testing::RedisServer redis;
  Nodes nodes(redis, 2);
  ASSERT_TRUE(wait_until([&] { return nodes.shared_with(2); }));
  const auto today = egress::utc_day(wall_ms());
  // Node 0 has sent from this source for two days already (its spool says so).
  nodes.registry(0).load({{egress::warmup_start_key("ip1"), std::to_string(today - 2)}}, wall_ms());
  const auto src = warm_source(10, 2);  // day 3: 40
  auto plan = std::make_shared<egress::Plan>();
  ASSERT_EQ(plan->add_source(src), "");
  nodes.registry(1).set_plan(plan);  // view() reads quotas from it
  take_all(nodes, src, "gmail", {0}, 300ms);
  // Node 1 starts today on its own, and adopts the earlier day 1.
  ASSERT_TRUE(wait_until([&] {
    nodes.registry(1).take_quota(src, "outlook", wall_ms());
    const auto v = nodes.registry(1).view(wall_ms());
    return !v.empty() && v.front().quota == std::optional<std::uint64_t>(40);
  }));
  EXPECT_EQ(redis.run(("GET " + std::string(kWarmupStartPrefix) + "ip1").c_str()),
            std::to_string(today - 2));
  // The adopted day is written to the spool too.
  bool persisted = false;
  for (const auto& row : nodes.registry(1).take_dirty().put)
    if (row.key == egress::warmup_start_key("ip1") && row.value == std::to_string(today - 2))
      persisted = true;
  EXPECT_TRUE(persisted);

  // A clean shutdown: what node 1 leased and did not send goes back. (It
  // sends until it holds a lease with some left: leases grow with use.)
  std::int64_t counted = 0, sent = 0;
  ASSERT_TRUE(wait_until([&] {
    nodes.registry(1).take_quota(src, "outlook", wall_ms(), 40);
    counted = std::stoll(redis.run(("GET " + count_key("outlook")).c_str()));
    sent = static_cast<std::int64_t>(nodes.warmup(1).stats().granted_shared);
    return counted > sent;
  }));
  nodes.on_thread([&](std::function<void()> done) {
    // `done` runs when the last call holding `until` was answered.
    const std::shared_ptr<void> until(nullptr, [done](void*) { done(); });
    nodes.warmup(1).leave(until);
  });
  EXPECT_EQ(std::stoll(redis.run(("GET " + count_key("outlook")).c_str())), sent);
  const auto st = nodes.warmup(1).stats();
  EXPECT_EQ(static_cast<std::int64_t>(st.returned), counted - sent)
      << "refills " << st.refills << " errors " << st.refill_errors << " granted "
      << st.granted_shared << " waits " << st.waits;
}

}  // namespace
}  // namespace mailgate::cluster
