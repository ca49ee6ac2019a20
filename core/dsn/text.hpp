// dsn/text: text helpers behind dsn.hpp (sanitizing, folding, line
// normalization). Internal to the dsn module; exposed for its unit tests.
// Promises: pure functions; sanitize() output never holds a control character
// or (without utf8) an octet >= 0x80, and with utf8 only valid UTF-8; fold()
// and normalize_lines() never produce a line over 998 octets.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace mailgate::dsn::detail {

constexpr std::size_t kMaxLine = 998;  // RFC 5322 §2.1.1, without the CRLF

// One-line safe text: controls (CR, LF, TAB, NUL, DEL, ...) become spaces, runs
// of spaces collapse to one, leading and trailing spaces go. With utf8, valid
// UTF-8 sequences are kept and each invalid octet becomes '?'; without, every
// octet >= 0x80 becomes '?'. At most max_octets, cut at a character boundary.
std::string sanitize(std::string_view s, bool utf8, std::size_t max_octets);

// Keeps only [A-Za-z0-9.-_] and, for host names, '[', ']' and ':' (address
// literals); at most max_octets; `fallback` when nothing is left.
std::string clean_token(std::string_view s, bool host, std::size_t max_octets,
                        std::string_view fallback);

// Appends `first` then the space-separated words of `text` (sanitized: single
// spaces), breaking lines at spaces so they stay within `width` octets where
// possible; a continuation line starts with `cont` (" " for a header field: the
// break replaces the separating space, so unfolding restores the text). A word
// that cannot fit in kMaxLine octets is split at a UTF-8 character boundary.
// Ends with CRLF.
void fold(std::string& out, std::string_view first, std::string_view text, std::string_view cont,
          std::size_t width = 78);

// Appends `in` with every line end (CRLF, lone CR, lone LF) written as CRLF,
// NULs dropped, lines over kMaxLine octets split, and a final CRLF when `in`
// does not end with a line end. Valid input (CRLF, short lines) is copied as is.
void normalize_lines(std::string_view in, std::string& out);

}  // namespace mailgate::dsn::detail
