// smtp/tls_mode: see tls_mode.hpp.
#include "smtp/tls_mode.hpp"

namespace mailgate::smtp {

std::string_view to_string(TlsMode m) {
  switch (m) {
    case TlsMode::Opportunistic:
      return "opportunistic";
    case TlsMode::Required:
      return "required";
    case TlsMode::Disabled:
      return "disabled";
    case TlsMode::Verify:
      return "verify";
    case TlsMode::Dane:
      return "dane";
  }
  return "opportunistic";  // not reached: every enumerator is handled
}

std::optional<TlsMode> parse_tls_mode(std::string_view name) {
  for (auto m : kTlsModes)
    if (to_string(m) == name) return m;
  return std::nullopt;
}

std::optional<TlsMode> tls_mode_from_number(std::uint8_t n) {
  for (auto m : kTlsModes)
    if (static_cast<std::uint8_t>(m) == n) return m;
  return std::nullopt;
}

std::string tls_mode_names() {
  std::string out;
  for (std::size_t i = 0; i < kTlsModes.size(); ++i) {
    if (i > 0) out += i + 1 == kTlsModes.size() ? " or " : ", ";
    out += to_string(kTlsModes[i]);
  }
  return out;
}

// Every mode DESIGN §6b names is built (dane since issue 11 item 6); a mode
// added later returns false here until it works.
bool tls_mode_built(TlsMode) { return true; }

}  // namespace mailgate::smtp
