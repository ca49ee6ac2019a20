// Micro-benchmarks of the fair ready queue (queue/fair_queue) and the shard's
// take() (issue 12 item 5): the cost of taking the next message of one
// destination whose ready queue holds 1,000 tenants (10 messages each, three
// priority classes), on its own and inside a shard that owns 10,000 other
// destinations with mail. Each iteration takes one item and adds it back,
// so the queue stays the same size. take() should not grow with either count.
#include <benchmark/benchmark.h>

#include <asio/io_context.hpp>
#include <memory>
#include <string>
#include <vector>

#include "queue/fair_queue.hpp"
#include "queue/queue_shard.hpp"

namespace {

using namespace mailgate;

std::vector<std::shared_ptr<const tenancy::Tenancy>> tenancies(int tenants) {
  std::vector<std::shared_ptr<const tenancy::Tenancy>> out;
  for (int t = 0; t < tenants; ++t)
    out.push_back(std::make_shared<const tenancy::Tenancy>(
        tenancy::Tenancy{"tenant" + std::to_string(t), "c" + std::to_string(t % 3),
                         static_cast<tenancy::Priority>(t % tenancy::kPriorityCount)}));
  return out;
}

queue::Item item(std::uint64_t n, std::shared_ptr<const tenancy::Tenancy> t) {
  queue::Item it;
  it.id = spool::MessageId::make(1'700'000'000'000, 0, n);
  it.ref = std::make_shared<queue::MessageRef>(1);
  it.tenancy = std::move(t);
  return it;
}

void BM_FairQueueTake(benchmark::State& state) {
  const int tenants = static_cast<int>(state.range(0));
  const auto ts = tenancies(tenants);
  queue::FairQueue q;
  std::uint64_t n = 0;
  for (int i = 0; i < 10; ++i)
    for (const auto& t : ts) q.push(item(n++, t), {});
  for (auto _ : state) {
    auto it = q.take();
    benchmark::DoNotOptimize(it);
    q.push(std::move(*it), {});
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_FairQueueTake)->Arg(1)->Arg(1000);

void BM_ShardTakeAmong10000Destinations(benchmark::State& state) {
  asio::io_context ctx;
  queue::Destination* target = nullptr;
  queue::Shaping shaping;
  shaping.max_connections = 1;
  queue::QueueShard shard(
      ctx, queue::RetryPolicy{}, shaping,
      [&](queue::Destination& d) {
        if (d.name == "target.example") target = &d;
      },
      [](queue::Destination&, queue::Item) {});
  const auto ts = tenancies(1000);
  std::uint64_t n = 0;
  for (int d = 0; d < 10000; ++d)
    shard.add("d" + std::to_string(d) + ".example", item(n++, ts[d % ts.size()]));
  for (int i = 0; i < 10; ++i)
    for (const auto& t : ts) shard.add("target.example", item(n++, t));
  if (!target) {
    state.SkipWithError("no connection was started for the target");
    return;
  }
  for (auto _ : state) {
    auto it = shard.take(*target);
    benchmark::DoNotOptimize(it);
    shard.finished(*target);
    shard.add("target.example", std::move(*it));
  }
  state.SetItemsProcessed(state.iterations());
  shard.stop();
}
BENCHMARK(BM_ShardTakeAmong10000Destinations);

}  // namespace

BENCHMARK_MAIN();
