// mime/encoding: the encodings a MIME message needs: base64 (RFC 4648 §4,
// RFC 2045 §6.8), quoted-printable (RFC 2045 §6.7), RFC 2047 encoded-words and
// RFC 5322 folding for header fields, and the choice of a
// Content-Transfer-Encoding for a text body (UTF-8 validation: text/utf8.hpp).
// Promises: pure functions, no I/O, thread-safe. Every encoder writes ASCII
// only (fold_header_value() only folds, keeping its input's octets).
// base64_encode_mime() and quoted_printable_encode() never write a line
// over 76 octets; encode_header_value() never writes an encoded-word over 75
// octets nor splits a UTF-8 character between two words; for a field name of
// up to 976 octets nothing here writes a header line over 998 octets (a value
// that cannot be folded to fit is refused).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "text/base64.hpp"

namespace mailgate::mime {

constexpr std::size_t kMaxLineOctets = 998;  // RFC 5322 §2.1.1, CRLF excluded
constexpr std::size_t kFoldWidth = 78;       // RFC 5322 §2.1.1 "SHOULD" limit
constexpr std::size_t kMaxEncodedLine = 76;  // RFC 2045 §6.7 (5), §6.8
constexpr std::size_t kMaxEncodedWord = 75;  // RFC 2047 §2

// --- base64 ---------------------------------------------------------------

// base64 itself lives in text/base64 (one implementation for MIME and SASL).
// Standard alphabet with '=' padding, one line (no line breaks).
using text::base64_encode;

// For a MIME body: lines of 76 characters, each (the last one too) ended by
// CRLF. Empty input gives an empty string.
std::string base64_encode_mime(std::string_view data);

// Strict: CR, LF, space and tab are skipped wherever they are; anything else
// outside the alphabet, missing or misplaced padding, or non-zero unused bits
// in the last group (a non-canonical encoding) gives nullopt.
inline std::optional<std::string> base64_decode(std::string_view text) {
  return text::base64_decode(text, text::Base64Spaces::Skip);
}

// --- quoted-printable --------------------------------------------------------

// Line ends in `data` (LF or CRLF) become CRLF hard line breaks; every other
// octet outside "!".."~" (and '=' itself) becomes =XX, as does a space or tab
// before a line break or at the end of the data (transports may strip it);
// soft line breaks ("=" CRLF) keep every line within 76 octets without ever
// splitting an =XX. A lone CR is data (=0D). No line break is added at the end.
std::string quoted_printable_encode(std::string_view data);

// Strict decoder, meant for tests and for checking our own output: CRLF hard
// breaks give CRLF, "=" CRLF soft breaks give nothing, =XX (either case) gives
// the octet, trailing spaces and tabs of a line are dropped (RFC 2045 §6.7
// (3)); a bare CR or LF, a raw octet outside "!".."~", or "=" not followed by
// two hex digits gives nullopt.
std::optional<std::string> quoted_printable_decode(std::string_view text);

// --- header fields -------------------------------------------------------------

// Folds a header field value that is written after "Name: " (name_len is the
// length of Name): a CRLF is inserted before a space or tab (which stays, so
// unfolding restores the value exactly) wherever a line would otherwise pass
// 78 octets; a line is never made of whitespace only. The value is not
// otherwise changed (it may hold UTF-8, for RFC 6532 fields). nullopt when a
// run without whitespace is too long for a line of 998 octets.
std::optional<std::string> fold_header_value(std::string_view value, std::size_t name_len);

// The value of an unstructured header field (Subject, Comments, X-...),
// written after "Name: ". Printable ASCII (spaces and tabs included) is
// returned folded but otherwise unchanged; anything else (non-ASCII, control
// characters, or text containing "=?", which a reader would take for an
// encoded-word) becomes RFC 2047 "=?UTF-8?B?...?=" encoded-words of at most 75
// octets, one per line, separated by CRLF SP (the folding whitespace between
// encoded-words is not part of the decoded text, so nothing is lost). The first
// word is sized so that "Name: word" fits in 78 octets; only a name too long to
// leave room for one character there (over 60 octets) makes that line longer.
// nullopt when `utf8` is not valid UTF-8.
std::optional<std::string> encode_header_value(std::string_view utf8, std::size_t name_len);

// --- bodies ---------------------------------------------------------------------

// LF and CRLF line ends become CRLF (a lone CR stays: it is data), and a
// non-empty text gets a final CRLF if it lacks one. The form a text body is
// sent (and decoded back) in.
std::string to_canonical_text(std::string_view text);

enum class TransferEncoding { SevenBit, QuotedPrintable, Base64 };

// For canonical text (see to_canonical_text): 7bit when every octet is
// printable ASCII, tab or part of a CRLF, and no line passes 998 octets;
// otherwise quoted-printable when fewer than one octet in six needs an =XX
// escape (QP spends 3 octets on each of those, base64 4/3 on every octet, so
// that is about where base64 becomes the shorter one); otherwise base64.
TransferEncoding choose_transfer_encoding(std::string_view canonical_text);

// The Content-Transfer-Encoding token: "7bit", "quoted-printable", "base64".
std::string_view transfer_encoding_name(TransferEncoding encoding);

// Encodes canonical text for a body; the result ends with CRLF unless empty,
// and no line of it passes 998 octets when `encoding` came from
// choose_transfer_encoding() (76 for quoted-printable and base64).
std::string encode_body(std::string_view canonical_text, TransferEncoding encoding);

}  // namespace mailgate::mime
