// dns/resolver_options: server address parsing and option validation.
// Promises: see resolver_options.hpp; no zone ids ("fe80::1%eth0"), no names.
#include "dns/resolver_options.hpp"

#include <charconv>

#include <fmt/format.h>

namespace mailgate::dns {

namespace {

std::optional<std::uint16_t> parse_port(std::string_view s) {
  unsigned v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v == 0 || v > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(v);
}

std::optional<asio::ip::address> parse_ip(std::string_view s) {
  if (s.find('%') != std::string_view::npos) return std::nullopt;
  std::error_code ec;
  auto a = asio::ip::make_address(std::string(s), ec);
  if (ec) return std::nullopt;
  return a;
}

}  // namespace

std::optional<ServerAddress> parse_server(std::string_view text) {
  ServerAddress out;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    auto ip = parse_ip(text.substr(1, close - 1));
    if (!ip || !ip->is_v6()) return std::nullopt;
    out.ip = *ip;
    auto rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return std::nullopt;
      auto port = parse_port(rest.substr(1));
      if (!port) return std::nullopt;
      out.port = *port;
    }
    return out;
  }
  auto colon = text.find(':');
  if (colon != std::string_view::npos && text.find(':', colon + 1) == std::string_view::npos) {
    auto ip = parse_ip(text.substr(0, colon));
    auto port = parse_port(text.substr(colon + 1));
    if (!ip || !ip->is_v4() || !port) return std::nullopt;
    out.ip = *ip;
    out.port = *port;
    return out;
  }
  auto ip = parse_ip(text);  // IPv4, or a bare IPv6 address
  if (!ip) return std::nullopt;
  out.ip = *ip;
  return out;
}

std::string validate_options(const ResolverOptions& opts) {
  for (const auto& s : opts.servers) {
    if (!parse_server(s)) {
      return fmt::format(
          "dns.servers: \"{}\" is not an IP address with an optional port "
          "(\"127.0.0.1\", \"127.0.0.1:5353\", \"[::1]:53\")",
          s);
    }
  }
  if (opts.timeout.count() <= 0 || opts.timeout.count() > 600000)
    return "dns.timeout must be between 1 ms and 10 minutes";
  if (opts.tries < 1 || opts.tries > 10) return "dns.tries must be between 1 and 10";
  if (opts.min_ttl.count() < 0 || opts.max_ttl < opts.min_ttl || opts.negative_ttl.count() < 0 ||
      opts.max_ttl.count() > 7 * 86400)
    return "dns TTL bounds must satisfy 0 <= min_ttl <= max_ttl <= 7 days, negative_ttl >= 0";
  return {};
}

}  // namespace mailgate::dns
