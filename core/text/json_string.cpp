// text/json_string: see json_string.hpp.
#include "text/json_string.hpp"

#include "text/utf8.hpp"

namespace mailgate::text {

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  std::size_t pos = 0;
  while (pos < s.size()) {
    // Copy the longest run that needs no escaping in one append.
    std::size_t run = pos;
    while (run < s.size()) {
      const auto c = static_cast<unsigned char>(s[run]);
      if (c < 0x20 || c == '"' || c == '\\' || c >= 0x80) break;
      ++run;
    }
    out.append(s.data() + pos, run - pos);
    pos = run;
    if (pos >= s.size()) break;
    const auto c = static_cast<unsigned char>(s[pos]);
    if (c >= 0x80) {
      const std::size_t n = utf8_char_length(s, pos);
      if (n == 0) {
        out.append("\xEF\xBF\xBD");
        ++pos;
      } else {
        out.append(s.data() + pos, n);
        pos += n;
      }
      continue;
    }
    ++pos;
    switch (c) {
      case '"':
        out.append("\\\"");
        break;
      case '\\':
        out.append("\\\\");
        break;
      case '\b':
        out.append("\\b");
        break;
      case '\f':
        out.append("\\f");
        break;
      case '\n':
        out.append("\\n");
        break;
      case '\r':
        out.append("\\r");
        break;
      case '\t':
        out.append("\\t");
        break;
      default: {
        const char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
        out.append(esc, sizeof esc);
      }
    }
  }
  out.push_back('"');
}

}  // namespace mailgate::text
