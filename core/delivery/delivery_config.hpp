// delivery/delivery_config: the `delivery` section of configure{}: the
// defaults of outbound delivery (a route or egress_path hook may override
// some per destination), the retry schedule and the operator's bounce rules.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "config/section.hpp"
#include "smtp/bounce_class.hpp"
#include "smtp/tls_mode.hpp"

namespace mailgate::delivery {

struct RetryConfig {
  config::Duration first{60 * 1000};
  config::Duration max{60 * 60 * 1000};
  config::Duration max_age{5ll * 24 * 3600 * 1000};
  config::Duration delay_warning{4ll * 3600 * 1000};  // 0: no delay DSN
};

// Time limits of an outbound session, per step (RFC 5321 §4.5.3.2 gives the
// defaults); short values are for tests with stalling remotes.
struct ClientTimeoutConfig {
  config::Duration connect{30 * 1000};
  config::Duration greeting{5 * 60 * 1000};
  config::Duration command{5 * 60 * 1000};
  config::Duration data_init{2 * 60 * 1000};
  config::Duration data_block{3 * 60 * 1000};
  config::Duration data_end{10 * 60 * 1000};
};

struct DeliveryConfig {
  std::uint16_t port = 25;
  RetryConfig retry;
  std::uint32_t max_connections = 10;
  std::uint32_t max_messages_per_connection = 100;
  smtp::TlsMode tls = smtp::TlsMode::Opportunistic;
  std::string tls_ca_file;  // "": the system's CA store
  bool mta_sts = false;     // honour MTA-STS policies (RFC 8461)
  // Operator rules for the delivery log's bounce_class, tried before the built-ins.
  std::vector<smtp::BounceRule> bounce_rules;
  config::Duration drain_timeout{60 * 1000};  // SIGTERM: attempts in flight may finish
  ClientTimeoutConfig timeouts;
  // VERP return path of outbound mail ("" = off; feedback/feedback_config
  // has the grammar) and the HMAC key of its {rcpt_hash} (never shown).
  std::string verp;
  std::string verp_secret;
};

const config::Section<DeliveryConfig>& delivery_section();

}  // namespace mailgate::delivery
