// policy/hook_event: the events a Lua policy can handle (DESIGN §6) and their
// names as written in mailgate.on("name", fn).
#pragma once

#include <optional>
#include <string_view>

namespace mailgate::policy {

enum class Event : int {
  Connect,
  Helo,
  Auth,
  MailFrom,
  RcptTo,
  Message,
  Route,
  EgressPath,
  Delivered,
  Deferred,
  Bounced,
};
inline constexpr int kEventCount = 11;

std::string_view event_name(Event e);
std::optional<Event> parse_event(std::string_view name);

}  // namespace mailgate::policy
