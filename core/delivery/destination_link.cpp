// delivery/destination_link: see destination_link.hpp.
#include "delivery/destination_link.hpp"

namespace mailgate::delivery {

ConnectionSettings settings_of(const queue::Destination& d, std::string_view default_tls,
                               const std::string& hostname) {
  const auto& s = d.shaping;
  return ConnectionSettings{s.max_messages_per_connection,
                            effective_tls_mode(s.tls, d.route_tls, default_tls), s.source_address,
                            s.ehlo_name.empty() ? hostname : s.ehlo_name};
}

}  // namespace mailgate::delivery
