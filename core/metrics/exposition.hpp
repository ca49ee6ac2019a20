// metrics/exposition: one scrape's metric families, rendered with
// prometheus-cpp's text serializer. Modules declare their families (name,
// type, # HELP, label names) as metrics::Family constants next to their code
// and add samples from their summed counters; /metrics only calls them and
// serialises. Promises: one family per name (samples with different labels
// grouped under it), families in the order first added, names, help and
// labels passed through as declared; a sample whose label values do not
// match its family's label names, or whose kind is not the family's type, is
// a programming error (std::logic_error), never a malformed page.
#pragma once

#include <prometheus/metric_family.h>

#include <array>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "metrics/histogram.hpp"

namespace mailgate::metrics {

enum class Type { Counter, Gauge, Histogram };

struct Family {
  std::string_view name;
  Type type;
  std::string_view help;
  std::array<std::string_view, 2> labels{};  // label names ("" = unused); values are bounded sets
};

using LabelValues = std::initializer_list<std::string_view>;  // in the family's label order

class Exposition {
 public:
  // A counter's or gauge's sample.
  void add(const Family& f, double value, LabelValues labels = {});
  void add(const Family& f, const HistogramSnapshot& h, LabelValues labels = {});
  std::string text() const;

 private:
  prometheus::ClientMetric& sample(const Family& f, LabelValues labels);
  std::vector<prometheus::MetricFamily> families_;
};

}  // namespace mailgate::metrics
