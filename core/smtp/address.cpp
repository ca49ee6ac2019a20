// smtp/address: RFC 5321 §4.1.2 path and mailbox parsing, with the RFC 6531
// (SMTPUTF8) extensions, plus the domain and address-literal validators the
// other smtp/ sources share (syntax.hpp).
// Promises: exactly the RFC grammar is accepted (Dot-string or Quoted-string
// local part; Domain or address literal), limits are enforced (local part 64,
// domain 255, "<mailbox>" 256 octets), control characters (CR, LF, NUL, ...)
// are refused everywhere, non-ASCII only with SMTPUTF8 and only as strict
// UTF-8. Source routes are validated, stripped and reported, never used.
#include "smtp/address.hpp"

#include <arpa/inet.h>

#include <cstdint>
#include <cstring>
#include <optional>

#include "smtp/syntax.hpp"
#include "text/ascii.hpp"
#include "text/utf8.hpp"

namespace mailgate::smtp {

namespace detail {

bool valid_domain(std::string_view d, DomainRules rules) {
  if (rules.trailing_dot && d.size() > 1 && d.back() == '.') d.remove_suffix(1);
  if (d.empty() || d.size() > 255) return false;
  std::size_t label_start = 0;
  bool label_ascii = true;
  for (std::size_t i = 0; i <= d.size(); ++i) {
    if (i == d.size() || d[i] == '.') {
      const std::size_t len = i - label_start;
      if (len == 0) return false;                 // empty label: "..", leading/trailing dot
      if (label_ascii && len > 63) return false;  // DNS label limit (A-labels)
      if (d[label_start] == '-' || d[i - 1] == '-') return false;  // Let-dig at both ends
      label_start = i + 1;
      label_ascii = true;
      continue;
    }
    const auto c = static_cast<unsigned char>(d[i]);
    if (is_alnum(c) || c == '-') continue;
    if (c == '_' && rules.underscore) continue;
    if (c >= 0x80 && rules.utf8) {
      label_ascii = false;
      continue;
    }
    return false;
  }
  return true;
}

bool valid_ipv4(std::string_view s) {
  // IPv4-address-literal = Snum 3("." Snum); Snum = 1*3DIGIT, value 0..255.
  int parts = 0;
  std::size_t i = 0;
  while (true) {
    std::size_t start = i;
    unsigned v = 0;
    while (i < s.size() && is_digit(static_cast<unsigned char>(s[i])) && i - start < 3) {
      v = v * 10 + static_cast<unsigned>(s[i] - '0');
      ++i;
    }
    if (i == start || v > 255) return false;
    ++parts;
    if (i == s.size()) return parts == 4;
    if (s[i] != '.' || parts == 4) return false;
    ++i;
  }
}

bool valid_ipv6(std::string_view s) {
  // Pre-filter to the characters of RFC 5321 IPv6-addr, then let libc decide
  // (inet_pton is pure computation). Rejects zone ids ("%eth0") and brackets.
  if (s.empty() || s.size() > 45) return false;
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (!(is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') || c == ':' || c == '.')) {
      return false;
    }
  }
  char buf[48];
  std::memcpy(buf, s.data(), s.size());
  buf[s.size()] = '\0';
  unsigned char addr[16];
  return inet_pton(AF_INET6, buf, addr) == 1;
}

bool valid_address_literal(std::string_view lit) {
  if (lit.size() < 3 || lit.front() != '[' || lit.back() != ']') return false;
  std::string_view in = lit.substr(1, lit.size() - 2);
  if (text::istarts_with(in, "IPv6:")) return valid_ipv6(in.substr(5));
  const std::size_t colon = in.find(':');
  if (colon == std::string_view::npos) return valid_ipv4(in);
  // General-address-literal = Standardized-tag ":" 1*dcontent;
  // Standardized-tag = Ldh-str; dcontent = %d33-90 / %d94-126.
  std::string_view tag = in.substr(0, colon);
  std::string_view content = in.substr(colon + 1);
  if (tag.empty() || content.empty()) return false;
  for (char ch : tag) {
    const auto c = static_cast<unsigned char>(ch);
    if (!is_alnum(c) && c != '-') return false;
  }
  if (tag.back() == '-') return false;
  for (char ch : content) {
    const auto c = static_cast<unsigned char>(ch);
    if (!((c >= 33 && c <= 90) || (c >= 94 && c <= 126))) return false;
  }
  return true;
}

namespace {

Reply addr_error(std::string_view enhanced, std::string_view what) {
  std::string text = "Bad ";
  text += enhanced == "5.1.7" ? "sender" : "recipient";
  text += " address syntax: ";
  text += what;
  return Reply{553, std::string(enhanced), std::move(text)};
}

// Parses a mailbox ("local@domain", no brackets, no route). Non-ASCII has
// already been vetted by the caller (valid UTF-8 and SMTPUTF8 in effect).
std::variant<Address, Reply> parse_mailbox_checked(std::string_view s, bool utf8,
                                                   std::string_view enh) {
  if (s.empty()) return addr_error(enh, "empty address");
  std::size_t i = 0;
  if (s[0] == '"') {
    // Quoted-string = DQUOTE *QcontentSMTP DQUOTE
    i = 1;
    for (;;) {
      if (i >= s.size()) return addr_error(enh, "unterminated quoted local part");
      const auto c = static_cast<unsigned char>(s[i]);
      if (c == '"') {
        ++i;
        break;
      }
      if (c == '\\') {  // quoted-pairSMTP = "\" %d32-126
        if (i + 1 >= s.size()) return addr_error(enh, "unterminated quoted local part");
        const auto n = static_cast<unsigned char>(s[i + 1]);
        if (n < 32 || n > 126) return addr_error(enh, "invalid quoted pair in local part");
        i += 2;
        continue;
      }
      // qtextSMTP = %d32-33 / %d35-91 / %d93-126 (/ UTF8-non-ascii)
      if ((c >= 32 && c <= 126) || (c >= 0x80 && utf8)) {
        ++i;
        continue;
      }
      return addr_error(enh, "invalid character in quoted local part");
    }
    if (i >= s.size() || s[i] != '@') {
      return addr_error(
          enh, i >= s.size() ? "address must include a domain" : "garbage after quoted local part");
    }
  } else {
    // Dot-string = Atom *("." Atom)
    bool prev_dot = true;  // a leading dot is an error
    for (; i < s.size() && s[i] != '@'; ++i) {
      const auto c = static_cast<unsigned char>(s[i]);
      if (c == '.') {
        if (prev_dot) return addr_error(enh, "misplaced dot in local part");
        prev_dot = true;
        continue;
      }
      if (!(is_atext(c) || (c >= 0x80 && utf8))) {
        return addr_error(enh, "invalid character in local part");
      }
      prev_dot = false;
    }
    if (i == 0) return addr_error(enh, "empty local part");
    if (prev_dot) return addr_error(enh, "misplaced dot in local part");
    if (i >= s.size()) return addr_error(enh, "address must include a domain");
  }
  const std::string_view local = s.substr(0, i);
  if (local.size() > 64) return addr_error(enh, "local part too long (max 64 octets)");
  const std::string_view domain = s.substr(i + 1);
  if (domain.empty()) return addr_error(enh, "empty domain");
  if (domain.front() == '[') {
    if (!detail::valid_address_literal(domain)) return addr_error(enh, "invalid address literal");
  } else {
    if (domain.size() > 255) return addr_error(enh, "domain too long (max 255 octets)");
    if (!detail::valid_domain(domain, {.utf8 = utf8})) return addr_error(enh, "invalid domain");
  }
  if (domain.size() > 255) return addr_error(enh, "domain too long (max 255 octets)");
  if (s.size() > 254) return addr_error(enh, "address too long (max 256 octets with <>)");
  return Address{std::string(local), std::string(domain)};
}

// Common pre-checks over the whole text: control characters, UTF-8 policy.
std::optional<Reply> vet_octets(std::string_view s, bool utf8, std::string_view enh) {
  bool non_ascii = false;
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (is_ctl(c)) return addr_error(enh, "control character in address");
    non_ascii |= c >= 0x80;
  }
  if (non_ascii) {
    if (!text::valid_utf8(s)) return addr_error(enh, "invalid UTF-8");
    if (!utf8) {
      return make_reply(553, "5.6.7", "Non-ASCII address requires SMTPUTF8");
    }
  }
  return std::nullopt;
}

}  // namespace

std::variant<Path, Reply> parse_path(std::string_view text, AddressOptions opts,
                                     std::string_view enh) {
  if (text.size() < 2 || text.front() != '<' || text.back() != '>') {
    return make_reply(501, "5.5.4", "Syntax error: address must be enclosed in <>");
  }
  std::string_view in = text.substr(1, text.size() - 2);
  if (auto bad = vet_octets(in, opts.smtputf8, enh)) return *bad;
  Path path;
  if (in.empty()) {
    if (opts.allow_null) return path;
    return make_reply(553, enh, "Null address not allowed here");
  }
  if (in.front() == '@') {
    // A-d-l = At-domain *( "," At-domain ) ":" ; At-domain = "@" Domain
    std::size_t i = 0;
    for (;;) {
      if (i >= in.size() || in[i] != '@') return addr_error(enh, "invalid source route");
      ++i;
      std::size_t end = in.find_first_of(",:", i);
      if (end == std::string_view::npos) return addr_error(enh, "invalid source route");
      if (!valid_domain(in.substr(i, end - i), {.utf8 = opts.smtputf8})) {
        return addr_error(enh, "invalid domain in source route");
      }
      i = end + 1;
      if (in[end] == ':') break;
    }
    in.remove_prefix(i);
    path.had_source_route = true;
  }
  if (opts.allow_postmaster && !path.had_source_route && text::iequals(in, "postmaster")) {
    path.address.local = "postmaster";
    return path;
  }
  auto r = parse_mailbox_checked(in, opts.smtputf8, enh);
  if (auto* e = std::get_if<Reply>(&r)) return std::move(*e);
  path.address = std::move(std::get<Address>(r));
  return path;
}

}  // namespace detail

std::string Address::str() const {
  if (domain.empty()) return local;
  std::string s;
  s.reserve(local.size() + 1 + domain.size());
  s += local;
  s += '@';
  s += domain;
  return s;
}

bool has_non_ascii(std::string_view s) { return !text::is_ascii(s); }

bool Address::has_non_ascii() const {
  return smtp::has_non_ascii(local) || smtp::has_non_ascii(domain);
}

bool Address::has_routing_chars() const {
  auto routing = [](char c) { return c == '%' || c == '!' || c == '@'; };
  if (local.size() >= 2 && local.front() == '"' && local.back() == '"') {
    for (std::size_t i = 1; i + 1 < local.size(); ++i) {
      if (local[i] == '\\') ++i;  // quoted pair: the next octet is literal content
      if (i + 1 < local.size() && routing(local[i])) return true;
    }
    return false;
  }
  for (char c : local)
    if (routing(c)) return true;
  return false;
}

std::variant<Path, Reply> parse_path(std::string_view text, AddressOptions opts) {
  return detail::parse_path(text, opts, opts.allow_null ? "5.1.7" : "5.1.3");
}

std::variant<Address, Reply> parse_mailbox(std::string_view text, bool smtputf8) {
  if (auto bad = detail::vet_octets(text, smtputf8, "5.1.3")) return *bad;
  return detail::parse_mailbox_checked(text, smtputf8, "5.1.3");
}

}  // namespace mailgate::smtp
