// bench/loadgen/latency_histogram: latencies in microseconds, kept in
// log-linear buckets (64 per power of two: about 1.6% resolution), so a run of
// any length costs a fixed 6 KiB per histogram and percentiles are exact to
// that resolution. Not thread-safe: one per thread, merged at the end.
#pragma once

#include <array>
#include <bit>
#include <cstdint>

namespace mailgate::loadgen {

class LatencyHistogram {
 public:
  static constexpr unsigned kSubBits = 6;  // 64 buckets per power of two
  static constexpr unsigned kSub = 1u << kSubBits;
  static constexpr unsigned kRanges = 40;  // up to 2^40 us (12 days)

  void record(std::uint64_t us) {
    ++buckets_[index(us)];
    ++count_;
    if (us > max_) max_ = us;
  }
  void merge(const LatencyHistogram& o) {
    for (std::size_t i = 0; i < buckets_.size(); ++i) buckets_[i] += o.buckets_[i];
    count_ += o.count_;
    if (o.max_ > max_) max_ = o.max_;
  }
  std::uint64_t count() const { return count_; }
  std::uint64_t max() const { return max_; }
  // The smallest recorded bucket's upper bound below which `q` (0..1) of
  // the values lie; 0 when empty.
  std::uint64_t percentile(double q) const {
    if (count_ == 0) return 0;
    auto rank = static_cast<std::uint64_t>(q * static_cast<double>(count_) + 0.5);
    if (rank < 1) rank = 1;
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < buckets_.size(); ++i) {
      seen += buckets_[i];
      if (seen >= rank) {
        const auto hi = upper(i);
        return hi < max_ ? hi : max_;
      }
    }
    return max_;
  }

 private:
  // Values below kSub have their own bucket; above, the top kSubBits bits
  // after the leading one pick the bucket within the value's power of two.
  static std::size_t index(std::uint64_t v) {
    if (v < kSub) return v;
    const unsigned msb = 63 - std::countl_zero(v);
    const unsigned range = msb - kSubBits + 1;
    if (range >= kRanges) return kRanges * kSub - 1;
    const auto sub = (v >> (msb - kSubBits)) & (kSub - 1);
    return range * kSub + sub;
  }
  static std::uint64_t upper(std::size_t i) {
    if (i < kSub) return i;
    const std::uint64_t range = i / kSub, sub = i % kSub;
    const unsigned shift = static_cast<unsigned>(range - 1);
    return ((kSub + sub + 1) << shift) - 1;
  }

  std::array<std::uint64_t, kRanges * kSub> buckets_{};
  std::uint64_t count_ = 0, max_ = 0;
};

}  // namespace mailgate::loadgen
