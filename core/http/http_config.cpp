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

// http.tls: true (the global certificate), false, or a certificate of its own.
config::Field<HttpConfig> tls_field() {
  config::Field<HttpConfig> f;
  f.name = "tls";
  f.read = [](const config::Value& v, HttpConfig& out, const std::string& key,
              const config::Context& ctx) {
    if (v.type == config::Value::Type::Boolean) {
      out.tls_from_global = v.boolean;
    } else if (v.type == config::Value::Type::Table) {
      tls::tls_section().read(v, out.tls, key, ctx);
      if (out.tls.cert.empty()) ctx.fail(key, key + ": needs cert and key");
    } else {
      ctx.expected(key, "true, false or { cert = \"...\", key = \"...\" }", v);
    }
  };
  f.document = [](const HttpConfig&, const std::string& key, std::vector<config::DocRow>& rows) {
    rows.push_back(config::DocRow{
        key, "boolean or table", "`false` (plain HTTP)",
        "HTTPS on `http.listen` (the port then speaks only TLS): `true` serves the global `tls` "
        "certificate (a config error without one: `http.tls: true needs a certificate …`), `{ "
        "cert = \"…\", key = \"…\" }` its own (both or neither; `self_signed = true` works as in "
        "`tls`). Same TLS settings as inbound SMTP (TLS 1.2+, see \"Security\"); loaded at start "
        "(a "
        "file that does not load stops the start: `http.tls: cannot load certificate …`) and "
        "re-read on SIGHUP and `POST /api/v1/reload` (a bad file keeps the certificate in use, "
        "and the reload answers `422` naming `http.tls`). Off loopback, use it: a token over "
        "plain HTTP can be read by anyone on the path"});
  };
  return f;
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
          tls_field(),
          config::integer("inject_max_recipients", &C::inject_max_recipients,
                          "most recipients in one templated `POST /api/v1/inject` (the request "
                          "is refused with `400` beyond; see \"Templated batch injection\"); "
                          "the 32 MiB body limit applies too",
                          1, 1'000'000),
      },
      require_token_off_loopback};
  return s;
}

}  // namespace mailgate::http
