// text/ascii: the small ASCII helpers every protocol module needs: case
// folding and case-insensitive comparison, blank trimming, hex digits and
// percent-encoding.
// Promises: pure functions over octets, locale-independent (only 'A'..'Z' and
// 'a'..'z' have a case; every octet >= 0x80 is left as it is and never equals
// another), no allocation except where a std::string is returned or appended.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace mailgate::text {

// --- classes and case ---------------------------------------------------------

// true when no octet of `s` is >= 0x80 (the empty string is ASCII).
bool is_ascii(std::string_view s);

constexpr char to_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }
constexpr char to_upper(char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 32) : c; }

// `s` with its ASCII letters lower-cased (upper-cased); other octets unchanged.
std::string to_lower(std::string_view s);
std::string to_upper(std::string_view s);

// Equal but for the case of ASCII letters.
constexpr bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (to_lower(a[i]) != to_lower(b[i])) return false;
  }
  return true;
}

// `s` begins with `prefix`, ASCII letters compared case-insensitively.
constexpr bool istarts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

// --- trimming -----------------------------------------------------------------

// `s` without leading and trailing spaces and tabs (RFC 5234 WSP); "" when
// `s` is blanks only.
std::string_view trim(std::string_view s);

// `s` without leading and trailing octets from `blanks`.
std::string_view trim(std::string_view s, std::string_view blanks);

// --- hex ------------------------------------------------------------------------

// Value 0..15 of a hex digit of either case; -1 when `c` is not one.
constexpr int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// As hex_value(), but lower-case letters are not digits: for grammars that
// allow upper case only (RFC 3461 xtext hexchar, RFC 6533 HEXPOINT).
constexpr int upper_hex_value(char c) { return c >= 'a' && c <= 'f' ? -1 : hex_value(c); }

enum class HexCase { Upper, Lower };

// Appends the two hex digits of `octet` (upper case unless asked: the form
// of quoted-printable "=XX", xtext "+XX" and percent-encoding "%XX").
void append_hex(std::string& out, unsigned char octet, HexCase letters = HexCase::Upper);

// RFC 3986 percent-encoding for a path segment or query value: unreserved
// characters (ALPHA / DIGIT / "-" / "." / "_" / "~") are kept, every other
// octet becomes "%XX" (upper-case hex).
std::string percent_encode(std::string_view s);

}  // namespace mailgate::text
