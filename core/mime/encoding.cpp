// mime/encoding: see encoding.hpp.
#include "mime/encoding.hpp"

#include <algorithm>
#include <array>
#include <cstdint>

#include "text/ascii.hpp"
#include "text/utf8.hpp"

namespace mailgate::mime {
namespace {

bool is_wsp(char c) { return c == ' ' || c == '\t'; }

// Printable ASCII plus space and tab: what an unstructured header field may
// carry without RFC 2047.
bool is_plain_header_text(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return (c >= 0x20 && c < 0x7F) || c == '\t'; });
}

// One line of quoted-printable (without its line break), appended to `out`.
void append_quoted_printable_line(std::string_view line, std::string& out) {
  std::size_t line_length = 0;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    const bool last = i + 1 == line.size();
    // Whitespace that would end the line must be escaped: transports strip it.
    const bool literal = (c >= '!' && c <= '~' && c != '=') || (is_wsp(c) && !last);
    const std::size_t width = literal ? 1 : 3;
    // Only the last item of a line may use column 76; the others leave room
    // for the '=' of a soft line break.
    const std::size_t limit = last ? kMaxEncodedLine : kMaxEncodedLine - 1;
    if (line_length + width > limit) {
      out.append("=\r\n");
      line_length = 0;
    }
    if (literal) {
      out.push_back(c);
    } else {
      const auto octet = static_cast<unsigned char>(c);
      out.push_back('=');
      text::append_hex(out, octet);
    }
    line_length += width;
  }
}

// Decodes one quoted-printable line (line break removed) into `out`; false on
// anything our encoder would not write.
bool decode_quoted_printable_line(std::string_view line, std::string& out) {
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (c == '=') {
      if (line.size() - i < 3) return false;
      const int high = text::hex_value(line[i + 1]), low = text::hex_value(line[i + 2]);
      if (high < 0 || low < 0) return false;
      out.push_back(static_cast<char>(high * 16 + low));
      i += 2;
    } else if ((c >= '!' && c <= '~') || is_wsp(c)) {
      out.push_back(c);
    } else {
      return false;
    }
  }
  return true;
}

// End of the longest run of whole UTF-8 characters from `pos` that fits in
// `max_octets` (valid UTF-8 assumed); `pos` itself when not even one fits.
std::size_t whole_characters_end(std::string_view utf8, std::size_t pos, std::size_t max_octets) {
  std::size_t end = pos;
  while (end < utf8.size()) {
    const std::size_t length = text::utf8_char_length(utf8, end);
    if (end + length - pos > max_octets) break;
    end += length;
  }
  return end;
}

// The whole value as RFC 2047 B encoded-words, one per line.
std::string encode_words(std::string_view utf8, std::size_t name_len) {
  constexpr std::string_view kWordStart = "=?UTF-8?B?";
  constexpr std::string_view kWordEnd = "?=";
  constexpr std::size_t kOverhead = kWordStart.size() + kWordEnd.size();
  // base64 writes 4 characters for each 3 octets or part of them: 63
  // characters of payload hold 15 groups, 45 octets.
  constexpr std::size_t kMaxWordOctets = (kMaxEncodedWord - kOverhead) / 4 * 3;

  std::string out;
  std::size_t pos = 0;
  bool first = true;
  while (pos < utf8.size()) {
    std::size_t max_octets = kMaxWordOctets;
    if (first) {
      // "Name: " already uses part of the first line.
      const std::size_t used = name_len + 2 + kOverhead;
      const std::size_t room = used < kFoldWidth ? kFoldWidth - used : 0;
      max_octets = std::min(max_octets, room / 4 * 3);
    }
    std::size_t end = whole_characters_end(utf8, pos, max_octets);
    // A name too long to leave room: one character, so that line passes 78 by
    // as little as it can.
    if (end == pos) end = pos + text::utf8_char_length(utf8, pos);
    if (!first) out.append("\r\n ");
    out.append(kWordStart).append(base64_encode(utf8.substr(pos, end - pos))).append(kWordEnd);
    pos = end;
    first = false;
  }
  return out;
}

}  // namespace

std::string base64_encode_mime(std::string_view data) {
  const std::string flat = base64_encode(data);
  std::string out;
  out.reserve(flat.size() + (flat.size() / kMaxEncodedLine + 1) * 2);
  for (std::size_t pos = 0; pos < flat.size(); pos += kMaxEncodedLine)
    out.append(flat, pos, kMaxEncodedLine).append("\r\n");
  return out;
}

std::string quoted_printable_encode(std::string_view data) {
  std::string out;
  out.reserve(data.size() + data.size() / 8);
  std::size_t pos = 0;
  for (;;) {
    const std::size_t newline = data.find('\n', pos);
    const std::size_t line_end = newline == std::string_view::npos ? data.size() : newline;
    std::size_t content_end = line_end;
    if (newline != std::string_view::npos && content_end > pos && data[content_end - 1] == '\r')
      --content_end;  // CRLF: the CR belongs to the line break
    append_quoted_printable_line(data.substr(pos, content_end - pos), out);
    if (newline == std::string_view::npos) break;
    out.append("\r\n");
    pos = newline + 1;
  }
  return out;
}

std::optional<std::string> quoted_printable_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t line_end = text.find("\r\n", pos);
    const bool has_break = line_end != std::string_view::npos;
    if (!has_break) line_end = text.size();
    std::string_view line = text.substr(pos, line_end - pos);
    while (!line.empty() && is_wsp(line.back())) line.remove_suffix(1);
    const bool soft_break = !line.empty() && line.back() == '=';
    if (soft_break) line.remove_suffix(1);
    if (!decode_quoted_printable_line(line, out)) return std::nullopt;
    if (has_break && !soft_break) out.append("\r\n");
    pos = has_break ? line_end + 2 : text.size();
  }
  return out;
}

std::optional<std::string> fold_header_value(std::string_view value, std::size_t name_len) {
  std::string out;
  out.reserve(value.size() + value.size() / 32);
  std::size_t line_length = name_len + 2;  // "Name: "
  for (std::size_t pos = 0; pos < value.size();) {
    // A token is a run of whitespace then a run of other octets; a fold may go
    // only before a token that has the latter, so no line is all whitespace.
    std::size_t text_start = value.find_first_not_of(" \t", pos);
    if (text_start == std::string_view::npos) text_start = value.size();
    std::size_t token_end = value.find_first_of(" \t", text_start);
    if (token_end == std::string_view::npos) token_end = value.size();
    const std::string_view token = value.substr(pos, token_end - pos);
    const bool may_fold_before = pos > 0 && text_start < token_end;
    if (may_fold_before && line_length + token.size() > kFoldWidth) {
      out.append("\r\n");
      line_length = 0;
    }
    out.append(token);
    line_length += token.size();
    if (line_length > kMaxLineOctets) return std::nullopt;
    pos = token_end;
  }
  return out;
}

std::optional<std::string> encode_header_value(std::string_view utf8, std::size_t name_len) {
  if (!text::valid_utf8(utf8)) return std::nullopt;
  if (is_plain_header_text(utf8) && utf8.find("=?") == std::string_view::npos) {
    if (auto folded = fold_header_value(utf8, name_len)) return folded;
    // A run too long to fold at whitespace: encoded-words can break anywhere.
  }
  return encode_words(utf8, name_len);
}

std::string to_canonical_text(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 32 + 2);
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\n' && (i == 0 || text[i - 1] != '\r')) out.push_back('\r');
    out.push_back(text[i]);
  }
  if (!out.empty() && out.back() != '\n') out.append("\r\n");
  return out;
}

TransferEncoding choose_transfer_encoding(std::string_view canonical_text) {
  bool seven_bit = true;
  std::size_t escaped_octets = 0;  // octets quoted-printable would write as =XX
  std::size_t line_length = 0;
  for (std::size_t i = 0; i < canonical_text.size(); ++i) {
    const char c = canonical_text[i];
    if (c == '\r' && i + 1 < canonical_text.size() && canonical_text[i + 1] == '\n') {
      ++i;
      line_length = 0;
      continue;
    }
    if ((c >= 0x20 && c < 0x7F) || c == '\t') {
      if (++line_length > kMaxLineOctets) seven_bit = false;
      continue;
    }
    seven_bit = false;
    ++escaped_octets;
  }
  if (seven_bit) return TransferEncoding::SevenBit;
  return escaped_octets * 6 < canonical_text.size() ? TransferEncoding::QuotedPrintable
                                                    : TransferEncoding::Base64;
}

std::string_view transfer_encoding_name(TransferEncoding encoding) {
  switch (encoding) {
    case TransferEncoding::SevenBit:
      return "7bit";
    case TransferEncoding::QuotedPrintable:
      return "quoted-printable";
    case TransferEncoding::Base64:
      return "base64";
  }
  return "7bit";
}

std::string encode_body(std::string_view canonical_text, TransferEncoding encoding) {
  switch (encoding) {
    case TransferEncoding::SevenBit:
      return std::string(canonical_text);
    case TransferEncoding::QuotedPrintable:
      return quoted_printable_encode(canonical_text);
    case TransferEncoding::Base64:
      return base64_encode_mime(canonical_text);
  }
  return std::string(canonical_text);
}

}  // namespace mailgate::mime
