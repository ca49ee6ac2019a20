// smtp/address: RFC 5321 (and RFC 6531 SMTPUTF8) mailbox and path parsing.
// Promises: accepts exactly the RFC grammar (dot-atom or quoted-string local
// part, domain or address literal), enforces the length limits (local part
// 64, domain 255, path 256 octets), rejects CR/LF/NUL anywhere, accepts UTF-8
// only when SMTPUTF8 is in effect and only if it is valid UTF-8. A source
// route ("@a,@b:user@c") is parsed, stripped and reported so that callers can
// refuse it; it is never used for routing.
#pragma once

#include <string>
#include <string_view>
#include <variant>

#include "smtp/reply.hpp"

namespace mailgate::smtp {

struct Address {
  std::string local;   // local part as on the wire (quoted form kept, quotes included)
  std::string domain;  // domain as on the wire, or "[literal]"

  bool empty() const { return local.empty() && domain.empty(); }
  std::string str() const;  // "local@domain", or "" for the null path
  bool is_address_literal() const { return !domain.empty() && domain.front() == '['; }
  bool has_non_ascii() const;
  // true when the (unquoted content of the) local part contains '%', '!' or '@':
  // legacy routing syntax that must never be honoured for non-relay clients.
  bool has_routing_chars() const;
};

struct Path {
  Address address;  // empty for "<>"
  bool had_source_route = false;
};

struct AddressOptions {
  bool allow_null = false;  // "<>" permitted (MAIL FROM)
  bool smtputf8 = false;    // UTF-8 permitted in local part and domain
  // "<Postmaster>" without a domain permitted (RCPT TO, RFC 5321 §4.1.1.3); it is
  // returned as local "postmaster", empty domain.
  bool allow_postmaster = false;
};

// Parses "<...>" exactly (angle brackets required, nothing after '>').
// Errors: 501 5.5.4 when the brackets are missing; 553 with 5.1.7 (allow_null,
// i.e. a sender) or 5.1.3 (a recipient) for a bad address; 553 5.6.7 for a
// non-ASCII address without SMTPUTF8.
std::variant<Path, Reply> parse_path(std::string_view text, AddressOptions opts);

// Parses a bare "local@domain" mailbox (no brackets), e.g. for ORCPT or Lua.
std::variant<Address, Reply> parse_mailbox(std::string_view text, bool smtputf8);


// true if any octet of `s` is >= 0x80 (needs SMTPUTF8 / 8BITMIME).
bool has_non_ascii(std::string_view s);

}  // namespace mailgate::smtp
