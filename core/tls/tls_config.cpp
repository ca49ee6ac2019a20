// tls/tls_config: the keys of a `tls` table.
#include "tls/tls_config.hpp"

#include "config/schema.hpp"

namespace mailgate::tls {

const config::Section<TlsConfig>& tls_section() {
  using C = TlsConfig;
  static const config::Section<C> s{{
      config::string("cert", &C::cert, "PEM certificate chain file"),
      config::string("key", &C::key, "PEM private key file"),
  }};
  return s;
}

}  // namespace mailgate::tls
