// metrics/metrics_config: the `metrics` section of configure{}: which
// destinations keep their own label (DESIGN §9: labels stay bounded).
#pragma once

#include <string>
#include <vector>

#include "config/section.hpp"

namespace mailgate::metrics {

struct MetricsConfig {
  std::vector<std::string> destinations;  // normalized (lower case, A-labels)
  // Tenants that get their own `tenant` label (mailgate_tenant_messages_total);
  // mail of any other tenant counts as "other", mail without one not at all.
  std::vector<std::string> tenants;
};

const config::Section<MetricsConfig>& metrics_section();

}  // namespace mailgate::metrics
