// dsn/text: see text.hpp.
#include "dsn/text.hpp"

#include <algorithm>

#include "text/utf8.hpp"

namespace mailgate::dsn::detail {
namespace {

bool continuation(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

// Largest cut <= max that does not split a UTF-8 sequence; `max` itself when
// there is none (not UTF-8), so a caller with max >= 1 always makes progress.
std::size_t char_boundary(std::string_view s, std::size_t max) {
  if (max >= s.size()) return s.size();
  std::size_t cut = max;
  while (cut > 0 && continuation(s[cut])) --cut;
  return cut == 0 ? max : cut;
}

}  // namespace

std::string sanitize(std::string_view s, bool utf8, std::size_t max_octets) {
  std::string out;
  out.reserve(std::min(s.size(), max_octets));
  bool space = false;  // a space is pending (written only before a following character)
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::string_view piece;
    if (c < 0x20 || c == 0x7f || c == ' ') {
      space = !out.empty();
      ++i;
      continue;
    }
    if (c < 0x80) {
      piece = s.substr(i, 1);
      ++i;
    } else if (const std::size_t n = utf8 ? text::utf8_char_length(s, i) : 0; n != 0) {
      piece = s.substr(i, n);
      i += n;
    } else {
      piece = "?";
      ++i;
    }
    if (out.size() + (space ? 1 : 0) + piece.size() > max_octets) break;
    if (space) out.push_back(' ');
    space = false;
    out.append(piece);
  }
  return out;
}

std::string clean_token(std::string_view s, bool host, std::size_t max_octets,
                        std::string_view fallback) {
  std::string out;
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '-' || c == '_' ||
                    (host && (c == '[' || c == ']' || c == ':'));
    if (ok && out.size() < max_octets) out.push_back(ch);
  }
  if (out.empty()) out = fallback;
  return out;
}

void fold(std::string& out, std::string_view first, std::string_view text, std::string_view cont,
          std::size_t width) {
  out.append(first);
  std::size_t line = first.size();  // octets on the current line
  bool fresh = true;                // nothing but the prefix on the current line
  auto new_line = [&] {
    out.append("\r\n").append(cont);
    line = cont.size();
    fresh = true;
  };
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find(' ', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view word = text.substr(pos, end - pos);
    pos = end + 1;
    if (word.empty()) continue;
    if (!fresh) {
      if (line + 1 + word.size() > width) {
        new_line();
      } else {
        out.push_back(' ');
        ++line;
      }
    }
    while (line + word.size() > kMaxLine) {
      const std::size_t cut = line < kMaxLine ? char_boundary(word, kMaxLine - line) : 0;
      out.append(word.substr(0, cut));
      word.remove_prefix(cut);
      new_line();
    }
    out.append(word);
    line += word.size();
    fresh = false;
  }
  out.append("\r\n");
}

void normalize_lines(std::string_view in, std::string& out) {
  out.reserve(out.size() + in.size() + 2);
  std::size_t pos = 0;
  while (pos < in.size()) {
    std::size_t eol = in.find_first_of("\r\n", pos);
    const std::size_t stop = eol == std::string_view::npos ? in.size() : eol;
    std::string_view line = in.substr(pos, stop - pos);
    std::size_t written = 0;  // octets of this output line so far
    std::size_t i = 0;
    while (i < line.size()) {
      // Copy runs without NUL, splitting at kMaxLine.
      std::size_t nul = line.find('\0', i);
      if (nul == std::string_view::npos) nul = line.size();
      std::string_view run = line.substr(i, nul - i);
      while (written + run.size() > kMaxLine) {
        const std::size_t cut = written < kMaxLine ? char_boundary(run, kMaxLine - written) : 0;
        out.append(run.substr(0, cut)).append("\r\n");
        run.remove_prefix(cut);
        written = 0;
      }
      out.append(run);
      written += run.size();
      i = nul + 1;
    }
    out.append("\r\n");
    if (eol == std::string_view::npos) break;
    pos = eol + ((in[eol] == '\r' && eol + 1 < in.size() && in[eol + 1] == '\n') ? 2 : 1);
  }
}

}  // namespace mailgate::dsn::detail
