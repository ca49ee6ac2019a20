// delivery/delivery_config: the `delivery` section of configure{}: the
// defaults of outbound delivery (a route or egress_path hook may override
// some per destination), the retry schedule and the operator's bounce rules.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "config/section.hpp"
#include "smtp/bounce_class.hpp"

namespace mailgate::delivery {

struct RetryConfig {
  config::Duration first{60 * 1000};
  config::Duration max{60 * 60 * 1000};
  config::Duration max_age{5ll * 24 * 3600 * 1000};
  config::Duration delay_warning{4ll * 3600 * 1000};  // 0: no delay DSN
};

struct DeliveryConfig {
  std::uint16_t port = 25;
  RetryConfig retry;
  std::uint32_t max_connections = 10;
  std::uint32_t max_messages_per_connection = 100;
  std::string tls = "opportunistic";  // opportunistic | required | disabled
  // Operator rules for the delivery log's bounce_class, tried before the built-ins.
  std::vector<smtp::BounceRule> bounce_rules;
};

const config::Section<DeliveryConfig>& delivery_section();

}  // namespace mailgate::delivery
