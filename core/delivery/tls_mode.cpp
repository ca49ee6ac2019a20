// delivery/tls_mode: see tls_mode.hpp.
#include "delivery/tls_mode.hpp"

namespace mailgate::delivery {

TlsMode parse_tls_mode(std::string_view s) {
  if (s == "required") return TlsMode::Required;
  if (s == "disabled") return TlsMode::Disabled;
  return TlsMode::Opportunistic;
}

std::optional<TlsMode> tls_mode_of(spool::RouteTls t) {
  switch (t) {
    case spool::RouteTls::Opportunistic:
      return TlsMode::Opportunistic;
    case spool::RouteTls::Required:
      return TlsMode::Required;
    case spool::RouteTls::Disabled:
      return TlsMode::Disabled;
    case spool::RouteTls::Default:
      break;
  }
  return std::nullopt;
}

std::string_view to_string(TlsMode m) {
  switch (m) {
    case TlsMode::Required:
      return "required";
    case TlsMode::Disabled:
      return "disabled";
    case TlsMode::Opportunistic:
      break;
  }
  return "opportunistic";
}

TlsMode effective_tls_mode(std::string_view egress_tls, spool::RouteTls route,
                           std::string_view config_tls) {
  if (!egress_tls.empty()) return parse_tls_mode(egress_tls);
  if (auto m = tls_mode_of(route)) return *m;
  return parse_tls_mode(config_tls);
}

}  // namespace mailgate::delivery
