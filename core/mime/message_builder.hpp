// mime/message_builder: turns a structured message (the HTTP inject API's
// {from, to[], subject, text, html, headers}, DESIGN §8) into a complete
// RFC 5322 / MIME message.
// Promises: build_message() either throws BuildError naming the offending
// field or returns a message with CRLF line ends only, no line over 998 octets,
// a header section ended by an empty line, no header field an input could
// inject (CR and LF are refused everywhere) and, for multipart, a boundary that
// occurs nowhere in the parts. Decoding each body part gives back its input
// text with line ends made CRLF and a final CRLF added when missing
// (to_canonical_text). Everything the builder writes itself is ASCII; from,
// to[] and address-type extra headers are copied verbatim (so UTF-8 there goes
// out raw, as RFC 6532 allows).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mailgate::mime {

struct StructuredMessage {
  std::string from;             // header From, verbatim: "Name <a@example.com>" or "a@example.com"
  std::vector<std::string> to;  // header To, verbatim, joined with ", "; at least one
  std::string subject;          // UTF-8; empty: no Subject field
  std::string text;             // UTF-8 text/plain body; empty: none
  std::string html;             // UTF-8 text/html body; empty: none
  // Extra header fields in order, as (name, UTF-8 value). See build_message()
  // for what is refused and how values are encoded.
  std::vector<std::pair<std::string, std::string>> headers;
};

struct BuildOptions {
  std::string hostname;  // right side of the generated Message-ID: <hex@hostname>
  std::optional<std::chrono::system_clock::time_point> date;  // the Date field; nullopt: now
  // Source of the random Message-ID and multipart boundary (64 bits a call).
  // Empty: a per-thread std::mt19937_64 seeded from std::random_device.
  std::function<std::uint64_t()> random;
};

// An input the builder refuses. field() is the input that caused it: "from",
// "to", "to[2]", "subject", "text", "html", "headers[1]", or
// "options.hostname" / "options.random" (configuration, not client input);
// what() is "<field>: <problem>", fit for an HTTP 400 body.
class BuildError : public std::runtime_error {
 public:
  BuildError(std::string field, std::string_view problem);
  const std::string& field() const noexcept { return field_; }

 private:
  std::string field_;
};

// The message, headers in this order: From, To, Subject (RFC 2047 when not
// plain ASCII; omitted when empty), Date, Message-ID, MIME-Version: 1.0, the
// extra headers in their order, then the content fields. Body: text only →
// text/plain; charset=utf-8; html only → text/html; charset=utf-8; both →
// multipart/alternative (text part first); neither → an empty text/plain. Each
// body gets 7bit, quoted-printable or base64 (choose_transfer_encoding).
//
// Extra headers: the name must be 1..76 printable ASCII octets without ':'
// (RFC 5322 ftext); the value must be valid UTF-8 without CR, LF or other
// control characters (tab allowed). Refused: From, To, Subject (use the
// fields), MIME-Version and Content-* (the builder writes them), Bcc (it would
// show the blind recipients to everyone), and a second Date, Message-ID,
// Sender, Reply-To, Cc, In-Reply-To or References (RFC 5322 §3.6 allows one).
// A Date or Message-ID header replaces the generated one, in its place, after
// a syntax check (RFC 5322 date-time without comments; "<left@right>" msg-id):
// callers that thread replies or re-inject a message need their own. Address
// and message-id fields (Sender, Reply-To, Cc, In-Reply-To, References,
// Return-Path, Resent-*) are folded but otherwise copied verbatim, since
// RFC 2047 must not touch an address; every other value goes through
// encode_header_value(). Names are matched case-insensitively.
//
// Throws BuildError for any refused input, an empty from or to list, an empty
// or malformed to[] entry, invalid UTF-8 anywhere, or a header value with a run
// of over 998 octets without whitespace where it cannot be RFC 2047-encoded.
std::string build_message(const StructuredMessage& message, const BuildOptions& options);

}  // namespace mailgate::mime
