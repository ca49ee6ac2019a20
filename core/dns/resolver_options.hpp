// dns/resolver_options: the `dns` config section as the resolver takes it,
// and its validation (for check-config as well as the Resolver constructor).
// Promises: validate_options() accepts exactly what the Resolver accepts;
// a server is "ip", "ip:port", "[ipv6]" or "[ipv6]:port" (a bare IPv6
// address means port 53); port 1–65535.
#pragma once

#include <asio/ip/address.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mailgate::dns {

struct ResolverOptions {
  // Name servers, tried in order; empty = the nameservers of /etc/resolv.conf.
  std::vector<std::string> servers;
  // Timeout of the first try of a query; c-ares doubles it on each further
  // round over the servers, so with one server a failing query takes about
  // timeout × (2^tries − 1) before it completes with TempFail.
  std::chrono::milliseconds timeout{5000};
  int tries = 2;
  // Record sets held by one resolver (LRU); 0 disables the cache.
  std::size_t cache_entries = 100000;
  // Cache lifetime of answers: record TTLs clamped to [min_ttl, max_ttl];
  // NXDOMAIN/NODATA live for the SOA's negative TTL when the server sends the
  // SOA, else negative_ttl (then clamped the same way).
  std::chrono::seconds min_ttl{5};
  std::chrono::seconds max_ttl{3600};
  std::chrono::seconds negative_ttl{60};
};

struct ServerAddress {
  asio::ip::address ip;
  std::uint16_t port = 53;
};

std::optional<ServerAddress> parse_server(std::string_view text);

// Empty when the options are usable, else the first problem found.
std::string validate_options(const ResolverOptions& opts);

}  // namespace mailgate::dns
