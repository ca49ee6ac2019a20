// Tests of queue/queue_shard on a real io_context (driven with run_for and
// deadlines, never a fixed sleep as the only sync): future items wait in the
// scheduled heap until due, ready items are taken in order, a destination
// never gets more than max_connections starts, suspend/resume/flush,
// retry_later/finished/extract bookkeeping in summary(), defer_destination,
// the message rate, the shaper, parked connections, and the expiry of items
// past max_age while they wait in a ready queue; idle destinations are
// removed (10,000 one-message destinations leave an empty map) unless
// something still holds or matters about them; totals() and summary() agree
// with a recount of every waiting item as items move; item_state() reports
// the real next attempt after a destination-level deferral.
#include "queue/queue_shard.hpp"

#include <gtest/gtest.h>

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace mailgate::queue {
namespace {

using namespace std::chrono_literals;

constexpr std::int64_t kHour = 3'600'000;

Item make_item(std::uint64_t counter, std::int64_t received_ms, std::int64_t next_ms = 0) {
  Item it;
  it.id = spool::MessageId::make(static_cast<std::uint64_t>(received_ms), 0, counter);
  it.size = 1000 + counter;
  it.next_ms = next_ms;
  it.ref = std::make_shared<MessageRef>(1);
  return it;
}

Item make_item(std::uint64_t counter) { return make_item(counter, now_ms()); }

Shaping shaping(unsigned max_connections) {
  Shaping s;
  s.max_connections = max_connections;
  return s;
}

RetryPolicy retry_policy(std::int64_t max_age_ms) {
  RetryPolicy p;
  p.first = 60s;
  p.max = 1h;
  p.max_age = std::chrono::milliseconds(max_age_ms);
  return p;
}

// A shard whose starter and expirer only record what they are given.
struct Harness {
  explicit Harness(Shaping s = {}, RetryPolicy p = retry_policy(5 * 24 * kHour)) {
    shard = std::make_unique<QueueShard>(
        ctx, p, s,
        [this](Destination& d) {
          starts.push_back(&d);
          start_times.push_back(now_ms());
          if (on_start) on_start(d);
        },
        [this](Destination& d, Item item) {
          expired.emplace_back(&d, std::move(item));
          expire_times.push_back(now_ms());
        });
  }
  ~Harness() {
    shard->stop();
    shard.reset();
  }

  std::optional<DestinationSummary> summary(const std::string& name) const {
    for (auto& s : shard->summary())
      if (s.name == name) return s;
    return std::nullopt;
  }

  // Runs the io_context until `done` holds or `limit` passes (false then).
  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds limit = 20s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done()) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      if (ctx.stopped()) ctx.restart();
      ctx.run_for(5ms);
    }
    return true;
  }

  asio::io_context ctx;
  std::vector<Destination*> starts;
  std::vector<std::int64_t> start_times;
  std::function<void(Destination&)> on_start;
  std::vector<std::pair<Destination*, Item>> expired;
  std::vector<std::int64_t> expire_times;
  std::unique_ptr<QueueShard> shard;
};

std::vector<std::uint64_t> take_all(QueueShard& shard, Destination& d) {
  std::vector<std::uint64_t> out;
  while (auto it = shard.take(d)) out.push_back(it->id.counter());
  return out;
}

TEST(QueueShard, ReadyItemsAreTakenInArrivalOrder) {
  Harness h(shaping(1));
  for (std::uint64_t i = 1; i <= 5; ++i) h.shard->add("example.com", make_item(i));
  ASSERT_EQ(h.starts.size(), 1u);  // max_connections = 1
  EXPECT_EQ(h.starts[0]->name, "example.com");
  EXPECT_EQ(h.shard->size(), 5u);
  auto s = h.summary("example.com");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->ready, 5u);
  EXPECT_EQ(s->scheduled, 0u);
  EXPECT_EQ(s->active, 1u);

  EXPECT_EQ(take_all(*h.shard, *h.starts[0]), (std::vector<std::uint64_t>{1, 2, 3, 4, 5}));
  s = h.summary("example.com");
  EXPECT_EQ(s->ready, 0u);
  EXPECT_EQ(s->in_flight, 5u);
  EXPECT_EQ(h.shard->size(), 0u);  // size() counts waiting items only
}

TEST(QueueShard, FutureItemIsScheduledNotReady) {
  Harness h;
  const auto when = now_ms() + kHour;
  h.shard->add("example.com", make_item(1, now_ms(), when));
  EXPECT_TRUE(h.starts.empty());
  auto s = h.summary("example.com");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->scheduled, 1u);
  EXPECT_EQ(s->ready, 0u);
  EXPECT_EQ(h.shard->size(), 1u);
  auto items = h.shard->items("");
  ASSERT_EQ(items.size(), 1u);
  EXPECT_TRUE(items[0].scheduled);
  EXPECT_EQ(items[0].next_ms, when);
  EXPECT_EQ(items[0].destination, "example.com");

  // Running the loop for a while changes nothing: the item is an hour away.
  h.ctx.run_for(100ms);
  EXPECT_TRUE(h.starts.empty());
  EXPECT_EQ(h.summary("example.com")->scheduled, 1u);
}

TEST(QueueShard, ScheduledItemBecomesReadyWhenDueAndNotBefore) {
  Harness h(shaping(1));
  const auto when = now_ms() + 300;
  h.shard->add("example.com", make_item(1, now_ms(), when));
  EXPECT_TRUE(h.starts.empty());
  ASSERT_TRUE(h.run_until([&] { return !h.starts.empty(); }));
  EXPECT_GE(h.start_times[0], when);  // never early
  auto s = h.summary("example.com");
  EXPECT_EQ(s->scheduled, 0u);
  EXPECT_EQ(s->ready, 1u);
  auto it = h.shard->take(*h.starts[0]);
  ASSERT_TRUE(it);
  EXPECT_EQ(it->id.counter(), 1u);
  EXPECT_EQ(it->next_ms, when);
}

TEST(QueueShard, DueItemsBecomeReadyInTimeOrder) {
  Harness h(shaping(1));
  ASSERT_TRUE(h.shard->suspend("example.com"));  // keep them waiting in the ready queue
  const auto now = now_ms();
  h.shard->add("example.com", make_item(1, now, now + 300));
  h.shard->add("example.com", make_item(2, now, now + 100));
  h.shard->add("example.com", make_item(3, now, now + 200));
  h.shard->add("example.com", make_item(4, now, 0));  // ready at once
  EXPECT_EQ(h.summary("example.com")->ready, 1u);
  EXPECT_EQ(h.summary("example.com")->scheduled, 3u);
  ASSERT_TRUE(h.run_until([&] { return h.summary("example.com")->ready == 4; }));
  EXPECT_TRUE(h.starts.empty());  // suspended: nothing started
  ASSERT_TRUE(h.shard->resume("example.com"));
  ASSERT_EQ(h.starts.size(), 1u);
  EXPECT_EQ(take_all(*h.shard, *h.starts[0]), (std::vector<std::uint64_t>{4, 2, 3, 1}));
}

TEST(QueueShard, StartsOneConnectionPerReadyItemUpToMaxConnections) {
  Harness h(shaping(3));
  h.shard->add("a.example", make_item(1));
  EXPECT_EQ(h.starts.size(), 1u);
  h.shard->add("a.example", make_item(2));
  EXPECT_EQ(h.starts.size(), 2u);
  for (std::uint64_t i = 3; i <= 10; ++i) h.shard->add("a.example", make_item(i));
  EXPECT_EQ(h.starts.size(), 3u);
  EXPECT_EQ(h.summary("a.example")->active, 3u);
  // Another destination has its own limit.
  h.shard->add("b.example", make_item(11));
  EXPECT_EQ(h.starts.size(), 4u);
  EXPECT_EQ(h.starts.back()->name, "b.example");
}

TEST(QueueShard, NeverMoreThanMaxConnectionsWhileConnectionsComeAndGo) {
  constexpr unsigned kMax = 3;
  Harness h(shaping(kMax));
  unsigned open = 0, peak = 0;
  std::deque<Destination*> conns;  // simulated connections, round robin
  h.on_start = [&](Destination& d) {
    ++open;
    peak = std::max(peak, open);
    EXPECT_LE(d.active, kMax);
    conns.push_back(&d);
  };
  std::uint64_t next = 1, delivered = 0;
  for (; next <= 20; ++next) h.shard->add("example.com", make_item(next));
  EXPECT_EQ(open, kMax);
  // Each step one connection sends one message, or closes when there is none;
  // more mail arrives while they run. Closing lets the shard start another.
  int steps = 0;
  while (!conns.empty()) {
    ASSERT_LT(++steps, 10'000);
    Destination* d = conns.front();
    conns.pop_front();
    if (auto it = h.shard->take(*d)) {
      h.shard->finished(*d);
      ++delivered;
      conns.push_back(d);
      // Every fourth message a connection gives up early (as after an error).
      if (delivered % 4 == 0) {
        conns.pop_back();
        --open;
        h.shard->connection_closed(*d);
      }
    } else {
      --open;
      h.shard->connection_closed(*d);
    }
    if (steps % 5 == 0 && next <= 40) h.shard->add("example.com", make_item(next++));
    EXPECT_LE(open, kMax);
  }
  EXPECT_LE(peak, kMax);
  EXPECT_EQ(peak, kMax);
  EXPECT_EQ(delivered, next - 1);
  auto s = h.summary("example.com");
  EXPECT_EQ(s->ready, 0u);
  EXPECT_EQ(s->in_flight, 0u);
  EXPECT_EQ(s->active, 0u);
  EXPECT_EQ(h.shard->size(), 0u);
}

TEST(QueueShard, MaxConnectionsZeroMeansOne) {
  Harness h(shaping(0));
  for (std::uint64_t i = 1; i <= 4; ++i) h.shard->add("example.com", make_item(i));
  EXPECT_EQ(h.starts.size(), 1u);
  EXPECT_EQ(h.shard->default_shaping().max_connections, 1u);
}

TEST(QueueShard, SuspendedDestinationStartsNothingUntilResumed) {
  Harness h(shaping(2));
  EXPECT_TRUE(h.shard->suspend("example.com"));  // unknown yet: created
  auto s = h.summary("example.com");
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->suspended);
  for (std::uint64_t i = 1; i <= 5; ++i) h.shard->add("example.com", make_item(i));
  EXPECT_TRUE(h.starts.empty());
  EXPECT_EQ(h.summary("example.com")->ready, 5u);

  EXPECT_TRUE(h.shard->resume("example.com"));
  EXPECT_EQ(h.starts.size(), 2u);
  EXPECT_FALSE(h.summary("example.com")->suspended);
  EXPECT_FALSE(h.shard->resume("unknown.example"));
  EXPECT_FALSE(h.shard->flush("unknown.example"));
  EXPECT_FALSE(h.summary("unknown.example"));
}

TEST(QueueShard, SuspendStopsTakesOfRunningConnections) {
  Harness h(shaping(1));
  h.shard->add("example.com", make_item(1));
  h.shard->add("example.com", make_item(2));
  ASSERT_EQ(h.starts.size(), 1u);
  Destination& d = *h.starts[0];
  h.shard->suspend("example.com");
  EXPECT_FALSE(h.shard->take(d));
  h.shard->resume("example.com");
  EXPECT_EQ(h.starts.size(), 1u);  // the running connection is enough
  EXPECT_EQ(take_all(*h.shard, d), (std::vector<std::uint64_t>{1, 2}));
}

TEST(QueueShard, FlushMovesOnlyThatDestinationsScheduledItemsToReady) {
  Harness h(shaping(1));
  const auto later = now_ms() + kHour;
  h.shard->add("a.example", make_item(1, now_ms(), later));
  h.shard->add("a.example", make_item(2, now_ms(), later + 1));
  h.shard->add("b.example", make_item(3, now_ms(), later));
  EXPECT_TRUE(h.starts.empty());

  EXPECT_TRUE(h.shard->flush("a.example"));
  ASSERT_EQ(h.starts.size(), 1u);
  EXPECT_EQ(h.starts[0]->name, "a.example");
  auto a = h.summary("a.example");
  EXPECT_EQ(a->scheduled, 0u);
  EXPECT_EQ(a->ready, 2u);
  auto b = h.summary("b.example");
  EXPECT_EQ(b->scheduled, 1u);
  EXPECT_EQ(b->ready, 0u);
  EXPECT_EQ(take_all(*h.shard, *h.starts[0]), (std::vector<std::uint64_t>{1, 2}));
}

TEST(QueueShard, FlushOfSuspendedDestinationStartsNothing) {
  Harness h;
  h.shard->suspend("example.com");
  h.shard->add("example.com", make_item(1, now_ms(), now_ms() + kHour));
  EXPECT_TRUE(h.shard->flush("example.com"));
  EXPECT_TRUE(h.starts.empty());
  EXPECT_EQ(h.summary("example.com")->ready, 1u);
  h.shard->resume("example.com");
  EXPECT_EQ(h.starts.size(), 1u);
}

TEST(QueueShard, RetryLaterAndFinishedBookkeeping) {
  Harness h(shaping(1));
  h.shard->add("example.com", make_item(1));
  ASSERT_EQ(h.starts.size(), 1u);
  Destination& d = *h.starts[0];
  auto item = h.shard->take(d);
  ASSERT_TRUE(item);
  auto s = h.summary("example.com");
  EXPECT_EQ(s->ready, 0u);
  EXPECT_EQ(s->scheduled, 0u);
  EXPECT_EQ(s->in_flight, 1u);
  EXPECT_EQ(h.shard->size(), 0u);

  item->attempts = 1;
  const auto when = now_ms() + kHour;
  h.shard->retry_later(d, std::move(*item), when);
  s = h.summary("example.com");
  EXPECT_EQ(s->ready, 0u);
  EXPECT_EQ(s->scheduled, 1u);
  EXPECT_EQ(s->in_flight, 0u);
  EXPECT_EQ(h.shard->size(), 1u);
  auto items = h.shard->items("example.com");
  ASSERT_EQ(items.size(), 1u);
  EXPECT_TRUE(items[0].scheduled);
  EXPECT_EQ(items[0].attempts, 1u);
  EXPECT_EQ(items[0].next_ms, when);
  EXPECT_FALSE(h.shard->take(d));  // not due

  EXPECT_TRUE(h.shard->flush("example.com"));
  EXPECT_EQ(h.starts.size(), 1u);  // the open connection takes it
  item = h.shard->take(d);
  ASSERT_TRUE(item);
  EXPECT_EQ(item->attempts, 1u);
  EXPECT_EQ(h.summary("example.com")->in_flight, 1u);

  h.shard->finished(d);
  s = h.summary("example.com");
  EXPECT_EQ(s->in_flight, 0u);
  EXPECT_EQ(s->ready + s->scheduled, 0u);
  EXPECT_EQ(h.shard->size(), 0u);
  h.shard->finished(d);  // one too many: no underflow
  EXPECT_EQ(h.summary("example.com")->in_flight, 0u);

  EXPECT_EQ(h.summary("example.com")->active, 1u);
  h.shard->connection_closed(d);
  EXPECT_EQ(h.summary("example.com")->active, 0u);
  h.shard->connection_closed(d);  // no underflow either
  EXPECT_EQ(h.summary("example.com")->active, 0u);
}

TEST(QueueShard, RetriedItemComesBackWhenDue) {
  Harness h(shaping(1));
  h.shard->add("example.com", make_item(1));
  ASSERT_EQ(h.starts.size(), 1u);
  Destination& d = *h.starts[0];
  auto item = h.shard->take(d);
  ASSERT_TRUE(item);
  const auto when = now_ms() + 250;
  h.shard->retry_later(d, std::move(*item), when);
  EXPECT_FALSE(h.shard->take(d));
  h.shard->connection_closed(d);
  ASSERT_TRUE(h.run_until([&] { return h.starts.size() == 2; }));
  EXPECT_GE(h.start_times[1], when);
  item = h.shard->take(*h.starts[1]);
  ASSERT_TRUE(item);
  EXPECT_EQ(item->id.counter(), 1u);
}

TEST(QueueShard, DeferDestinationHoldsEverythingUntilTheBackoff) {
  Harness h(shaping(1));
  for (std::uint64_t i = 1; i <= 3; ++i) h.shard->add("example.com", make_item(i));
  ASSERT_EQ(h.starts.size(), 1u);
  Destination& d = *h.starts[0];
  auto taken = h.shard->take(d);
  ASSERT_TRUE(taken);

  const auto until = now_ms() + kHour;
  h.shard->defer_destination(d, until);
  auto s = h.summary("example.com");
  EXPECT_EQ(s->ready, 0u);
  EXPECT_EQ(s->scheduled, 2u);
  EXPECT_EQ(s->in_flight, 1u);
  EXPECT_FALSE(h.shard->take(d));

  // New mail and a retry asked for earlier both wait for the backoff too.
  h.shard->add("example.com", make_item(4));
  h.shard->retry_later(d, std::move(*taken), now_ms());
  s = h.summary("example.com");
  EXPECT_EQ(s->ready, 0u);
  EXPECT_EQ(s->scheduled, 4u);
  EXPECT_EQ(s->in_flight, 0u);
  for (const auto& v : h.shard->items("example.com")) {
    EXPECT_TRUE(v.scheduled);
    EXPECT_EQ(v.next_ms, until) << v.id.counter();
  }
  // An earlier defer does not shorten the backoff.
  h.shard->defer_destination(d, now_ms() + 1000);
  h.shard->add("example.com", make_item(5));
  for (const auto& v : h.shard->items("example.com")) EXPECT_EQ(v.next_ms, until);
  EXPECT_EQ(h.starts.size(), 1u);

  // flush ends the backoff: everything is ready, and so is new mail.
  EXPECT_TRUE(h.shard->flush("example.com"));
  EXPECT_EQ(h.summary("example.com")->ready, 5u);
  EXPECT_EQ(h.summary("example.com")->scheduled, 0u);
  h.shard->add("example.com", make_item(6));
  EXPECT_EQ(h.summary("example.com")->ready, 6u);
}

TEST(QueueShard, DeferredDestinationResumesAfterTheBackoff) {
  Harness h(shaping(1));
  h.shard->add("example.com", make_item(1));
  h.shard->add("example.com", make_item(2));
  ASSERT_EQ(h.starts.size(), 1u);
  Destination& d = *h.starts[0];
  const auto until = now_ms() + 250;
  h.shard->defer_destination(d, until);
  h.shard->connection_closed(d);  // as a failed connection does
  EXPECT_EQ(h.starts.size(), 1u);
  ASSERT_TRUE(h.run_until([&] { return h.starts.size() == 2; }));
  EXPECT_GE(h.start_times[1], until);
  EXPECT_EQ(take_all(*h.shard, *h.starts[1]), (std::vector<std::uint64_t>{1, 2}));
}

TEST(QueueShard, ExpiresItemsPastMaxAgeWhileTheyWaitInAReadyQueue) {
  Harness h(shaping(1), retry_policy(kHour));
  h.shard->suspend("slow.example");  // items stay in the ready queue
  const auto now = now_ms();
  h.shard->add("slow.example", make_item(1, now - 2 * kHour));  // past max_age
  h.shard->add("slow.example", make_item(2, now));              // fresh
  EXPECT_EQ(h.summary("slow.example")->ready, 2u);
  EXPECT_TRUE(h.expired.empty());  // only the periodic sweep expires

  ASSERT_TRUE(h.run_until([&] { return !h.expired.empty(); }));
  // The sweep that expired item 1 looked at item 2 too and kept it.
  ASSERT_EQ(h.expired.size(), 1u);
  EXPECT_EQ(h.expired[0].first->name, "slow.example");
  EXPECT_EQ(h.expired[0].second.id.counter(), 1u);
  auto s = h.summary("slow.example");
  EXPECT_EQ(s->ready, 1u);
  EXPECT_EQ(s->in_flight, 1u);  // expiring counts as in flight until finished()
  EXPECT_EQ(h.shard->size(), 1u);
  h.shard->finished(*h.expired[0].first);
  EXPECT_EQ(h.summary("slow.example")->in_flight, 0u);
  EXPECT_TRUE(h.starts.empty());
}

TEST(QueueShard, TinyMaxAgeExpiresAWaitingItemSoonAfterItsDeadline) {
  constexpr std::int64_t kMaxAge = 200;
  Harness h(shaping(1), retry_policy(kMaxAge));
  h.shard->suspend("slow.example");
  const auto received = now_ms();
  h.shard->add("slow.example", make_item(1, received));
  ASSERT_TRUE(h.run_until([&] { return !h.expired.empty(); }));
  ASSERT_EQ(h.expired.size(), 1u);
  EXPECT_EQ(h.expired[0].second.id.counter(), 1u);
  EXPECT_GE(h.expire_times[0] - received, kMaxAge);  // never before max_age
  EXPECT_TRUE(h.shard->policy().expired(received, h.expire_times[0]));
  EXPECT_EQ(h.summary("slow.example")->ready, 0u);
}

TEST(QueueShard, ExpiryAlsoSweepsItemsThrottledByTheMessageRate) {
  Shaping s = shaping(1);
  s.message_rate = ratelimit::RateLimit(1.0 / 3600, 1);  // one message an hour
  Harness h(s, retry_policy(kHour));
  h.shard->add("slow.example", make_item(1));
  ASSERT_EQ(h.starts.size(), 1u);
  ASSERT_TRUE(h.shard->take(*h.starts[0]));
  h.shard->add("slow.example", make_item(2, now_ms() - 2 * kHour));
  EXPECT_FALSE(h.shard->take(*h.starts[0]));  // throttled
  ASSERT_TRUE(h.run_until([&] { return !h.expired.empty(); }));
  EXPECT_EQ(h.expired[0].second.id.counter(), 2u);
}

TEST(QueueShard, MessageRateLimitsTakesAndStarts) {
  Shaping s = shaping(5);
  s.message_rate = ratelimit::RateLimit(1.0 / 3600, 2);  // burst of 2, then one an hour
  Harness h(s);
  h.shard->add("example.com", make_item(1));
  ASSERT_EQ(h.starts.size(), 1u);
  Destination& d = *h.starts[0];
  for (std::uint64_t i = 2; i <= 4; ++i) h.shard->add("example.com", make_item(i));
  EXPECT_TRUE(h.shard->take(d));
  EXPECT_TRUE(h.shard->take(d));
  EXPECT_FALSE(h.shard->take(d));  // two ready, but the rate says wait
  EXPECT_EQ(h.summary("example.com")->ready, 2u);
  const auto started = h.starts.size();
  h.shard->add("example.com", make_item(5));
  EXPECT_EQ(h.starts.size(), started);  // no new connection while throttled
}

TEST(QueueShard, ShaperHoldsConnectionStartsUntilShapingIsReady) {
  Harness h(shaping(2));
  bool current = false;
  Destination* pending = nullptr;
  h.shard->set_shaper([&](Destination& d) {
    if (!current) pending = &d;
    return current;
  });
  h.shard->add("example.com", make_item(1));
  EXPECT_TRUE(h.starts.empty());
  ASSERT_NE(pending, nullptr);
  current = true;
  h.shard->shaping_ready(*pending);
  EXPECT_EQ(h.starts.size(), 1u);
}

TEST(QueueShard, NewMailWakesAParkedConnectionInsteadOfStartingOne) {
  Harness h(shaping(4));
  h.shard->add("example.com", make_item(1));
  ASSERT_EQ(h.starts.size(), 1u);
  Destination& d = *h.starts[0];
  ASSERT_TRUE(h.shard->take(d));
  h.shard->finished(d);
  ASSERT_FALSE(h.shard->take(d));
  auto idle = std::make_shared<asio::steady_timer>(h.ctx, std::chrono::hours(1));
  bool woken = false;
  idle->async_wait([&](std::error_code ec) { woken = ec == asio::error::operation_aborted; });
  h.shard->park(d, idle);

  h.shard->add("example.com", make_item(2));
  EXPECT_EQ(h.starts.size(), 1u);  // reused, not a second connection
  ASSERT_TRUE(h.run_until([&] { return woken; }));
  h.shard->unpark(d, idle);  // the woken connection unparks (a no-op now) and takes
  auto it = h.shard->take(d);
  ASSERT_TRUE(it);
  EXPECT_EQ(it->id.counter(), 2u);
}

TEST(QueueShard, UnparkedConnectionIsNotWoken) {
  Harness h(shaping(4));
  h.shard->add("example.com", make_item(1));
  ASSERT_EQ(h.starts.size(), 1u);
  Destination& d = *h.starts[0];
  ASSERT_TRUE(h.shard->take(d));
  h.shard->finished(d);
  auto idle = std::make_shared<asio::steady_timer>(h.ctx, std::chrono::hours(1));
  bool completed = false;
  idle->async_wait([&](std::error_code) { completed = true; });
  h.shard->park(d, idle);
  h.shard->unpark(d, idle);  // its own timeout came first
  h.shard->add("example.com", make_item(2));
  h.shard->add("example.com", make_item(3));
  // Nothing parked: the shard starts a connection for the extra ready item
  // and leaves the unparked timer alone.
  EXPECT_EQ(h.starts.size(), 2u);
  h.ctx.poll();
  h.ctx.poll();
  EXPECT_FALSE(completed);
  idle->cancel();
}

TEST(QueueShard, ExtractRemovesWaitingItemsAndCountsThemInFlight) {
  Harness h(shaping(1));
  h.shard->suspend("a.example");
  h.shard->add("a.example", make_item(1));
  h.shard->add("a.example", make_item(2));
  h.shard->add("a.example", make_item(3, now_ms(), now_ms() + kHour));
  h.shard->suspend("b.example");
  h.shard->add("b.example", make_item(4));
  h.shard->add("b.example", make_item(5));
  EXPECT_EQ(h.shard->size(), 5u);
  EXPECT_EQ(h.shard->items("").size(), 5u);
  EXPECT_EQ(h.shard->items("a.example").size(), 3u);

  auto out = h.shard->extract("a.example", nullptr);
  ASSERT_EQ(out.size(), 3u);
  for (auto& [d, item] : out) EXPECT_EQ(d->name, "a.example");
  auto a = h.summary("a.example");
  EXPECT_EQ(a->ready + a->scheduled, 0u);
  EXPECT_EQ(a->in_flight, 3u);
  EXPECT_EQ(h.shard->size(), 2u);

  const auto id5 = spool::MessageId::make(0, 0, 5);  // matches nothing (other millis)
  EXPECT_TRUE(h.shard->extract("", &id5).empty());
  const auto items = h.shard->items("b.example");
  ASSERT_EQ(items.size(), 2u);
  const auto id = items[1].id;
  out = h.shard->extract("", &id);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].second.id, id);
  EXPECT_EQ(h.summary("b.example")->ready, 1u);
  EXPECT_EQ(h.summary("b.example")->in_flight, 1u);
  EXPECT_EQ(h.shard->size(), 1u);
}

TEST(QueueShard, SummaryReportsTheOldestReception) {
  Harness h;
  h.shard->suspend("example.com");
  const auto now = now_ms();
  h.shard->add("example.com", make_item(1, now - 5000));
  h.shard->add("example.com", make_item(2, now - 9000, now + kHour));  // scheduled, older
  h.shard->add("example.com", make_item(3, now - 1000));
  EXPECT_EQ(h.summary("example.com")->oldest_ms, now - 9000);
  h.shard->suspend("empty.example");
  EXPECT_EQ(h.summary("empty.example")->oldest_ms, 0);
}

TEST(QueueShard, StoppedShardTakesNothingAndAcceptsNothing) {
  Harness h(shaping(1));
  h.shard->add("example.com", make_item(1));
  ASSERT_EQ(h.starts.size(), 1u);
  Destination& d = *h.starts[0];
  h.shard->stop();
  EXPECT_TRUE(h.shard->stopped());
  EXPECT_FALSE(h.shard->take(d));
  h.shard->add("example.com", make_item(2));
  EXPECT_EQ(h.shard->size(), 1u);  // the new one was not queued
  EXPECT_EQ(h.starts.size(), 1u);
}

// One message delivered: start, take, settle, close (as a connection does).
void deliver_one(Harness& h, const std::string& name, std::uint64_t counter) {
  const auto before = h.starts.size();
  h.shard->add(name, make_item(counter));
  ASSERT_EQ(h.starts.size(), before + 1) << name;
  Destination& d = *h.starts.back();
  ASSERT_TRUE(h.shard->take(d));
  h.shard->finished(d);
  h.shard->connection_closed(d);
}

TEST(QueueShard, TenThousandOneMessageDestinationsAreRemovedOnceIdle) {
  Harness h;
  h.shard->set_idle_removal(0ms);
  constexpr std::uint64_t kDestinations = 10'000;
  for (std::uint64_t i = 0; i < kDestinations; ++i)
    deliver_one(h, "d" + std::to_string(i) + ".example", i + 1);
  EXPECT_EQ(h.shard->destinations(), kDestinations);
  EXPECT_EQ(h.shard->totals().destinations, kDestinations);
  h.starts.clear();  // those pointers are about to dangle

  // What must stay: a suspension, a backoff in force, a scheduled item, an
  // item in flight, an open connection.
  h.shard->suspend("suspended.example");
  h.shard->add("backoff.example", make_item(20'001));
  Destination& backoff = *h.starts.back();
  ASSERT_TRUE(h.shard->take(backoff));
  h.shard->finished(backoff);
  h.shard->defer_destination(backoff, now_ms() + kHour);
  h.shard->connection_closed(backoff);
  h.shard->add("scheduled.example", make_item(20'002, now_ms(), now_ms() + kHour));
  h.shard->add("inflight.example", make_item(20'003));
  Destination& inflight = *h.starts.back();
  ASSERT_TRUE(h.shard->take(inflight));
  h.shard->connection_closed(inflight);
  h.shard->add("connected.example", make_item(20'004));
  Destination& connected = *h.starts.back();
  ASSERT_TRUE(h.shard->take(connected));
  h.shard->finished(connected);  // the connection stays open

  ASSERT_TRUE(h.run_until([&] { return h.shard->destinations() == 5; }, 10s))
      << h.shard->destinations();
  std::set<std::string> left;
  for (const auto& s : h.shard->summary()) left.insert(s.name);
  EXPECT_EQ(left,
            (std::set<std::string>{"suspended.example", "backoff.example", "scheduled.example",
                                   "inflight.example", "connected.example"}));
  EXPECT_EQ(h.shard->totals().destinations, 5u);

  // Once they are done with, they go too; a resumed destination as well.
  h.shard->resume("suspended.example");
  h.shard->finished(inflight);
  h.shard->connection_closed(connected);
  ASSERT_TRUE(h.run_until([&] { return h.shard->destinations() == 2; }, 10s));
  EXPECT_TRUE(h.summary("backoff.example"));
  EXPECT_TRUE(h.summary("scheduled.example"));
  // A removed destination comes back as new when mail comes.
  deliver_one(h, "d1.example", 30'000);
  EXPECT_EQ(h.shard->destinations(), 3u);
}

TEST(QueueShard, DestinationIsKeptForTheIdlePeriod) {
  Harness h;
  h.shard->set_idle_removal(1500ms);
  deliver_one(h, "a.example", 1);
  const auto idle_from = std::chrono::steady_clock::now();
  ASSERT_TRUE(h.run_until([&] { return h.shard->destinations() == 0; }, 10s));
  EXPECT_GE(std::chrono::steady_clock::now() - idle_from, 1500ms);
}

TEST(QueueShard, RateLimitedDestinationStaysUntilItsLimiterIsFull) {
  Shaping s = shaping(1);
  s.message_rate = ratelimit::RateLimit(0.5, 1);  // one message per 2 s
  Harness h(s);
  h.shard->set_idle_removal(0ms);
  const auto t0 = std::chrono::steady_clock::now();
  deliver_one(h, "slow.example", 1);
  ASSERT_TRUE(h.run_until([&] { return h.shard->destinations() == 0; }, 10s));
  // Removing it earlier would have let a second message through too soon.
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 1900ms);
}

// The old way of computing the gauges: a walk over every waiting item.
ShardTotals recount(const QueueShard& shard) {
  ShardTotals t;
  std::map<std::string, bool> suspended;
  for (const auto& s : shard.summary()) {
    suspended[s.name] = s.suspended;
    t.in_flight += s.in_flight;
    ++t.destinations;
  }
  for (const auto& v : shard.items("")) {
    (suspended[v.destination] ? t.suspended : v.scheduled ? t.scheduled : t.ready) += 1;
    const auto ms = static_cast<std::int64_t>(v.id.millis());
    if (t.oldest_ms == 0 || ms < t.oldest_ms) t.oldest_ms = ms;
  }
  return t;
}

void expect_totals_right(const QueueShard& shard, const char* when) {
  const auto t = shard.totals(), r = recount(shard);
  EXPECT_EQ(t.destinations, r.destinations) << when;
  EXPECT_EQ(t.ready, r.ready) << when;
  EXPECT_EQ(t.scheduled, r.scheduled) << when;
  EXPECT_EQ(t.in_flight, r.in_flight) << when;
  EXPECT_EQ(t.suspended, r.suspended) << when;
  EXPECT_EQ(t.oldest_ms, r.oldest_ms) << when;
  for (const auto& s : shard.summary()) {  // per destination too
    std::int64_t oldest = 0;
    for (const auto& v : shard.items(s.name)) {
      const auto ms = static_cast<std::int64_t>(v.id.millis());
      if (oldest == 0 || ms < oldest) oldest = ms;
    }
    EXPECT_EQ(s.oldest_ms, oldest) << when << " " << s.name;
  }
}

TEST(QueueShard, TotalsStayRightAsItemsMove) {
  Harness h(shaping(1), retry_policy(kHour));
  const auto now = now_ms();
  h.shard->add("a.example", make_item(1, now - 5000));
  h.shard->add("a.example", make_item(2, now - 9000));
  h.shard->add("a.example", make_item(3, now - 7000, now + kHour));
  h.shard->add("b.example", make_item(4, now - 8000, now + kHour));
  h.shard->suspend("c.example");
  h.shard->add("c.example", make_item(5, now - 1000));
  h.shard->add("c.example", make_item(6, now - 1000));  // the same reception ms
  expect_totals_right(*h.shard, "added");
  auto t = h.shard->totals();
  EXPECT_EQ(t.ready, 2u);
  EXPECT_EQ(t.scheduled, 2u);
  EXPECT_EQ(t.suspended, 2u);
  EXPECT_EQ(t.oldest_ms, now - 9000);

  Destination& a = *h.starts.at(0);
  auto first = h.shard->take(a);   // 1
  auto second = h.shard->take(a);  // 2, the oldest
  ASSERT_TRUE(first && second);
  expect_totals_right(*h.shard, "taken");
  EXPECT_EQ(h.shard->totals().oldest_ms, now - 8000);
  h.shard->retry_later(a, std::move(*second), now + kHour);
  expect_totals_right(*h.shard, "retried");
  EXPECT_EQ(h.shard->totals().oldest_ms, now - 9000);
  h.shard->defer_destination(a, now + 2 * kHour);
  h.shard->flush("b.example");
  expect_totals_right(*h.shard, "deferred and flushed");
  EXPECT_EQ(h.shard->extract("a.example", nullptr).size(), 2u);
  expect_totals_right(*h.shard, "extracted");
  EXPECT_EQ(h.shard->totals().in_flight, 3u);
  h.shard->resume("c.example");
  expect_totals_right(*h.shard, "resumed");
  EXPECT_EQ(h.shard->totals().suspended, 0u);
  // Expiry sweeps a waiting item past max_age (an hour here).
  h.shard->suspend("old.example");
  h.shard->add("old.example", make_item(7, now - 2 * kHour));
  EXPECT_EQ(h.shard->totals().oldest_ms, now - 2 * kHour);
  ASSERT_TRUE(h.run_until([&] { return h.expired.size() == 1; }));
  expect_totals_right(*h.shard, "expired");
  EXPECT_NE(h.shard->totals().oldest_ms, now - 2 * kHour);
}

TEST(QueueShard, ItemStateReportsTheRealNextAttempt) {
  Harness h(shaping(1));
  const auto now = now_ms();
  h.shard->add("example.com", make_item(1, now));
  h.shard->add("example.com", make_item(2, now));
  h.shard->add("example.com", make_item(3, now, now + 60'000));  // its own retry in a minute
  Destination& d = *h.starts.at(0);
  auto taken = h.shard->take(d);
  ASSERT_TRUE(taken);
  const auto ready = h.shard->item_state("example.com", make_item(2, now).id);
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->where, ItemState::Where::Ready);
  EXPECT_LE(ready->next_ms, now_ms());
  EXPECT_EQ(h.shard->item_state("example.com", taken->id)->where, ItemState::Where::InFlight);
  EXPECT_FALSE(h.shard->item_state("unknown.example", taken->id));

  // The connection is refused: the whole destination waits an hour.
  const auto until = now_ms() + kHour;
  h.shard->defer_destination(d, until);
  for (const auto& v : h.shard->items("example.com")) {
    const auto st = h.shard->item_state("example.com", v.id);
    ASSERT_TRUE(st) << v.id.counter();
    EXPECT_EQ(st->where, ItemState::Where::Scheduled);
    EXPECT_EQ(st->next_ms, until) << v.id.counter();  // item 3's minute included
    EXPECT_EQ(v.next_ms, until);
  }
  h.shard->suspend("example.com");
  EXPECT_TRUE(h.shard->item_state("example.com", taken->id)->suspended);
}

TEST(QueueShard, ItemDueDuringABackoffWaitsForIt) {
  Harness h(shaping(1));
  const auto now = now_ms();
  h.shard->add("example.com", make_item(1));
  Destination& d = *h.starts.at(0);
  h.shard->add("example.com", make_item(2, now, now + 100));  // due soon
  auto taken = h.shard->take(d);
  ASSERT_TRUE(taken);
  const auto until = now_ms() + 600;
  h.shard->defer_destination(d, until);  // after item 2 was scheduled
  h.shard->retry_later(d, std::move(*taken), until);
  h.shard->connection_closed(d);
  ASSERT_TRUE(h.run_until([&] { return h.starts.size() == 2; }));
  EXPECT_GE(h.start_times[1], until);  // item 2 did not start a connection at +100 ms
  EXPECT_EQ(take_all(*h.shard, *h.starts[1]).size(), 2u);
}

}  // namespace
}  // namespace mailgate::queue
