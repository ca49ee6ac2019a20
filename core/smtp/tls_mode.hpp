// smtp/tls_mode: the one type of outbound TLS policy (DESIGN §6b), used from
// the config and the hooks' results through the queue and the spool to the
// SMTP client, with its names and which modes are built.
// Promises: parse_tls_mode() accepts exactly the names to_string() returns
// (lower case, nothing else); the numeric values are what queue records
// store (spool DestRecord v3+, 0 there meaning "no choice"): they are never
// renumbered, new modes only get new numbers.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mailgate::smtp {

// Opportunistic (RFC 7435): STARTTLS when offered, any certificate,
// plaintext after a failed handshake. Required: encrypted, any certificate
// (4.7.10 when STARTTLS is not offered). Verify: encrypted, the chain and
// the MX host name verified (RFC 6125, RFC 7672 §3.2.2 rules). Dane: TLSA
// records enforced when DNSSEC says they are authentic (RFC 7672), else
// opportunistic. Disabled: never STARTTLS.
enum class TlsMode : std::uint8_t {
  Opportunistic = 1,
  Required = 2,
  Disabled = 3,
  Verify = 4,
  Dane = 5,
};

// Every mode, in the order the documentation lists them.
inline constexpr std::array<TlsMode, 5> kTlsModes{
    TlsMode::Opportunistic, TlsMode::Required, TlsMode::Verify, TlsMode::Dane, TlsMode::Disabled};

std::optional<TlsMode> parse_tls_mode(std::string_view name);
std::string_view to_string(TlsMode m);
// The mode stored as `n` (a TlsMode's value); nullopt for any other number.
std::optional<TlsMode> tls_mode_from_number(std::uint8_t n);
// "opportunistic, required, verify, dane or disabled", for error texts.
std::string tls_mode_names();
// false for a mode that is named (DESIGN §6b) but not built yet: the config
// and the hooks refuse it with "not implemented yet" rather than deliver
// with less protection than was asked for.
bool tls_mode_built(TlsMode m);

}  // namespace mailgate::smtp
