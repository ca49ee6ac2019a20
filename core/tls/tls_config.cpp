// tls/tls_config: the keys of a `tls` table.
#include "tls/tls_config.hpp"

#include "config/schema.hpp"

namespace mailgate::tls {
namespace {

void both_or_neither(TlsConfig& t, const std::string& path, const config::Context& ctx) {
  if (t.cert.empty() == t.key.empty()) return;
  const auto missing = config::field_path(path, t.cert.empty() ? "cert" : "key");
  ctx.fail(missing, missing + ": required with " +
                        config::field_path(path, t.cert.empty() ? "key" : "cert"));
}

}  // namespace

const config::Section<TlsConfig>& tls_section() {
  using C = TlsConfig;
  static const config::Section<C> s{
      {
          config::string("cert", &C::cert,
                         "PEM certificate chain for inbound TLS (listeners with `starttls` or "
                         "`implicit_tls`); with `key`, both or neither; loaded at start (an "
                         "unreadable file or a key that does not match stops the start with "
                         "OpenSSL's reason) and re-read on SIGHUP and `POST /api/v1/reload` (a bad "
                         "file keeps the certificate in use and says why)")
              .check(config::nonempty),
          config::string("key", &C::key, "PEM private key of `cert`").check(config::nonempty),
          config::boolean("self_signed", &C::self_signed,
                          "when neither file exists, make a self-signed pair there for `hostname` "
                          "first (P-256, one year, key mode 0600; never overwrites) so that "
                          "STARTTLS works out of the box (the shipped config); for test and "
                          "first-run setups, not production"),
      },
      both_or_neither};
  return s;
}

}  // namespace mailgate::tls
