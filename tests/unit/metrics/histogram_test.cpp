// Tests of metrics/histogram: each observation lands in the first bucket
// whose upper bound is >= the value (Prometheus "le"), larger ones in +Inf;
// sum and count; add_to() initialises an empty snapshot and merges the
// per-worker histograms; snapshots taken while a writer observes never see
// a bucket go down; the shared bucket sets are ascending.
#include "metrics/histogram.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <limits>
#include <thread>
#include <vector>

namespace mailgate::metrics {
namespace {

using Counts = std::vector<std::uint64_t>;

HistogramSnapshot snapshot(const Histogram& h) {
  HistogramSnapshot s;
  h.add_to(s);
  return s;
}

TEST(Histogram, EmptySnapshotIsInitialisedFromTheBounds) {
  Histogram h({1, 2, 5});
  const auto s = snapshot(h);
  EXPECT_EQ(s.bounds, (std::vector<double>{1, 2, 5}));
  EXPECT_EQ(s.bucket_counts, (Counts{0, 0, 0, 0}));  // one more: +Inf
  EXPECT_EQ(s.count, 0u);
  EXPECT_EQ(s.sum, 0);
}

TEST(Histogram, ValuesLandInTheFirstBucketWhoseBoundIsNotBelow) {
  Histogram h({1, 2, 5});
  for (double v : {-3.0, 0.0, 0.5, 1.0})  // <= 1 (bounds are inclusive, as "le")
    h.observe(v);
  for (double v : {1.0000001, 2.0}) h.observe(v);  // (1, 2]
  for (double v : {4.99, 5.0}) h.observe(v);       // (2, 5]
  for (double v : {5.01, 1e9}) h.observe(v);       // +Inf
  const auto s = snapshot(h);
  EXPECT_EQ(s.bucket_counts, (Counts{4, 2, 2, 2}));
  EXPECT_EQ(s.count, 10u);
  EXPECT_DOUBLE_EQ(s.sum, -3.0 + 0 + 0.5 + 1 + 1.0000001 + 2 + 4.99 + 5 + 5.01 + 1e9);
}

TEST(Histogram, InfiniteValueGoesToTheLastBucket) {
  Histogram h({1});
  h.observe(std::numeric_limits<double>::infinity());
  const auto s = snapshot(h);
  EXPECT_EQ(s.bucket_counts, (Counts{0, 1}));
  EXPECT_EQ(s.count, 1u);
}

TEST(Histogram, NoBoundsMeansOneInfBucket) {
  Histogram h({});
  h.observe(3);
  h.observe(4);
  const auto s = snapshot(h);
  EXPECT_TRUE(s.bounds.empty());
  EXPECT_EQ(s.bucket_counts, (Counts{2}));
  EXPECT_EQ(s.sum, 7);
}

TEST(Histogram, AddToMergesPerWorkerHistograms) {
  const std::vector<double> bounds{0.1, 1, 10};
  Histogram a(bounds), b(bounds), c(bounds);
  a.observe(0.05);
  a.observe(5);
  b.observe(0.5);
  b.observe(0.5);
  b.observe(50);
  // c stays empty.
  HistogramSnapshot s;
  a.add_to(s);
  b.add_to(s);
  c.add_to(s);
  EXPECT_EQ(s.bounds, bounds);
  EXPECT_EQ(s.bucket_counts, (Counts{1, 2, 1, 1}));
  EXPECT_EQ(s.count, 5u);
  EXPECT_DOUBLE_EQ(s.sum, 0.05 + 5 + 0.5 + 0.5 + 50);
  // The bucket counts add up to the count.
  std::uint64_t total = 0;
  for (auto n : s.bucket_counts) total += n;
  EXPECT_EQ(total, s.count);
}

TEST(Histogram, AddToAccumulatesIntoAFilledSnapshot) {
  Histogram h({1, 2});
  h.observe(1.5);
  HistogramSnapshot s;
  h.add_to(s);
  h.add_to(s);  // twice: doubled, bounds kept
  EXPECT_EQ(s.bounds, (std::vector<double>{1, 2}));
  EXPECT_EQ(s.bucket_counts, (Counts{0, 2, 0}));
  EXPECT_EQ(s.count, 2u);
  EXPECT_DOUBLE_EQ(s.sum, 3.0);
}

TEST(Histogram, SnapshotsWhileObservingNeverGoDown) {
  constexpr int kObservations = 200'000;
  Histogram h({1, 2, 3});
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (int i = 0; i < kObservations; ++i) h.observe(static_cast<double>(i % 4) + 0.5);
    done = true;
  });
  HistogramSnapshot previous = snapshot(h);
  int snapshots = 0;
  while (!done || snapshots < 10) {
    const auto s = snapshot(h);
    ASSERT_EQ(s.bucket_counts.size(), 4u);
    for (std::size_t i = 0; i < 4; ++i)
      ASSERT_GE(s.bucket_counts[i], previous.bucket_counts[i]) << "bucket " << i;
    ASSERT_GE(s.count, previous.count);
    ASSERT_GE(s.sum, previous.sum);
    previous = s;
    ++snapshots;
  }
  writer.join();
  const auto s = snapshot(h);
  EXPECT_EQ(s.bucket_counts,
            (Counts{kObservations / 4, kObservations / 4, kObservations / 4, kObservations / 4}));
  EXPECT_EQ(s.count, static_cast<std::uint64_t>(kObservations));
  EXPECT_DOUBLE_EQ(s.sum, (0.5 + 1.5 + 2.5 + 3.5) * kObservations / 4);
}

TEST(BucketSets, AreStrictlyAscendingAndSpanTheirDocumentedRanges) {
  struct Set {
    const char* name;
    std::vector<double> bounds;
    double first, last;
  };
  const Set sets[] = {
      {"spool_write", spool_write_buckets(), 0.00005, 1},
      {"batch_size", batch_size_buckets(), 1, 1024},
      {"delivery", delivery_buckets(), 0.01, 300},
      {"queue_delay", queue_delay_buckets(), 0.1, 5 * 86400.0},
      {"hook", hook_buckets(), 0.00001, 10},
  };
  for (const auto& set : sets) {
    SCOPED_TRACE(set.name);
    ASSERT_FALSE(set.bounds.empty());
    EXPECT_DOUBLE_EQ(set.bounds.front(), set.first);
    EXPECT_DOUBLE_EQ(set.bounds.back(), set.last);
    for (std::size_t i = 1; i < set.bounds.size(); ++i)
      EXPECT_LT(set.bounds[i - 1], set.bounds[i]) << "at " << i;
    for (double b : set.bounds) EXPECT_TRUE(std::isfinite(b));
  }
}

}  // namespace
}  // namespace mailgate::metrics
