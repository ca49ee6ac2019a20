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

namespace mailgate::mime {

// Octets of `message` before its first empty line: the header lines with their
// line ends. message.size() when there is no empty line.
std::size_t header_section_length(std::string_view message);

}  // namespace mailgate::mime
