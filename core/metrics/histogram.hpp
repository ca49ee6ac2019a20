// metrics/histogram: a lock-free histogram for hot paths (DESIGN §3: hot-path
// metrics are per worker and summed at scrape time, because prometheus-cpp
// 1.0's Histogram::Observe takes a mutex). One writer thread per instance
// (its worker or the spool writer); any thread may read it.
// Promises: observe() is a few relaxed atomic adds; a snapshot may be a
// moment behind the writer but its bucket counts never decrease.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

namespace mailgate::metrics {

struct HistogramSnapshot {
  std::vector<double> bounds;                // upper bounds, ascending (+Inf implied)
  std::vector<std::uint64_t> bucket_counts;  // per bucket (not cumulative), bounds.size() + 1
  double sum = 0;
  std::uint64_t count = 0;
};

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double value);
  // Adds this histogram's counts into `into` (same bounds; empty `into` is initialised).
  void add_to(HistogramSnapshot& into) const;
  const std::vector<double>& bounds() const { return bounds_; }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;
  std::atomic<double> sum_{0};
  std::atomic<std::uint64_t> count_{0};
};

// Bucket sets used across modules (seconds, or counts for batch sizes).
std::vector<double> spool_write_buckets();  // 50 µs .. 1 s
std::vector<double> batch_size_buckets();   // 1 .. 1024 messages
std::vector<double> delivery_buckets();     // 10 ms .. 5 min
std::vector<double> queue_delay_buckets();  // 100 ms .. 5 days
std::vector<double> hook_buckets();         // 10 µs .. 10 s

}  // namespace mailgate::metrics
