// dns/dns_config: the keys of the `dns` section.
#include "dns/dns_config.hpp"

#include "config/host_port.hpp"
#include "config/schema.hpp"

namespace mailgate::dns {
namespace {

std::string read_server(const config::Value& v, const std::string& key,
                        const config::Context& ctx) {
  auto s = config::read_string(v, key, ctx);
  if (!config::is_ip_literal(s) && !config::parse_host_port(s)) {
    ctx.expected(key, "\"ip\", \"ip:port\" or \"[ipv6]:port\"", v);
  }
  return s;
}

}  // namespace

const config::Section<DnsConfig>& dns_section() {
  using C = DnsConfig;
  static const config::Section<C> s{{
      config::list<C, std::string>(
          "servers", &C::servers, "resolvers for MX/A/AAAA (`\"ip\"` or `\"ip:port\"`)",
          "\"ip\" or \"ip:port\" strings", read_server, [](const std::string& x) { return x; })
          .shown_default("`/etc/resolv.conf`"),
  }};
  return s;
}

}  // namespace mailgate::dns
