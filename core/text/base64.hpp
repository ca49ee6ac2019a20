// text/base64: the one base64 of the gateway (RFC 4648 §4, standard alphabet,
// '=' padding), for MIME bodies and encoded-words (mime/encoding wraps it) and
// for SASL (smtp/sasl).
// Promises: pure functions, no I/O, thread-safe. The encoder writes one line
// of ASCII. The decoder is strict: anything outside the alphabet, missing,
// misplaced or extra padding, or non-zero unused bits in the last group (a
// non-canonical encoding) gives nullopt, so every accepted text has exactly
// one decoding and one encoding. Whitespace is an error unless the caller
// asks for MIME's rule (CR, LF, space and tab skipped wherever they are).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace mailgate::text {

std::string base64_encode(std::string_view data);

enum class Base64Spaces {
  Reject,  // RFC 4648 §3.3: a space or line break is a non-alphabet character (SASL)
  Skip,    // RFC 2045 §6.8: CR, LF, space and tab are ignored (MIME bodies)
};

std::optional<std::string> base64_decode(std::string_view text,
                                         Base64Spaces spaces = Base64Spaces::Reject);

}  // namespace mailgate::text
