// Unit tests for ratelimit/rate_limit: the local backend is the Gcra, a
// shared one is whatever its RateBackend made (one per limit, copies
// share it), and SharedLimiter (mailgate.ratelimit.check) asks its backend
// once per key and then goes through that key's shared limit.
#include "ratelimit/rate_limit.hpp"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>

#include "ratelimit/shared_limiter.hpp"

namespace mailgate::ratelimit {
namespace {

// A shared limit that admits `tokens` events, then says "wait 7 µs".
struct FakeShared : SharedRate {
  int tokens = 0;
  int asked = 0;
  std::int64_t acquire(std::int64_t) override {
    ++asked;
    if (tokens == 0) return 7;
    --tokens;
    return 0;
  }
  std::int64_t wait_us(std::int64_t) override { return tokens ? 0 : 7; }
  std::int64_t idle_at_us() const override { return 42; }
};

struct FakeBackend : RateBackend {
  std::map<std::string, std::shared_ptr<FakeShared>> made;
  int tokens_each = 3;
  std::shared_ptr<SharedRate> make(RateKind kind, std::string_view key, double,
                                   std::uint32_t) override {
    auto s = std::make_shared<FakeShared>();
    s->tokens = tokens_each;
    made[std::string(rate_kind_name(kind)) + ":" + std::string(key)] = s;
    return s;
  }
};

TEST(RateLimit, DefaultIsUnlimitedAndLocalIsTheGcra) {
  RateLimit none;
  EXPECT_TRUE(none.unlimited());
  EXPECT_FALSE(none.shared());
  for (int i = 0; i < 100; ++i) EXPECT_EQ(none.acquire(0), 0);
  RateLimit local(20, 1);  // one every 50 ms
  EXPECT_FALSE(local.unlimited());
  EXPECT_EQ(local.acquire(0), 0);
  EXPECT_EQ(local.wait_us(0), 50'000);
  EXPECT_EQ(local.acquire(10'000), 40'000);
  EXPECT_EQ(local.idle_at_us(), 50'000);
  EXPECT_TRUE(RateLimit(0, 5).unlimited());
}

TEST(RateLimit, SharedGoesThroughItsBackendAndCopiesShareIt) {
  FakeBackend backend;
  RateLimit limit(10, 2, &backend, RateKind::MessageRate, "src|d.test");
  ASSERT_TRUE(limit.shared());
  EXPECT_FALSE(limit.unlimited());
  ASSERT_EQ(backend.made.count("message_rate:src|d.test"), 1u);
  RateLimit copy = limit;
  EXPECT_EQ(limit.acquire(0), 0);
  EXPECT_EQ(copy.acquire(0), 0);
  EXPECT_EQ(limit.acquire(0), 0);
  EXPECT_EQ(copy.acquire(0), 7);  // the three tokens were one reserve
  EXPECT_EQ(copy.wait_us(0), 7);
  EXPECT_EQ(limit.idle_at_us(), 42);
  EXPECT_EQ(backend.made.begin()->second->asked, 4);
  // An unlimited rate never asks the backend.
  EXPECT_TRUE(RateLimit(0, 1, &backend, RateKind::SiteRate, "x").unlimited());
  EXPECT_EQ(backend.made.size(), 1u);
}

TEST(SharedLimiter, WithABackendEachKeyIsOneSharedLimit) {
  FakeBackend backend;
  backend.tokens_each = 2;
  SharedLimiter limiter;
  limiter.set_backend(&backend);
  EXPECT_TRUE(limiter.check("k1", 1000, 10, 0));  // a local Gcra would admit 10
  EXPECT_TRUE(limiter.check("k1", 1000, 10, 0));
  EXPECT_FALSE(limiter.check("k1", 1000, 10, 0));  // the shared limit's answer
  EXPECT_TRUE(limiter.check("k2", 1000, 10, 0));
  ASSERT_EQ(backend.made.size(), 2u);
  EXPECT_EQ(backend.made["lua:k1"]->asked, 3);
  // A key is dropped once its limit says it holds nothing (idle_at 42):
  // its next check makes a new one.
  EXPECT_TRUE(limiter.check("k1", 1000, 10, 100));
  EXPECT_EQ(backend.made["lua:k1"]->asked, 1);
}

}  // namespace
}  // namespace mailgate::ratelimit
