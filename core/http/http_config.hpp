// http/http_config: the `http` section of configure{} (the admin HTTP server).
// Promises: an admin API reachable off loopback always has a token; after
// validation `tls` is the certificate HTTPS serves (its own, or the global
// one when http.tls = true), empty for plain HTTP.
#pragma once

#include <cstdint>
#include <string>

#include "config/section.hpp"
#include "tls/tls_config.hpp"

namespace mailgate::http {

struct HttpConfig {
  std::string listen = "127.0.0.1:8025";
  std::string token;  // empty: no authentication (loopback only)
  // HTTPS with this certificate (http.tls = true: the global tls{}; or its
  // own { cert, key }); none (the default): plain HTTP.
  tls::TlsConfig tls;
  bool tls_from_global = false;  // http.tls = true (core/settings copies the global tls{})
  // Templated POST /api/v1/inject: most recipients in one request (400 beyond).
  std::uint32_t inject_max_recipients = 10'000;
};

const config::Section<HttpConfig>& http_section();

}  // namespace mailgate::http
