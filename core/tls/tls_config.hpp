// tls/tls_config: a certificate as the config names it, `tls = { cert, key,
// self_signed }` (the global one in configure{}, or a listener's own).
// Promises: cert and key come both or neither; the files themselves are
// loaded (and their errors reported) by tls/server_context.
#pragma once

#include <string>

#include "config/section.hpp"

namespace mailgate::tls {

struct TlsConfig {
  std::string cert, key;     // PEM files; both empty: none
  bool self_signed = false;  // make a self-signed pair there if neither file exists
};

const config::Section<TlsConfig>& tls_section();

}  // namespace mailgate::tls
