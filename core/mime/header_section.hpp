// mime/header_section: where the header section of a message ends (RFC 5322
// §2.1: header fields, then an empty line, then the body) — the one rule that
// the policy hooks' header view, the spool's held-back header block and the
// DSN's returned headers all use.
// The rule: a line ends with CRLF, a lone CR or a lone LF ("\r\r\n" is two line
// ends), as smtp::DotStuffer reads lines on the way out, so the split is the
// one the next hop will see; the first empty line ends the header section.
// Edge cases: a message that starts with an empty line has no headers (0); a
// message without an empty line is all headers (its size), also when its last
// line has no line end; "" gives 0. The empty line itself belongs to neither
// side: the body starts after it. Mail that passed smtp::DataScanner has CRLF
// line ends only, where the rule is simply the first CRLF CRLF (or a leading
// CRLF).
// Promises: pure, no allocation, linear in the length of the header section.
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

namespace mailgate::mime {

// Octets of `message` before its first empty line: the header lines with their
// line ends. message.size() when there is no empty line.
std::size_t header_section_length(std::string_view message);

// One field of a header section: its name (as written, without WSP before
// the colon; "" for stray lines before the first field) and its whole text, continuation lines and
// line ends included.
struct HeaderFieldView {
  std::string_view name;
  std::string_view raw;
};

// The fields of `section` (the header lines, without the empty line), in
// order. Lines end with CRLF; a line starting with WSP, without a colon, or
// whose name is not an RFC 5322 field name (printable ASCII but ':', at most
// 76 octets) continues the previous field, so parsing never fails and the
// fields concatenated give `section` back byte for byte. The policy hooks'
// header view and the DKIM signer both read fields this way, so a signer
// never sees a different field than a hook edited.
std::vector<HeaderFieldView> split_header_fields(std::string_view section);
bool valid_field_name(std::string_view name);

}  // namespace mailgate::mime
