// Tests of queue/retry_policy: the backoff starts at `first`, doubles per
// attempt up to `max` (±20 % jitter on top, as the README says), never goes
// below 1 ms, is reproducible for a given random source; expired() and
// deadline() count from the reception time with `max_age`.
#include "queue/retry_policy.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <limits>
#include <random>

namespace mailgate::queue {
namespace {

using std::chrono::milliseconds;

RetryPolicy policy(std::int64_t first, std::int64_t max, std::int64_t max_age) {
  RetryPolicy p;
  p.first = milliseconds(first);
  p.max = milliseconds(max);
  p.max_age = milliseconds(max_age);
  return p;
}

// Every delay of `samples` draws is within [0.8, 1.2] x `base` (rounded down),
// and the draws really spread on both sides of `base`.
void expect_jittered_around(const RetryPolicy& p, std::uint32_t attempts, double base,
                            std::uint64_t seed, int samples = 2000) {
  std::mt19937_64 rng(seed);
  std::int64_t lo = std::numeric_limits<std::int64_t>::max(), hi = 0;
  for (int i = 0; i < samples; ++i) {
    const auto d = p.delay_after(attempts, rng).count();
    lo = std::min(lo, d);
    hi = std::max(hi, d);
  }
  SCOPED_TRACE("attempts=" + std::to_string(attempts));
  EXPECT_GE(lo, static_cast<std::int64_t>(base * 0.8) - 1);
  EXPECT_LE(hi, static_cast<std::int64_t>(base * 1.2));
  EXPECT_LT(lo, static_cast<std::int64_t>(base * 0.9));  // jitter below ...
  EXPECT_GT(hi, static_cast<std::int64_t>(base * 1.1));  // ... and above the base
}

TEST(RetryPolicy, DefaultsAreOneMinuteOneHourFiveDays) {
  RetryPolicy p;
  EXPECT_EQ(p.first, milliseconds(60'000));
  EXPECT_EQ(p.max, milliseconds(3'600'000));
  EXPECT_EQ(p.max_age, milliseconds(5ll * 24 * 3'600'000));
}

TEST(RetryPolicy, FirstRetryIsFirstWithJitter) {
  expect_jittered_around(policy(60'000, 3'600'000, 86'400'000), 1, 60'000, 1);
}

TEST(RetryPolicy, ZeroAttemptsIsTreatedLikeOne) {
  expect_jittered_around(policy(60'000, 3'600'000, 86'400'000), 0, 60'000, 2);
}

TEST(RetryPolicy, DelayDoublesWithEachAttempt) {
  const auto p = policy(1'000, 3'600'000, 86'400'000);
  double base = 1'000;
  for (std::uint32_t attempts = 1; attempts <= 8; ++attempts, base *= 2)
    expect_jittered_around(p, attempts, base, 100 + attempts);
}

TEST(RetryPolicy, DelayGrowsMonotonicallyOnAverage) {
  const auto p = policy(1'000, 3'600'000, 86'400'000);
  double previous = 0;
  for (std::uint32_t attempts = 1; attempts <= 10; ++attempts) {
    std::mt19937_64 rng(7);
    double total = 0;
    for (int i = 0; i < 1000; ++i)
      total += static_cast<double>(p.delay_after(attempts, rng).count());
    const double mean = total / 1000;
    EXPECT_GT(mean, previous * 1.8) << "attempts=" << attempts;
    previous = mean;
  }
}

TEST(RetryPolicy, DelayIsCappedAtMax) {
  const auto p = policy(60'000, 3'600'000, 86'400'000);
  // 60 s * 2^6 = 3840 s > 1 h: from the 7th attempt on the base is the cap.
  for (std::uint32_t attempts :
       {7u, 8u, 12u, 40u, 41u, 1000u, std::numeric_limits<std::uint32_t>::max()})
    expect_jittered_around(p, attempts, 3'600'000, attempts);
}

TEST(RetryPolicy, CapBelowFirstWins) {
  // A max smaller than first: every delay is max (with jitter).
  const auto p = policy(60'000, 10'000, 86'400'000);
  for (std::uint32_t attempts : {1u, 2u, 30u})
    expect_jittered_around(p, attempts, 10'000, attempts);
}

TEST(RetryPolicy, DelayIsAtLeastOneMillisecond) {
  const auto p = policy(0, 0, 1'000);
  std::mt19937_64 rng(3);
  for (std::uint32_t attempts = 0; attempts < 50; ++attempts)
    EXPECT_EQ(p.delay_after(attempts, rng), milliseconds(1));
}

TEST(RetryPolicy, SameRandomSourceGivesSameDelays) {
  const auto p = policy(60'000, 3'600'000, 86'400'000);
  std::mt19937_64 a(42), b(42);
  for (std::uint32_t attempts = 1; attempts < 20; ++attempts)
    EXPECT_EQ(p.delay_after(attempts, a), p.delay_after(attempts, b));
}

TEST(RetryPolicy, ExpiredAtExactlyMaxAge) {
  const auto p = policy(60'000, 3'600'000, 5'000);
  const std::int64_t received = 1'700'000'000'000;
  EXPECT_FALSE(p.expired(received, received));
  EXPECT_FALSE(p.expired(received, received + 4'999));
  EXPECT_TRUE(p.expired(received, received + 5'000));
  EXPECT_TRUE(p.expired(received, received + 86'400'000));
  // A clock that went backwards does not expire anything.
  EXPECT_FALSE(p.expired(received, received - 10'000));
}

TEST(RetryPolicy, DeadlineIsReceptionPlusMaxAge) {
  const auto p = policy(60'000, 3'600'000, 5ll * 24 * 3'600'000);
  const std::int64_t received = 1'700'000'000'000;
  EXPECT_EQ(p.deadline(received), received + 5ll * 24 * 3'600'000);
  // The deadline is the first moment expired() is true.
  EXPECT_FALSE(p.expired(received, p.deadline(received) - 1));
  EXPECT_TRUE(p.expired(received, p.deadline(received)));
}

}  // namespace
}  // namespace mailgate::queue
