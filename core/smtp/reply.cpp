// smtp/reply: wire formatting of SMTP replies (RFC 5321 §4.2, RFC 2034).
// Promises: every emitted line is "CODE-" (continuation) or "CODE " (last),
// followed by the enhanced status code when one is set, and ends in CRLF.
// CR, LF and CRLF in the text split lines; no other control character reaches
// the wire (each is replaced by '?'), so echoed client input cannot inject
// lines or terminal escapes.
#include "smtp/reply.hpp"

#include <cstddef>

namespace mailgate::smtp {
namespace {

void append_sanitized(std::string_view s, std::string& out) {
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    out.push_back((c < 0x20 && c != '\t') || c == 0x7f ? '?' : ch);
  }
}

void append_code(int code, std::string& out) {
  // Always three digits: a reply code is by definition 3 digits (RFC 5321 §4.2).
  unsigned v = code < 0 ? 0u : static_cast<unsigned>(code) % 1000u;
  out.push_back(static_cast<char>('0' + v / 100));
  out.push_back(static_cast<char>('0' + (v / 10) % 10));
  out.push_back(static_cast<char>('0' + v % 10));
}

void append_line(const Reply& r, std::string_view text, bool last, std::string& out) {
  append_code(r.code, out);
  const bool has_text = !text.empty();
  if (!r.enhanced.empty()) {
    out.push_back(last ? ' ' : '-');
    append_sanitized(r.enhanced, out);
    if (has_text) {
      out.push_back(' ');
      append_sanitized(text, out);
    }
  } else if (has_text) {
    out.push_back(last ? ' ' : '-');
    append_sanitized(text, out);
  } else if (!last) {
    out.push_back('-');
  }
  out.append("\r\n");
}

}  // namespace

void format_reply(const Reply& r, std::string& out) {
  std::string_view text = r.text;
  // A single trailing line break does not create an extra empty line.
  if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
  for (;;) {
    std::size_t brk = text.find_first_of("\r\n");
    if (brk == std::string_view::npos) {
      append_line(r, text, true, out);
      return;
    }
    append_line(r, text.substr(0, brk), false, out);
    std::size_t skip =
        (text[brk] == '\r' && brk + 1 < text.size() && text[brk + 1] == '\n') ? 2 : 1;
    text.remove_prefix(brk + skip);
  }
}

std::string format_reply(const Reply& r) {
  std::string out;
  format_reply(r, out);
  return out;
}

}  // namespace mailgate::smtp
