// adminclient/url: the admin API base URL (`--api`). Path segments and query
// values are percent-encoded with text::percent_encode (text/ascii.hpp).
// Promises: parse_url accepts `http://host[:port][/prefix]`, the same with
// `https://` (the admin listener with http.tls), or `host:port` with the
// scheme left out (http); host is a name, an IPv4 literal or a bracketed IPv6
// literal; anything else (another scheme, user info, query, fragment, bad
// port) is rejected with a one-line reason.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mailgate::adminclient {

struct Url {
  std::string host;         // without brackets: "127.0.0.1", "::1", "gw.example"
  std::uint16_t port = 80;  // 443 for https
  std::string base_path;    // "" or "/prefix" (no trailing slash)
  bool tls = false;         // https

  bool ipv6_literal() const;
  // "host:port" / "[v6]:port" for the Host header and messages (the
  // scheme's default port omitted).
  std::string authority() const;
  // The canonical form: "http://" or "https://", authority(), base_path.
  std::string str() const;
};

// nullopt and *error set to the reason when `text` is not a usable http URL.
std::optional<Url> parse_url(std::string_view text, std::string* error = nullptr);

}  // namespace mailgate::adminclient
