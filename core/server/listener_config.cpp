// server/listener_config: the keys of a mailgate.listen{} table and the rules
// across listeners.
#include "server/listener_config.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "config/host_port.hpp"
#include "config/schema.hpp"
#include "dns/idna.hpp"

namespace mailgate::server {
namespace {

using C = ListenerConfig;

// A domain for relay_domains: labels of letters, digits, '-' (and UTF-8
// bytes), separated by single dots; no leading or trailing dot.
bool valid_domain(std::string_view d) {
  if (d.empty() || d.size() > 253 || d.front() == '.' || d.back() == '.') return false;
  if (d.find("..") != std::string_view::npos) return false;
  return std::all_of(d.begin(), d.end(), [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c >= 0x80;
  });
}

net::Cidr read_network(const config::Value& v, const std::string& key, const config::Context& ctx) {
  std::optional<net::Cidr> cidr;
  if (v.type == config::Value::Type::String) cidr = net::Cidr::parse(v.str);
  if (!cidr) ctx.expected(key, "a CIDR network (e.g. \"10.0.0.0/8\")", v);
  return *cidr;
}

std::string read_relay_domain(const config::Value& v, const std::string& key,
                              const config::Context& ctx) {
  if (v.type != config::Value::Type::String || !valid_domain(v.str)) {
    ctx.expected(key, "a domain (e.g. \"example.com\")", v);
  }
  // Compared with recipient domains in the one normalized form.
  return dns::normalize_domain(v.str);
}

void at_most_a_minute(const config::Duration& d, const std::string& key,
                      const config::Context& ctx) {
  if (d > config::Duration(60'000)) ctx.fail(key, key + ": must not be longer than 60s");
}

const config::Section<C>& timeouts_section() {
  static const config::Section<C> s{{
      config::duration("command", &C::command_timeout,
                       "idle wait for a command (RFC 5321 §4.5.3.2.7) → `421 4.4.2`"),
      config::duration("data", &C::data_timeout,
                       "idle wait for a block of DATA/BDAT (§4.5.3.2.6) → `421 4.4.2`"),
      config::duration("session", &C::session_timeout,
                       "a whole session, however busy → `421 4.4.2 … session time limit "
                       "exceeded`"),
      config::duration("transaction", &C::transaction_timeout,
                       "from MAIL to the end of the message → `421 4.4.2 … transaction time "
                       "limit exceeded`"),
      config::size("min_data_rate", &C::min_data_rate,
                   "bytes per second a message's data must average after its first 10 s (a slow "
                   "drip) → `421 4.4.2 … data arriving too slowly`; `0`: off"),
  }};
  return s;
}

// The password crosses the wire: AUTH only over TLS unless a test setup says otherwise.
void auth_over_tls(ListenerConfig& l, const std::string& path, const config::Context& ctx) {
  if (l.auth == AuthMode::Off || l.starttls || l.implicit_tls || l.auth_plaintext) return;
  const auto key = config::field_path(path, "auth");
  ctx.fail(key, key +
                    ": AUTH is offered only over TLS: set starttls or implicit_tls "
                    "(auth_plaintext = true allows it without, for loopback tests)");
}

}  // namespace

std::vector<net::Cidr> loopback_networks() {
  return {*net::Cidr::parse("127.0.0.0/8"), *net::Cidr::parse("::1/128")};
}

const config::Section<ListenerConfig>& listener_section() {
  static const config::Section<C> s{
      {
          config::host_port("address", &C::address,
                            "`\"ip:port\"` or `\"[ipv6]:port\"`; port 0 picks a free port (logged)")
              .required("(e.g. \"127.0.0.1:2525\")"),
          config::list<C, net::Cidr>("relay_networks", &C::relay_networks,
                                     "clients that may relay to any domain; `{}` = nobody",
                                     "CIDR networks", read_network,
                                     [](const net::Cidr& n) { return n.str(); }),
          config::list<C, std::string>("relay_domains", &C::relay_domains,
                                       "domains anyone may send mail *to*", "domains",
                                       read_relay_domain, [](const std::string& d) { return d; }),
          config::boolean("starttls", &C::starttls,
                          "offer STARTTLS (RFC 3207) with the listener's certificate; needs `tls` "
                          "(here or in `configure{}`)")
              .shown_default("`false` (the shipped config: `true`)"),
          config::boolean(
              "implicit_tls", &C::implicit_tls,
              "TLS from the first byte (port 465 style, RFC 8314); needs a certificate; "
              "STARTTLS is then never offered"),
          config::section("tls", &C::tls, tls::tls_section(),
                          "certificate for this listener; default: the global tls"),
          config::choice(
              "auth", &C::auth,
              "`\"optional\"`: offer `AUTH PLAIN LOGIN` (over TLS); an authenticated "
              "client may relay like one in `relay_networks`; `\"required\"`: also `MAIL` "
              "before a successful AUTH is `530 5.7.0`. Needs an `auth` hook (e.g. "
              "`mailgate.use(\"auth_file\", …)`, else the start fails) and `starttls` or "
              "`implicit_tls` (else `check-config` fails)",
              {{"off", AuthMode::Off},
               {"optional", AuthMode::Optional},
               {"required", AuthMode::Required}}),
          config::boolean("auth_plaintext", &C::auth_plaintext,
                          "offer AUTH without TLS too (loopback test setups only: the password "
                          "crosses the wire in clear)"),
          config::size("max_message_size", &C::max_message_size,
                       "advertised in `SIZE`, enforced (`552 5.3.4`)", 1),
          config::integer("max_recipients", &C::max_recipients,
                          "more get `452 4.5.3` (RFC 5321 §4.5.3.1.10)", 1),
          config::group("timeouts", timeouts_section(), "time limits of a session"),
          config::integer(
              "max_connections", &C::max_connections,
              "sessions open on this listener → `421 4.3.2 too many connections` beyond; "
              "`0`: no cap",
              0),
          config::integer("max_connections_per_ip", &C::max_connections_per_ip,
                          "sessions from one client IP (over all listeners) → `421 4.7.0 too many "
                          "connections from IP`; `0`: no cap",
                          0),
          config::rate_or_zero("connection_rate_per_ip", &C::connection_rate_per_ip,
                               "new connections per client IP, e.g. `\"60/min\"` (a burst of one "
                               "interval's count) → `421 4.7.0`; `0`: none"),
          config::duration(
              "greet_pause", &C::greet_pause,
              "the greeting is `220-` … a pause … `220 `: a client that sends anything "
              "before the last line gets `554 5.5.1 protocol error: input before the "
              "greeting` and is disconnected (spambots and command injection do; RFC "
              "5321 clients wait); `0s`: one `220` line at once; at most `60s`",
              /*allow_zero=*/true)
              .check(at_most_a_minute),
          config::integer("max_errors", &C::max_errors,
                          "error replies (DATA's and BDAT's included) before `421 4.7.0` and close",
                          1),
          config::integer("max_junk_commands", &C::max_junk_commands,
                          "NOOP/RSET/VRFY/HELP/EXPN before `421 4.7.0` (reset by MAIL)", 1),
          config::integer(
              "max_line_length", &C::max_line_length,
              "command line limit in octets incl. CRLF (RFC 5321 says 512, but SMTP "
              "extensions such as ORCPT and ENVID extend it; like Postfix we allow 2048)",
              512, 1 << 20),
      },
      auth_over_tls};
  return s;
}

void check_listeners(const std::vector<ListenerConfig>& listeners, const std::string& base,
                     const config::Context& ctx) {
  for (std::size_t i = 0; i < listeners.size(); ++i) {
    const auto hp = config::parse_host_port(listeners[i].address);
    if (!hp || hp->second == 0) continue;  // port 0 (ephemeral) may repeat
    for (std::size_t j = 0; j < i; ++j) {
      if (config::parse_host_port(listeners[j].address) == hp) {
        const auto key = config::item_path(base, static_cast<long long>(i + 1)) + ".address";
        ctx.fail(key, fmt::format("{}: {} is already used by {}[{}]", key, listeners[i].address,
                                  base, j + 1));
      }
    }
  }
}

}  // namespace mailgate::server
