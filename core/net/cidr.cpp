// net/cidr: parses "addr/prefix" networks with inet_pton and tests membership.
// Promises: a prefix above 32 (IPv4) or 128 (IPv6), a missing/non-numeric
// prefix, zone ids ("%eth0") and anything inet_pton refuses are parse errors;
// host bits in the address are allowed and masked off ("10.1.2.3/8" is
// 10.0.0.0/8). An IPv4-mapped IPv6 network of prefix >= 96
// ("::ffff:10.0.0.0/104") is stored as the IPv4 network it denotes. contains()
// treats an IPv4-mapped client address ("::ffff:127.0.0.1", as a dual-stack
// socket reports it) as the IPv4 address, so the answer does not depend on
// the socket family; an unparsable address is never contained.
#include "net/cidr.hpp"

#include <arpa/inet.h>

#include <cstring>

namespace mailgate::net {
namespace {

struct Ip {
  std::array<std::uint8_t, 16> bytes{};
  bool v4 = true;
};

bool is_v4_mapped(const std::array<std::uint8_t, 16>& a) {
  for (int i = 0; i < 10; ++i) {
    if (a[i] != 0) return false;
  }
  return a[10] == 0xff && a[11] == 0xff;
}

// Parses a bare textual address (no prefix, no zone). Requires a NUL-terminated copy.
std::optional<Ip> parse_ip(std::string_view text) {
  if (text.empty() || text.size() > INET6_ADDRSTRLEN) return std::nullopt;
  if (text.find('\0') != std::string_view::npos) return std::nullopt;
  char buf[INET6_ADDRSTRLEN + 1];
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  Ip ip;
  if (text.find(':') == std::string_view::npos) {
    if (inet_pton(AF_INET, buf, ip.bytes.data()) != 1) return std::nullopt;
    ip.v4 = true;
  } else {
    if (inet_pton(AF_INET6, buf, ip.bytes.data()) != 1) return std::nullopt;
    ip.v4 = false;
  }
  return ip;
}

void mask(std::array<std::uint8_t, 16>& a, unsigned prefix, unsigned bits) {
  for (unsigned i = 0; i < bits / 8; ++i) {
    const unsigned first = i * 8;
    if (first >= prefix) {
      a[i] = 0;
    } else if (prefix - first < 8) {
      a[i] &= static_cast<std::uint8_t>(0xff00u >> (prefix - first));
    }
  }
}

bool prefix_equal(const std::uint8_t* a, const std::uint8_t* b, unsigned prefix) {
  const unsigned full = prefix / 8;
  if (std::memcmp(a, b, full) != 0) return false;
  const unsigned rest = prefix % 8;
  if (rest == 0) return true;
  const auto m = static_cast<std::uint8_t>(0xff00u >> rest);
  return (a[full] & m) == (b[full] & m);
}

}  // namespace

std::optional<Cidr> Cidr::parse(std::string_view text) {
  std::string_view addr = text;
  std::optional<unsigned> prefix;
  if (auto slash = text.find('/'); slash != std::string_view::npos) {
    addr = text.substr(0, slash);
    std::string_view p = text.substr(slash + 1);
    if (p.empty() || p.size() > 3) return std::nullopt;
    unsigned v = 0;
    for (char c : p) {
      if (c < '0' || c > '9') return std::nullopt;
      v = v * 10 + static_cast<unsigned>(c - '0');
    }
    prefix = v;
  }
  auto ip = parse_ip(addr);
  if (!ip) return std::nullopt;
  Cidr c;
  c.addr = ip->bytes;
  c.v4 = ip->v4;
  const unsigned bits = c.v4 ? 32 : 128;
  c.prefix = prefix.value_or(bits);
  if (c.prefix > bits) return std::nullopt;
  if (!c.v4 && c.prefix >= 96 && is_v4_mapped(c.addr)) {
    std::array<std::uint8_t, 16> v4{};
    std::memcpy(v4.data(), c.addr.data() + 12, 4);
    c.addr = v4;
    c.v4 = true;
    c.prefix -= 96;
  }
  mask(c.addr, c.prefix, c.v4 ? 32 : 128);
  return c;
}

namespace {

// A client address in the form networks are compared with: IPv4-mapped
// IPv6 becomes IPv4 (first 4 bytes); asio's zone suffix ("fe80::1%eth0") is dropped.
std::optional<Ip> client_ip(std::string_view text) {
  if (auto pct = text.find('%'); pct != std::string_view::npos) text = text.substr(0, pct);
  auto ip = parse_ip(text);
  if (ip && !ip->v4 && is_v4_mapped(ip->bytes)) {
    std::array<std::uint8_t, 16> v4{};
    std::memcpy(v4.data(), ip->bytes.data() + 12, 4);
    ip->bytes = v4;
    ip->v4 = true;
  }
  return ip;
}

bool net_contains(const Cidr& net, const Ip& ip) {
  return ip.v4 == net.v4 && prefix_equal(ip.bytes.data(), net.addr.data(), net.prefix);
}

}  // namespace

bool Cidr::contains(std::string_view ip_text) const {
  auto ip = client_ip(ip_text);
  return ip && net_contains(*this, *ip);
}

std::string Cidr::str() const {
  char buf[INET6_ADDRSTRLEN];
  if (inet_ntop(v4 ? AF_INET : AF_INET6, addr.data(), buf, sizeof buf) == nullptr) {
    return "?";
  }
  return std::string(buf) + "/" + std::to_string(prefix);
}

bool any_contains(const std::vector<Cidr>& nets, std::string_view ip_text) {
  auto ip = client_ip(ip_text);
  if (!ip) return false;
  for (const auto& n : nets) {
    if (net_contains(n, *ip)) return true;
  }
  return false;
}

}  // namespace mailgate::net
