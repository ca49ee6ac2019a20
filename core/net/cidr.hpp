// net/cidr: IPv4/IPv6 networks ("127.0.0.0/8", "::1/128", bare address = host)
// and membership tests. IPv4-mapped IPv6 addresses match IPv4 networks.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mailgate::net {

struct Cidr {
  std::array<std::uint8_t, 16> addr{};  // IPv4 stored in the first 4 bytes
  bool v4 = true;
  unsigned prefix = 0;

  static std::optional<Cidr> parse(std::string_view text);
  // `ip` is a textual address as asio prints it ("127.0.0.1", "::1", "::ffff:1.2.3.4").
  bool contains(std::string_view ip) const;
  std::string str() const;
};

bool any_contains(const std::vector<Cidr>& nets, std::string_view ip);

}  // namespace mailgate::net
