// metrics/exposition: see exposition.hpp.
#include "metrics/exposition.hpp"

#include <prometheus/text_serializer.h>

#include <limits>
#include <stdexcept>

namespace mailgate::metrics {
namespace {

prometheus::MetricType prometheus_type(Type t) {
  switch (t) {
    case Type::Counter:
      return prometheus::MetricType::Counter;
    case Type::Gauge:
      return prometheus::MetricType::Gauge;
    case Type::Histogram:
      return prometheus::MetricType::Histogram;
  }
  return prometheus::MetricType::Untyped;
}

}  // namespace

prometheus::ClientMetric& Exposition::sample(const Family& f, LabelValues labels) {
  std::size_t declared = 0;
  while (declared < f.labels.size() && !f.labels[declared].empty()) ++declared;
  if (labels.size() != declared) {
    throw std::logic_error(std::string(f.name) + ": label values do not match the declared labels");
  }
  prometheus::MetricFamily* family = nullptr;
  for (auto& fam : families_)
    if (fam.name == f.name) family = &fam;
  if (family == nullptr) {
    families_.push_back({std::string(f.name), std::string(f.help), prometheus_type(f.type), {}});
    family = &families_.back();
  }
  auto& m = family->metric.emplace_back();
  std::size_t i = 0;
  for (auto value : labels) m.label.push_back({std::string(f.labels[i++]), std::string(value)});
  return m;
}

void Exposition::add(const Family& f, double value, LabelValues labels) {
  if (f.type == Type::Histogram) throw std::logic_error(std::string(f.name) + " is a histogram");
  auto& m = sample(f, labels);
  if (f.type == Type::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
}

void Exposition::add(const Family& f, const HistogramSnapshot& h, LabelValues labels) {
  if (f.type != Type::Histogram) throw std::logic_error(std::string(f.name) + " is no histogram");
  auto& m = sample(f, labels);
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
