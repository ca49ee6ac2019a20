// text/utf8: see utf8.hpp.
#include "text/utf8.hpp"

#include <cstdint>
#include <cstring>

namespace mailgate::text {

std::size_t utf8_char_length(std::string_view s, std::size_t pos) {
  const auto lead = static_cast<unsigned char>(s[pos]);
  if (lead < 0x80) return 1;
  // RFC 3629 §4: the range of the second octet depends on the first; that is
  // what excludes overlong forms, surrogates and code points above U+10FFFF.
  std::size_t length = 0;
  unsigned char second_min = 0x80, second_max = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) second_min = 0xA0;  // overlong
    if (lead == 0xED) second_max = 0x9F;  // surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) second_min = 0x90;  // overlong
    if (lead == 0xF4) second_max = 0x8F;  // above U+10FFFF
  } else {
    return 0;  // 0x80..0xC1 (continuation, overlong lead), 0xF5..0xFF
  }
  if (s.size() - pos < length) return 0;
  const auto second = static_cast<unsigned char>(s[pos + 1]);
  if (second < second_min || second > second_max) return 0;
  for (std::size_t i = 2; i < length; ++i) {
    if ((static_cast<unsigned char>(s[pos + i]) & 0xC0) != 0x80) return 0;
  }
  return length;
}

bool valid_utf8(std::string_view s) {
  std::size_t pos = 0;
  while (pos < s.size()) {
    // ASCII fast path, 8 octets at a time: most mail text is ASCII.
    while (s.size() - pos >= 8) {
      std::uint64_t word;
      std::memcpy(&word, s.data() + pos, 8);
      if (word & 0x8080808080808080ull) break;
      pos += 8;
    }
    if (pos >= s.size()) break;
    const std::size_t length = utf8_char_length(s, pos);
    if (length == 0) return false;
    pos += length;
  }
  return true;
}

}  // namespace mailgate::text
