// webhooks/webhooks_config: the webhook settings: the `webhooks` section of
// configure{} (limits shared by every target, the CA file) and the keys of a
// target, one `mailgate.webhook{}` call each (DESIGN §6b).
// Promises: check-config refuses a target without a name, a duplicate name,
// a url that is not http:// or https://, an empty secret, an unknown event
// name, batch/time values out of range, and a `tenant` that is not a valid
// tenant name (a target with one gets only records of that tenant).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "config/section.hpp"

namespace mailgate::webhooks {

// Every event name a delivery-log record may carry (DESIGN §9).
inline constexpr std::string_view kEventNames[] = {
    "reception",    "delivery",  "transient_failure", "bounce",       "expiration",
    "admin_bounce", "rejection", "discard",           "async_bounce", "complaint"};

struct TargetConfig {
  std::string name;                      // [A-Za-z0-9_.-], at most 64: a metric label
  std::string url;                       // http:// or https://
  std::string secret;                    // HMAC-SHA256 key; never logged or shown
  std::vector<std::string> events;       // empty: every event
  unsigned batch_size = 100;             // records per POST at most
  config::Duration batch_time{1000};     // longest an event waits for its batch to fill
  config::Duration max_age{86'400'000};  // past it, an undelivered event is a dead letter
  config::Duration timeout{10'000};      // one POST, connection included
  config::Duration retry_first{1000};    // backoff after the first failure ...
  config::Duration retry_max{300'000};   // ... doubling up to this (with jitter)
  std::string tenant;                    // "": every tenant's (and untenanted) events
};

struct WebhooksConfig {
  std::uint64_t max_backlog = 64ull << 20;  // bytes of queued events per target
  std::string ca_file;                      // https targets: trusted CAs ("" = system)
  std::vector<TargetConfig> targets;        // from mailgate.webhook{} calls
};

const config::Section<WebhooksConfig>& webhooks_section();
const config::Section<TargetConfig>& target_section();
// Cross-target rules (unique names), after every target was read.
void check_targets(const std::vector<TargetConfig>& targets, const config::Context& ctx);

}  // namespace mailgate::webhooks
