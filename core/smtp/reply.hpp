// smtp/reply: SMTP replies as values, and their wire form.
// Promises: format_reply() always emits CRLF-terminated lines, each prefixed
// with the code ("250-" for continuation, "250 " for the last) and, when an
// enhanced status code is given, that code after it (RFC 2034). Text is never
// allowed to carry CR or LF onto the wire: embedded line breaks split lines.
#pragma once

#include <string>
#include <string_view>

namespace mailgate::smtp {

struct Reply {
  int code = 0;          // 3-digit basic code, e.g. 250
  std::string enhanced;  // "2.0.0" or empty
  std::string text;      // human text; '\n' separates lines of a multi-line reply

  bool positive() const { return code >= 200 && code < 400; }
  bool transient() const { return code >= 400 && code < 500; }
  bool permanent() const { return code >= 500; }
};

// Appends the wire form of `r` to `out`.
void format_reply(const Reply& r, std::string& out);
std::string format_reply(const Reply& r);

}  // namespace mailgate::smtp
