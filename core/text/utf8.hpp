// text/utf8: well-formed UTF-8 (RFC 3629 §4), the one definition the
// protocol parsers (SMTPUTF8 addresses, ESMTP parameters), the message builder
// and the DSN sanitizer share.
// Promises: well-formed means no overlong form, no surrogate (U+D800..DFFF),
// nothing above U+10FFFF and no truncated sequence; NUL and other ASCII
// controls are well-formed (callers that refuse them check separately); pure
// functions, no allocation.
#pragma once

#include <cstddef>
#include <string_view>

namespace mailgate::text {

// true when all of `s` is well-formed UTF-8 (the empty string is).
bool valid_utf8(std::string_view s);

// Octets of the well-formed UTF-8 character that starts at s[pos]: 1 for
// ASCII, 2..4 otherwise; 0 when none starts there (a continuation octet, a
// lead octet that cannot start a character, a sequence cut short by the end of
// `s` or broken by a wrong octet). pos < s.size().
std::size_t utf8_char_length(std::string_view s, std::size_t pos);

}  // namespace mailgate::text
