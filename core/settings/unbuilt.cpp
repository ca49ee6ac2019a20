// settings/unbuilt: the keys of DESIGN §6b that are declared (so their syntax
// is checked and documented) but whose feature is not built yet. They are
// refused here, in one place, with "not implemented yet": nothing unbuilt is
// silently accepted or advertised. Building a feature deletes its lines.
#include <string>

#include "settings/gateway_config.hpp"

namespace mailgate::settings {

void reject_unbuilt_features(const GatewayConfig& c, const config::Context& ctx) {
  for (std::size_t i = 0; i < c.listeners.size(); ++i) {
    const auto& l = c.listeners[i];
    const auto p = config::item_path("listen", static_cast<long long>(i + 1));
    const auto refuse = [&](const char* name, const char* feature) {
      const auto key = config::field_path(p, name);
      ctx.fail(key, key + ": " + feature + " is not implemented yet");
    };
    // Inbound AUTH: the SASL parser, the auth event and auth_file exist; the
    // session does not offer AUTH yet.
    if (l.auth != server::AuthMode::Off) refuse("auth", "AUTH");
    if (l.auth_plaintext) refuse("auth_plaintext", "AUTH");
  }
}

// Said in the reference, next to the keys: keep it in step with the checks above.
std::string unbuilt_note() {
  return "Declared but not built yet: `auth` other than `\"off\"` and `auth_plaintext = true` "
         "are refused by `check-config` with \"not implemented yet\".";
}

}  // namespace mailgate::settings
