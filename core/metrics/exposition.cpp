// metrics/exposition: see exposition.hpp.
#include "metrics/exposition.hpp"

#include <prometheus/text_serializer.h>

#include <limits>

namespace mailgate::metrics {

prometheus::ClientMetric& Exposition::add(const std::string& name, const std::string& help,
                                          prometheus::MetricType type, Labels labels) {
  prometheus::MetricFamily* family = nullptr;
  for (auto& f : families_)
    if (f.name == name) family = &f;
  if (family == nullptr) {
    families_.push_back({name, help, type, {}});
    family = &families_.back();
  }
  auto& m = family->metric.emplace_back();
  for (auto& [k, v] : labels) m.label.push_back({std::move(k), std::move(v)});
  return m;
}

void Exposition::counter(const std::string& name, const std::string& help, double value,
                         Labels labels) {
  add(name, help, prometheus::MetricType::Counter, std::move(labels)).counter.value = value;
}

void Exposition::gauge(const std::string& name, const std::string& help, double value,
                       Labels labels) {
  add(name, help, prometheus::MetricType::Gauge, std::move(labels)).gauge.value = value;
}

void Exposition::histogram(const std::string& name, const std::string& help,
                           const HistogramSnapshot& h, Labels labels) {
  auto& m = add(name, help, prometheus::MetricType::Histogram, std::move(labels));
  m.histogram.sample_count = h.count;
  m.histogram.sample_sum = h.sum;
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < h.bucket_counts.size(); ++i) {
    cumulative += h.bucket_counts[i];
    const double bound =
        i < h.bounds.size() ? h.bounds[i] : std::numeric_limits<double>::infinity();
    m.histogram.bucket.push_back({cumulative, bound});
  }
}

std::string Exposition::text() const { return prometheus::TextSerializer().Serialize(families_); }

}  // namespace mailgate::metrics
