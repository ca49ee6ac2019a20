// Micro-benchmarks of scheduling with sources and sites (issue 12): the
// cost per message of one owner worker's queue (queue::QueueShard add +
// take + finished) with 10,000 destinations, without a PathGate (today's
// path) and with one doing what delivery/egress_paths does per message
// (a weighted pick of the source, a (source, site) connection slot, the
// site's rate and the warm-up quota in the shared egress::PathRegistry,
// 100 sites); and the MX-suffix match of one destination against 100 sites
// (done once per destination and DNS TTL, not per message). The third
// variant adds what traffic shaping automation costs per message while
// actions are in force (egress::ShapingActions: held_us and the override
// lookups, 10 actions on other paths: the mutex path, not the empty one).
#include <benchmark/benchmark.h>

#include <asio/io_context.hpp>
#include <string>
#include <vector>

#include "egress/egress_plan.hpp"
#include "egress/path_registry.hpp"
#include "egress/pool_picker.hpp"
#include "egress/shaping_actions.hpp"
#include "queue/queue_shard.hpp"

namespace {

using namespace mailgate;

constexpr int kDestinations = 10'000;
constexpr int kSites = 100;

egress::Plan make_plan() {
  egress::Plan p;
  p.add_source({"ip1", "192.0.2.1", "", egress::Warmup{1'000'000'000, 2, 14}});
  p.add_source({"ip2", "192.0.2.2", "", {}});
  p.add_pool({"bulk", {{"ip1", 3}, {"ip2", 1}}});
  for (int i = 0; i < kSites; ++i)
    p.add_site({"site" + std::to_string(i),
                {".mx" + std::to_string(i) + ".example", ".alt" + std::to_string(i) + ".example"},
                1000,
                1e9,
                1000});
  return p;
}

// What delivery/egress_paths does per message, minus the policy lookup.
class BenchGate final : public queue::PathGate {
 public:
  explicit BenchGate(const egress::Plan& plan, const egress::ShapingActions* shaping = nullptr)
      : plan_(plan), shaping_(shaping) {}
  std::int64_t held_us(const queue::Destination& d, std::int64_t) override {
    return shaping_ && shaping_->blocked_until(d.source, d.site, now_) > now_ ? 1000 : 0;
  }
  std::string pick_source(const std::string&, const queue::Item&) override {
    return picker_.next(plan_, *plan_.pool("bulk"))->source;
  }
  bool open_connection(queue::Destination& d) override {
    if (shaping_) benchmark::DoNotOptimize(shaping_->override_for(d.source, d.site, now_));
    return registry_.try_connect(d.source, d.site, plan_.site(d.site)->max_connections);
  }
  void close_connection(queue::Destination& d) override { registry_.disconnect(d.source, d.site); }
  std::int64_t admit_message(queue::Destination& d, std::int64_t now_us) override {
    if (shaping_) benchmark::DoNotOptimize(shaping_->override_for(d.source, d.site, now_));
    return registry_.acquire_message(d.source, plan_.site(d.site), now_us);
  }
  Quota take_quota(queue::Destination& d, const queue::Item&) override {
    if (const auto* src = plan_.source(d.source)) registry_.take_quota(*src, d.site, now_);
    return {};
  }
  void refund_quota(queue::Destination&) override {}

 private:
  const egress::Plan& plan_;
  const egress::ShapingActions* shaping_;
  egress::PoolPicker picker_;
  egress::PathRegistry registry_;
  std::int64_t now_ = 1'700'000'000'000;
};

void run_shard(benchmark::State& state, bool with_gate, bool with_shaping = false) {
  asio::io_context ctx;
  const auto plan = make_plan();
  egress::ShapingActions shaping;
  std::string err;
  for (int i = 0; i < 10; ++i)  // in force on paths this benchmark never sends to
    shaping.fire(
        egress::ShapingRule{"r" + std::to_string(i),
                            "site0",
                            *egress::ReplyPattern::compile("TS04", err),
                            i % 2 ? egress::ShapingKind::Suspend : egress::ShapingKind::Override,
                            3'600'000'000LL,
                            {0, 1}},
        egress::ReplyScope{"ip" + std::to_string(i + 3), "site0", "", "", ""}, 1'700'000'000'000);
  BenchGate gate(plan, with_shaping ? &shaping : nullptr);
  std::vector<queue::Destination*> started;
  queue::Shaping defaults;
  defaults.max_connections = 1000;
  queue::QueueShard shard(
      ctx, queue::RetryPolicy{}, defaults, [&](queue::Destination& d) { started.push_back(&d); },
      [](queue::Destination&, queue::Item) {});
  if (with_gate) shard.set_gate(&gate);
  // The site is known (looked up once per destination): set it on first sight.
  shard.set_shaper([](queue::Destination& d) {
    if (d.site.empty()) d.site = "site" + std::to_string(std::hash<std::string>{}(d.name) % kSites);
    return true;
  });
  std::vector<std::string> names;
  for (int i = 0; i < kDestinations; ++i) names.push_back("d" + std::to_string(i) + ".example");
  auto ref = std::make_shared<queue::MessageRef>(1);
  std::uint64_t n = 0;
  // Warm the map: every destination exists (10,000 queues).
  for (const auto& name : names) shard.add(name, queue::Item{spool::MessageId{}, 1, 0, 0, ref});
  std::vector<queue::Destination*> each;
  for (auto* d : started) each.push_back(d);
  for (auto* d : each)
    while (auto it = shard.take(*d)) shard.finished(*d);
  for (auto _ : state) {
    const auto& name = names[n++ % names.size()];
    started.clear();
    shard.add(name, queue::Item{spool::MessageId{}, 1, 0, 0, ref});
    for (auto* d : started) {
      if (auto it = shard.take(*d)) shard.finished(*d);
      shard.connection_closed(*d);
    }
  }
  state.counters["destinations"] = static_cast<double>(shard.destinations());
}

void BM_ScheduleWithoutSources(benchmark::State& state) { run_shard(state, false); }
BENCHMARK(BM_ScheduleWithoutSources)->Unit(benchmark::kMicrosecond);

void BM_ScheduleWithSourcesAndSites(benchmark::State& state) { run_shard(state, true); }
BENCHMARK(BM_ScheduleWithSourcesAndSites)->Unit(benchmark::kMicrosecond);

void BM_ScheduleWithShapingActions(benchmark::State& state) { run_shard(state, true, true); }
BENCHMARK(BM_ScheduleWithShapingActions)->Unit(benchmark::kMicrosecond);

void BM_SiteOfMxHosts(benchmark::State& state) {
  const auto plan = make_plan();
  const std::vector<std::string> hosts{"mx1.mx73.example", "mx2.mx73.example"};
  for (auto _ : state) benchmark::DoNotOptimize(plan.site_for(hosts));
}
BENCHMARK(BM_SiteOfMxHosts)->Unit(benchmark::kMicrosecond);

}  // namespace
BENCHMARK_MAIN();
