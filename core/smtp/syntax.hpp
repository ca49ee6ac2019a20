// smtp/syntax: internal helpers shared by the smtp/ sources (character
// classes, domain and address-literal validation, error replies; case-blind
// comparison and UTF-8 come from text/). Not part of
// the module's public contract: other modules use address.hpp, command.hpp,
// params.hpp, reply.hpp and data_scanner.hpp only.
// Promises: pure functions over the given bytes; no allocation except in
// make_reply().
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <variant>

#include "smtp/address.hpp"
#include "smtp/reply.hpp"

namespace mailgate::smtp::detail {

constexpr bool is_alpha(unsigned char c) { return (c | 0x20) >= 'a' && (c | 0x20) <= 'z'; }
constexpr bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
constexpr bool is_alnum(unsigned char c) { return is_alpha(c) || is_digit(c); }
constexpr bool is_ctl(unsigned char c) { return c < 0x20 || c == 0x7f; }

// RFC 5322 atext (ASCII only).
constexpr bool is_atext(unsigned char c) {
  if (is_alnum(c)) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '/':
    case '=':
    case '?':
    case '^':
    case '_':
    case '`':
    case '{':
    case '|':
    case '}':
    case '~':
      return true;
    default:
      return false;
  }
}

inline Reply make_reply(int code, std::string_view enhanced, std::string_view text) {
  return Reply{code, std::string(enhanced), std::string(text)};
}

struct DomainRules {
  bool utf8 = false;          // U-labels (UTF8-non-ascii octets) allowed
  bool underscore = false;    // '_' allowed in labels (HELO leniency)
  bool trailing_dot = false;  // one final '.' allowed (HELO leniency)
};
// RFC 5321 Domain: sub-domain *("." sub-domain), sub-domain = Let-dig [Ldh-str];
// at most 255 octets, ASCII labels at most 63 octets. With utf8, octets >= 0x80
// count as letters (the caller has checked the whole string is valid UTF-8).
bool valid_domain(std::string_view d, DomainRules rules);

// "[...]" address literal: IPv4, "IPv6:" IPv6, or General-address-literal.
bool valid_address_literal(std::string_view lit);
bool valid_ipv4(std::string_view s);
bool valid_ipv6(std::string_view s);

// parse_path with the enhanced code to use for address errors ("5.1.7" for
// senders, "5.1.3" for recipients).
std::variant<Path, Reply> parse_path(std::string_view text, AddressOptions opts,
                                     std::string_view enhanced);

}  // namespace mailgate::smtp::detail
