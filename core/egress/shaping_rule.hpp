// egress/shaping_rule: one traffic-shaping automation rule
// (mailgate.shaping_rule{}, DESIGN §6b): when a remote reply of a site
// matches `pattern`, take `kind` of action for `duration_ms`.
// Promises: pure values; the rule's name is what metrics and the admin API
// show (bounded: it comes from the config), [A-Za-z0-9._-]{1,64}.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "egress/reply_pattern.hpp"

namespace mailgate::egress {

enum class ShapingKind : std::uint8_t {
  Suspend = 0,          // the (source, site) path: no connection, no message
  SuspendTenant = 1,    // the message's tenant at the replying destination
  SuspendCampaign = 2,  // the message's campaign at the replying destination
  Override = 3,         // the path's max_connections / max_message_rate
};
std::string_view to_string(ShapingKind k);  // "suspend", "suspend_tenant", ...
std::optional<ShapingKind> shaping_kind_from_number(std::uint8_t n);

// The limits an Override action puts on its path (0: unchanged).
struct ShapingOverride {
  unsigned max_connections = 0;
  double max_message_rate = 0;  // per second
};

struct ShapingRule {
  std::string name;
  std::string site;  // a declared mailgate.site
  ReplyPattern pattern;
  ShapingKind kind = ShapingKind::Suspend;
  std::int64_t duration_ms = 0;
  ShapingOverride set;  // Override only
};

}  // namespace mailgate::egress
