// smtp/reply_parser: incremental SMTP reply parsing (RFC 5321 §4.2, RFC 2034).
// Promises (see reply_parser.hpp): one reply per completion, bounded memory
// (a partial line is at most max_line + 1 octets), the same result for any
// fragmentation; lines are found with memchr and a line wholly inside one
// input is parsed in place without copying.
#include "smtp/reply_parser.hpp"

#include <cstring>

namespace mailgate::smtp {
namespace {

constexpr bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Appends `s`, replacing control characters other than HT by '?'.
void append_sanitized(std::string_view s, std::string& out) {
  const std::size_t at = out.size();
  out.append(s);
  for (std::size_t i = at; i < out.size(); ++i) {
    const auto c = static_cast<unsigned char>(out[i]);
    if ((c < 0x20 && c != '\t') || c == 0x7f) out[i] = '?';
  }
}

}  // namespace

std::size_t enhanced_code_length(std::string_view s) {
  if (s.size() < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.') return 0;
  std::size_t i = 2;
  for (int part = 0; part < 2; ++part) {
    const std::size_t start = i;
    while (i < s.size() && i - start < 4 && is_digit(s[i])) ++i;
    const std::size_t n = i - start;
    if (n == 0 || n > 3) return 0;
    if (part == 0) {
      if (i >= s.size() || s[i] != '.') return 0;
      ++i;
    } else if (i < s.size() && s[i] == '.') {
      return 0;  // "5.1.1.2" is not an enhanced code
    }
  }
  return i;
}

ReplyParser::ReplyParser(std::size_t max_line, std::size_t max_lines)
    : max_line_(max_line), max_lines_(max_lines) {}

void ReplyParser::reset() {
  partial_.clear();
  reply_ = Reply{};
  lines_ = 0;
  done_ = error_ = false;
}

Reply ReplyParser::take() {
  Reply r = std::move(reply_);
  reset();
  return r;
}

void ReplyParser::fail() {
  error_ = true;
  partial_.clear();
}

std::size_t ReplyParser::feed(std::string_view in) {
  if (done_ || error_) return 0;
  std::size_t pos = 0;
  while (pos < in.size()) {
    const char* b = in.data() + pos;
    const std::size_t avail = in.size() - pos;
    const auto* nl = static_cast<const char*>(std::memchr(b, '\n', avail));
    if (nl == nullptr) {
      // The rest is an unfinished line; +1 leaves room for the CR of its CRLF.
      if (partial_.size() + avail > max_line_ + 1) {
        fail();
      } else {
        partial_.append(b, avail);
      }
      return in.size();
    }
    const auto n = static_cast<std::size_t>(nl - b);
    pos += n + 1;
    std::string_view l(b, n);
    if (!partial_.empty()) {
      if (partial_.size() + n > max_line_ + 1) {
        fail();
        return pos;
      }
      partial_.append(b, n);
      l = partial_;
    }
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    if (l.size() > max_line_) {
      fail();
      return pos;
    }
    line(l);
    partial_.clear();
    if (done_ || error_) return pos;
  }
  return pos;
}

void ReplyParser::line(std::string_view l) {
  if (l.size() < 3 || !is_digit(l[0]) || !is_digit(l[1]) || !is_digit(l[2])) return fail();
  const int code = (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
  if (code < 200 || code > 599) return fail();
  bool last = true;
  std::string_view text;
  if (l.size() > 3) {
    if (l[3] == '-') {
      last = false;
    } else if (l[3] != ' ') {
      return fail();
    }
    text = l.substr(4);
  }
  if (++lines_ > max_lines_) return fail();
  if (lines_ == 1) {
    reply_.code = code;
    const std::size_t e = enhanced_code_length(text);
    const char cls = code / 100 == 3 ? '2' : static_cast<char>('0' + code / 100);
    if (e != 0 && text[0] == cls && (e == text.size() || text[e] == ' ')) {
      reply_.enhanced.assign(text.substr(0, e));
    }
  } else {
    if (code != reply_.code) return fail();
    reply_.text.push_back('\n');
  }
  const std::string_view enh = reply_.enhanced;
  if (!enh.empty() && text.substr(0, enh.size()) == enh &&
      (text.size() == enh.size() || text[enh.size()] == ' ')) {
    text.remove_prefix(text.size() == enh.size() ? enh.size() : enh.size() + 1);
  }
  append_sanitized(text, reply_.text);
  if (last) done_ = true;
}

}  // namespace mailgate::smtp
