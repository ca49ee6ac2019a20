// http/http_config: the `http` section of configure{} (the admin HTTP server).
// Promises: an admin API reachable off loopback always has a token.
#pragma once

#include <string>

#include "config/section.hpp"

namespace mailgate::http {

struct HttpConfig {
  std::string listen = "127.0.0.1:8025";
  std::string token;  // empty: no authentication (loopback only)
};

const config::Section<HttpConfig>& http_section();

}  // namespace mailgate::http
