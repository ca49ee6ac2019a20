// mime/header_section: see header_section.hpp.
#include "mime/header_section.hpp"

namespace mailgate::mime {

std::size_t header_section_length(std::string_view message) {
  std::size_t pos = 0;  // start of the current line
  while (pos < message.size()) {
    const std::size_t eol = message.find_first_of("\r\n", pos);
    if (eol == std::string_view::npos) break;
    if (eol == pos) return pos;  // an empty line
    const bool crlf = message[eol] == '\r' && eol + 1 < message.size() && message[eol + 1] == '\n';
    pos = eol + (crlf ? 2 : 1);
  }
  return message.size();
}

}  // namespace mailgate::mime
