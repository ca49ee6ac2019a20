// metrics/histogram: see histogram.hpp.
#include "metrics/histogram.hpp"

#include <algorithm>

namespace mailgate::metrics {

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)),
      counts_(std::make_unique<std::atomic<std::uint64_t>[]>(bounds_.size() + 1)) {
  for (std::size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0);
}

void Histogram::observe(double value) {
  const auto i = static_cast<std::size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), value) -
                                          bounds_.begin());
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
}

void Histogram::add_to(HistogramSnapshot& into) const {
  if (into.bounds.empty()) {
    into.bounds = bounds_;
    into.bucket_counts.assign(bounds_.size() + 1, 0);
  }
  for (std::size_t i = 0; i <= bounds_.size() && i < into.bucket_counts.size(); ++i)
    into.bucket_counts[i] += counts_[i].load(std::memory_order_relaxed);
  into.sum += sum_.load(std::memory_order_relaxed);
  into.count += count_.load(std::memory_order_relaxed);
}

std::vector<double> spool_write_buckets() {
  return {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
          0.01,    0.025,  0.05,    0.1,    0.25,  0.5,    1};
}
std::vector<double> batch_size_buckets() { return {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024}; }
std::vector<double> delivery_buckets() {
  return {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};
}
std::vector<double> queue_delay_buckets() {
  return {0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600.0, 86400, 5 * 86400.0};
}
std::vector<double> hook_buckets() {
  return {0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10};
}

}  // namespace mailgate::metrics
