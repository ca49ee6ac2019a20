// delivery/destination_link: see destination_link.hpp.
#include "delivery/destination_link.hpp"

namespace mailgate::delivery {

ConnectionSettings settings_of(const queue::Destination& d, smtp::TlsMode default_tls,
                               const std::string& hostname) {
  const auto& s = d.shaping;
  return ConnectionSettings{s.max_messages_per_connection,
                            s.tls.value_or(d.route_tls.value_or(default_tls)),
                            s.source_address,
                            s.ehlo_name.empty() ? hostname : s.ehlo_name,
                            d.route_auth,
                            d.source,
                            d.site};
}

std::string_view delivery_target(std::string_view destination) {
  // A domain has neither '@' nor '['; "[host]:port" has one '[', the user none
  // that counts: the last '[' starts the smarthost.
  const auto open = destination.rfind('[');
  if (open == std::string_view::npos || open == 0 || destination[open - 1] != '@')
    return destination;
  return destination.substr(open);
}

}  // namespace mailgate::delivery
