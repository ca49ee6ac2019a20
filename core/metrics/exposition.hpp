// metrics/exposition: builds one scrape's metric families from plain values
// (the per-worker counters and histograms summed by the caller) and renders
// them with prometheus-cpp's text serializer. Promises: one family per name
// (samples with different labels are grouped under it), families in the
// order first added, names and labels passed through as given (callers use
// fixed, bounded label sets).
#pragma once

#include <prometheus/metric_family.h>

#include <string>
#include <utility>
#include <vector>

#include "metrics/histogram.hpp"

namespace mailgate::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Exposition {
 public:
  void counter(const std::string& name, const std::string& help, double value, Labels labels = {});
  void gauge(const std::string& name, const std::string& help, double value, Labels labels = {});
  void histogram(const std::string& name, const std::string& help, const HistogramSnapshot& h,
                 Labels labels = {});
  std::string text() const;

 private:
  prometheus::ClientMetric& add(const std::string& name, const std::string& help,
                                prometheus::MetricType type, Labels labels);
  std::vector<prometheus::MetricFamily> families_;
};

}  // namespace mailgate::metrics
