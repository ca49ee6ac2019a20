// adminclient/url: see url.hpp.
#include "adminclient/url.hpp"

#include <arpa/inet.h>

#include "text/ascii.hpp"

namespace mailgate::adminclient {
namespace {

using text::istarts_with;

bool fail(std::string* error, std::string why) {
  if (error) *error = std::move(why);
  return false;
}

bool ascii_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool valid_name(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  for (char c : host)
    if (!ascii_alnum(c) && c != '-' && c != '.' && c != '_') return false;
  return true;
}

bool valid_ipv6(std::string_view host) {
  std::string text(host.substr(0, host.find('%')));  // a zone id ("%eth0") is for getaddrinfo
  in6_addr a;
  return inet_pton(AF_INET6, text.c_str(), &a) == 1 && host.size() < 100;
}

}  // namespace

bool Url::ipv6_literal() const { return host.find(':') != std::string::npos; }

std::string Url::authority() const {
  std::string a;
  a.reserve(host.size() + 8);
  if (ipv6_literal()) {
    a += '[';
    a += host;
    a += ']';
  } else {
    a += host;
  }
  if (port != (tls ? 443 : 80)) {
    a += ':';
    a += std::to_string(port);
  }
  return a;
}

std::string Url::str() const {
  std::string s = tls ? "https://" : "http://";
  s += authority();
  s += base_path;
  return s;
}

std::optional<Url> parse_url(std::string_view text, std::string* error) {
  std::string_view rest = text;
  Url url;
  if (auto p = rest.find("://"); p != std::string_view::npos) {
    url.tls = istarts_with(rest, "https://");
    if (!url.tls && !istarts_with(rest, "http://")) {
      fail(error, "only http:// and https:// URLs are supported");
      return std::nullopt;
    }
    rest.remove_prefix(url.tls ? 8 : 7);
    if (url.tls) url.port = 443;
  }
  const auto end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, end);
  std::string_view path = end == std::string_view::npos ? std::string_view{} : rest.substr(end);
  if (path.find_first_of("?#") != std::string_view::npos) {
    fail(error, "the URL must not have a query or fragment");
    return std::nullopt;
  }
  if (authority.find('@') != std::string_view::npos) {
    fail(error, "the URL must not have user info (pass --token instead)");
    return std::nullopt;
  }
  std::string_view port;
  bool has_port = false;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) {
      fail(error, "unterminated '[' in the host");
      return std::nullopt;
    }
    std::string host(authority.substr(1, close - 1));
    if (auto z = host.find("%25"); z != std::string::npos) host.erase(z + 1, 2);  // RFC 6874
    if (!valid_ipv6(host)) {
      fail(error, "bad IPv6 address '" + host + "'");
      return std::nullopt;
    }
    url.host = std::move(host);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        fail(error, "unexpected text after ']'");
        return std::nullopt;
      }
      has_port = true;
      port = after.substr(1);
    }
  } else {
    const auto colon = authority.find(':');
    std::string_view host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      has_port = true;
      port = authority.substr(colon + 1);
      if (port.find(':') != std::string_view::npos) {
        fail(error, "an IPv6 address must be in brackets: http://[::1]:8025");
        return std::nullopt;
      }
    }
    if (!valid_name(host)) {
      fail(error, host.empty() ? "the URL has no host" : "bad host '" + std::string(host) + "'");
      return std::nullopt;
    }
    url.host = std::string(host);
  }
  if (has_port) {
    unsigned long n = 0;
    bool ok = !port.empty() && port.size() <= 5;
    for (char c : port) ok = ok && c >= '0' && c <= '9';
    if (ok) n = std::stoul(std::string(port));
    if (!ok || n == 0 || n > 65535) {
      fail(error, "bad port '" + std::string(port) + "'");
      return std::nullopt;
    }
    url.port = static_cast<std::uint16_t>(n);
  }
  for (unsigned char c : path) {
    if (c <= ' ' || c >= 0x7f) {
      fail(error, "the URL path must be printable ASCII without spaces (percent-encode the rest)");
      return std::nullopt;
    }
  }
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  url.base_path = std::string(path);
  return url;
}

}  // namespace mailgate::adminclient
