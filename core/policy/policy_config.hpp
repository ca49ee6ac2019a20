// policy/policy_config: the `policy` section of configure{}: the limits every
// Lua hook call runs under.
#pragma once

#include <cstdint>

#include "config/section.hpp"

namespace mailgate::policy {

struct PolicyConfig {
  config::Duration hook_timeout{5000};
  std::uint64_t memory_limit = 64'000'000;  // per Lua state (one per worker and version)
};

const config::Section<PolicyConfig>& policy_section();

}  // namespace mailgate::policy
