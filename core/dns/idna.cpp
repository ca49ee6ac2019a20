// dns/idna: A-label conversion, label by label. A plain ASCII label is only
// checked ([A-Za-z0-9_-], lower-cased) — names such as "r3---sn-x" exist in
// the DNS, and IDNA's hyphen rules must not reject them. A label with
// non-ASCII octets, or an "xn--" label (whose punycode must decode to a valid
// U-label), goes through idn2_to_ascii_8z with IDN2_NFC_INPUT |
// IDN2_NONTRANSITIONAL (UTS #46 mapping: case folding, "ß" kept as "ß").
// The assembled name is checked once more for the promises in idna.hpp.
#include "dns/idna.hpp"

#include <idn2.h>

#include <algorithm>

#include "text/ascii.hpp"

namespace mailgate::dns {

namespace {

using text::is_ascii;
using text::to_lower;

bool ldh(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

bool starts_with_xn(std::string_view label) {
  return label.size() >= 4 && to_lower(label[0]) == 'x' && to_lower(label[1]) == 'n' &&
         label[2] == '-' && label[3] == '-';
}

// Appends the A-label form of one label (non-empty) to out.
bool convert_label(std::string_view label, std::string& out, std::string& error) {
  if (is_ascii(label) && !starts_with_xn(label)) {
    for (char c : label) out.push_back(to_lower(c));
    return true;
  }
  std::string z(label);
  char* converted = nullptr;
  int rc = idn2_to_ascii_8z(z.c_str(), &converted, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
  if (rc != IDN2_OK) {
    error = "label \"" + z + "\": " + idn2_strerror(rc);
    idn2_free(converted);
    return false;
  }
  for (const char* p = converted; *p; ++p) out.push_back(to_lower(*p));
  idn2_free(converted);
  return true;
}

}  // namespace

std::optional<std::string> to_a_label(std::string_view domain, std::string& error) {
  if (domain.size() > 1 && domain.back() == '.') domain.remove_suffix(1);
  if (domain.empty() || domain == ".") {
    error = "empty domain";
    return std::nullopt;
  }
  if (domain.size() > 1024) {
    error = "domain too long";
    return std::nullopt;
  }
  std::string out;
  out.reserve(domain.size());
  std::size_t start = 0;
  while (true) {
    auto dot = domain.find('.', start);
    auto label = domain.substr(start, dot == std::string_view::npos ? dot : dot - start);
    if (label.empty()) {
      error = "empty label";
      return std::nullopt;
    }
    if (!out.empty()) out.push_back('.');
    if (!convert_label(label, out, error)) return std::nullopt;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  // Final check of the wire form (also covers what idn2 produced).
  if (out.size() > 253) {
    error = "domain longer than 253 octets";
    return std::nullopt;
  }
  std::size_t label_len = 0;
  for (char c : out) {
    if (c == '.') {
      if (label_len == 0) {
        error = "empty label";
        return std::nullopt;
      }
      label_len = 0;
      continue;
    }
    if (!ldh(c)) {
      error = std::string("character not allowed in a domain name: '") + c + "'";
      return std::nullopt;
    }
    if (++label_len > 63) {
      error = "label longer than 63 octets";
      return std::nullopt;
    }
  }
  if (label_len == 0) {
    error = "empty label";
    return std::nullopt;
  }
  return out;
}

std::string to_unicode(std::string_view domain) {
  auto a = normalize_domain(domain);
  if (a.find("xn--") == std::string::npos) return a;
  char* u = nullptr;
  if (idn2_to_unicode_8z8z(a.c_str(), &u, 0) != IDN2_OK) {
    idn2_free(u);
    return a;
  }
  std::string out(u);
  idn2_free(u);
  return out;
}

std::string normalize_domain(std::string_view domain) {
  if (!domain.empty() && domain.front() != '[') {
    std::string error;
    if (auto a = to_a_label(domain, error)) return std::move(*a);
  }
  return text::to_lower(domain);
}

}  // namespace mailgate::dns
