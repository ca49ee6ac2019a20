// http/http_config: the keys of the `http` section and its one rule.
#include "http/http_config.hpp"

#include <arpa/inet.h>

#include "config/schema.hpp"

namespace mailgate::http {
namespace {

// "127.x.y.z:port", "[::1]:port", "localhost:port".
bool is_loopback_listen(const std::string& listen) {
  const auto colon = listen.rfind(':');
  std::string host = listen.substr(0, colon == std::string::npos ? listen.size() : colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (host == "localhost" || host == "::1") return true;
  in_addr a{};
  return inet_pton(AF_INET, host.c_str(), &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

// The admin API can inject and bounce mail: off loopback it needs a token.
void require_token_off_loopback(HttpConfig& h, const std::string& path,
                                const config::Context& ctx) {
  if (!h.token.empty() || is_loopback_listen(h.listen)) return;
  const auto key = config::field_path(path, "listen");
  ctx.fail(key, key + ": " + h.listen +
                    " is not a loopback address: set http.token (the admin API can inject and "
                    "bounce mail), or listen on 127.0.0.1 / [::1]");
}

}  // namespace

const config::Section<HttpConfig>& http_section() {
  using C = HttpConfig;
  static const config::Section<C> s{
      {
          config::host_port("listen", &C::listen,
                            "the admin HTTP server (see \"HTTP API\"); port 0 picks a free port "
                            "(logged as `listening http=…`); off loopback it needs `http.token`"),
          config::string("token", &C::token,
                         "bearer token required by every `/api/v1/…` route; unset: no "
                         "authentication (whoever reaches the port may inject and bounce mail)"),
      },
      require_token_off_loopback};
  return s;
}

}  // namespace mailgate::http
