// policy/hook_event: see hook_event.hpp.
#include "policy/hook_event.hpp"

#include <array>

namespace mailgate::policy {
namespace {
constexpr std::array<std::string_view, kEventCount> kNames = {
    "connect", "helo",        "auth",      "mail_from", "rcpt_to", "message",
    "route",   "egress_path", "delivered", "deferred",  "bounced"};
}  // namespace

std::string_view event_name(Event e) { return kNames[static_cast<int>(e)]; }

std::optional<Event> parse_event(std::string_view name) {
  for (int i = 0; i < kEventCount; ++i)
    if (kNames[i] == name) return static_cast<Event>(i);
  return std::nullopt;
}

}  // namespace mailgate::policy
