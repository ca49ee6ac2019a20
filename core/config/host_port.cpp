// config/host_port: "ip:port" parsing with inet_pton (see host_port.hpp).
#include "config/host_port.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>

namespace mailgate::config {
namespace {

std::optional<std::uint16_t> parse_port(std::string_view s) {
  if (s.empty() || s.size() > 5 ||
      !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  unsigned v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  if (v > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(v);
}

}  // namespace

bool is_ip_literal(std::string_view s) {
  unsigned char buf[16];
  if (s.find('\0') != std::string_view::npos) return false;
  const std::string text(s);
  return inet_pton(s.find(':') == std::string_view::npos ? AF_INET : AF_INET6, text.c_str(), buf) ==
         1;
}

std::optional<std::pair<std::string, std::uint16_t>> parse_host_port(std::string_view s) {
  std::string host;
  std::string_view port;
  if (!s.empty() && s.front() == '[') {
    const auto close = s.find(']');
    if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':') {
      return std::nullopt;
    }
    host = std::string(s.substr(1, close - 1));
    port = s.substr(close + 2);
    if (host.find(':') == std::string::npos) return std::nullopt;  // brackets are for IPv6
  } else {
    const auto colon = s.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = std::string(s.substr(0, colon));
    port = s.substr(colon + 1);
    if (host.find(':') != std::string::npos) return std::nullopt;  // IPv6 needs brackets
  }
  if (!is_ip_literal(host)) return std::nullopt;
  auto p = parse_port(port);
  if (!p) return std::nullopt;
  return std::make_pair(std::move(host), *p);
}

}  // namespace mailgate::config
