// tls/tls_config: a certificate as the config names it, `tls = { cert, key }`
// (the global one in configure{}, or a listener's own).
#pragma once

#include <string>

#include "config/section.hpp"

namespace mailgate::tls {

struct TlsConfig {
  std::string cert, key;  // PEM files; both empty: none
};

const config::Section<TlsConfig>& tls_section();

}  // namespace mailgate::tls
