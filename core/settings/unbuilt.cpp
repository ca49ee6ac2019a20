// settings/unbuilt: the keys of DESIGN §6b that are declared (so their syntax
// is checked and documented) but whose feature is not built yet. They are
// refused here, in one place, with "not implemented yet": nothing unbuilt is
// silently accepted or advertised. Building a feature deletes its lines.
#include <string>
#include <utility>

#include "settings/gateway_config.hpp"

namespace mailgate::settings {
namespace {

void reject_certificate(const tls::TlsConfig& t, const std::string& path,
                        const config::Context& ctx) {
  using Entry = std::pair<const char*, const std::string*>;
  for (const auto& [name, value] : {Entry{"cert", &t.cert}, Entry{"key", &t.key}}) {
    if (value->empty()) continue;
    const auto key = config::field_path(path, name);
    ctx.fail(key, key + ": TLS certificates are not implemented yet");
  }
}

}  // namespace

void reject_unbuilt_features(const GatewayConfig& c, const config::Context& ctx) {
  reject_certificate(c.tls, "tls", ctx);
  for (std::size_t i = 0; i < c.listeners.size(); ++i) {
    const auto& l = c.listeners[i];
    const auto p = config::item_path("listen", static_cast<long long>(i + 1));
    const auto refuse = [&](const char* name, const char* feature) {
      const auto key = config::field_path(p, name);
      ctx.fail(key, key + ": " + feature + " is not implemented yet");
    };
    if (l.starttls) refuse("starttls", "STARTTLS");
    if (l.implicit_tls) refuse("implicit_tls", "implicit TLS");
    if (l.auth != server::AuthMode::Off) refuse("auth", "AUTH");
    if (l.auth_plaintext) refuse("auth_plaintext", "AUTH");
    reject_certificate(l.tls, config::field_path(p, "tls"), ctx);
  }
}

}  // namespace mailgate::settings

namespace mailgate::settings {

// Said in the reference, next to the keys: keep it in step with the checks above.
std::string unbuilt_note() {
  return "Declared but not built yet: `starttls`, `implicit_tls`, `auth` other than `\"off\"`, "
         "`auth_plaintext` and certificates (`tls.cert`, `tls.key`, in `configure{}` or a "
         "listener) are refused by `check-config` with \"not implemented yet\".";
}

}  // namespace mailgate::settings
