// delivery/tls_mode: the one type of outbound TLS inside delivery (DESIGN §4,
// RFC 3207 / RFC 7435), and the only place where the spellings other modules
// hand in (the config's and hooks' strings, the route hook's spool::RouteTls)
// are mapped to it.
// Promises: pure functions; a destination's mode is decided once, by
// effective_tls_mode(), with the precedence egress_path > route hook >
// delivery.tls; every spelling other than "required" and "disabled" is
// Opportunistic (the config and hook loaders already refuse unknown names).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "spool/records.hpp"

namespace mailgate::delivery {

// Opportunistic: STARTTLS when offered, any certificate, plaintext after a
// failed handshake. Required: no mail without TLS (421 4.7.10). Disabled:
// never STARTTLS.
enum class TlsMode : std::uint8_t { Opportunistic, Required, Disabled };

// "opportunistic" | "required" | "disabled"; anything else is Opportunistic.
TlsMode parse_tls_mode(std::string_view s);
// The route hook's choice; nullopt for RouteTls::Default (no choice).
std::optional<TlsMode> tls_mode_of(spool::RouteTls t);
// The config spelling, for logs.
std::string_view to_string(TlsMode m);

// The mode of a destination's connections: the egress_path hook's `tls`
// ("" when it set none), else what the route hook stored with the message,
// else delivery.tls.
TlsMode effective_tls_mode(std::string_view egress_tls, spool::RouteTls route,
                           std::string_view config_tls);

}  // namespace mailgate::delivery
