// feedback/report_mime: just enough MIME to read a report (RFC 3462/6522
// multipart/report, RFC 3464 delivery-status, RFC 5965 feedback-report) from
// untrusted input: header fields, Content-Type, multipart bodies, transfer
// decoding, the field groups of a status part, and Message-IDs.
// Promises: pure; no recursion (nested multiparts are walked with an explicit
// stack, at most kMaxDepth deep and kMaxParts parts in all); every string
// kept is bounded (kMaxValue); CRLF and bare-LF line ends are both read;
// malformed input gives fewer parts or fields, never a crash or a guess.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mailgate::feedback {

inline constexpr std::size_t kMaxDepth = 4;
inline constexpr std::size_t kMaxParts = 64;
inline constexpr std::size_t kMaxValue = 2048;  // one unfolded field value
inline constexpr std::size_t kMaxFields = 256;  // fields read per group / header section

struct Entity {
  std::string_view headers;  // the header lines
  std::string_view body;     // after the empty line ("" when there is none)
};
Entity split_entity(std::string_view raw);

// Header fields in order, names as written, values unfolded and trimmed
// (at most kMaxFields, each value at most kMaxValue octets).
using Fields = std::vector<std::pair<std::string, std::string>>;
Fields read_fields(std::string_view lines);
// The first value of `name` (case-insensitive), or nullopt.
std::optional<std::string> field(const Fields& fields, std::string_view name);
std::vector<std::string> fields_named(const Fields& fields, std::string_view name);

struct ContentType {
  std::string type = "text", subtype = "plain";  // lower case
  std::map<std::string, std::string> params;     // names lower case, values unquoted
  bool is(std::string_view t, std::string_view s) const { return type == t && subtype == s; }
};
// RFC 2045 §5.1 (text/plain when absent or unreadable).
ContentType content_type(const Fields& headers);

// The body parts between the boundary lines (preamble and epilogue dropped).
std::vector<std::string_view> split_multipart(std::string_view body, std::string_view boundary);

// The body decoded per Content-Transfer-Encoding (base64, quoted-printable;
// anything else as is); nullopt when it does not decode.
std::optional<std::string> decoded_body(const Fields& headers, std::string_view body);

// A non-multipart part of a message, in document order.
struct Leaf {
  ContentType type;
  Fields headers;
  std::string_view body;
};
struct Walk {
  ContentType top;           // the message's own Content-Type
  std::vector<Leaf> leaves;  // message/rfc822 parts are leaves (not descended)
};
Walk walk(std::string_view message);

// The groups of fields of a delivery-status or feedback-report body,
// separated by empty lines (at most kMaxFields groups).
std::vector<Fields> field_groups(std::string_view text);

// "<left@right>" from a Message-ID field value (comments and spaces
// dropped); "" when there is none or it is longer than 998 octets.
std::string normalize_message_id(std::string_view value);

// An address as a report names it ("rfc822; a@b", "<a@b>", "a@b"): the bare
// address if it is one (one '@', printable ASCII or UTF-8, no spaces,
// brackets or quotes, at most 254 octets), else "".
std::string report_address(std::string_view value);

}  // namespace mailgate::feedback
