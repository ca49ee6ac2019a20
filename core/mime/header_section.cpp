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

bool valid_field_name(std::string_view n) {
  if (n.empty() || n.size() > 76) return false;
  for (char c : n)
    if (c < 33 || c > 126 || c == ':') return false;
  return true;
}

std::vector<HeaderFieldView> split_header_fields(std::string_view section) {
  std::vector<HeaderFieldView> fields;
  std::size_t pos = 0;
  while (pos < section.size()) {
    const auto eol = section.find("\r\n", pos);
    const std::size_t next = eol == std::string_view::npos ? section.size() : eol + 2;
    const std::string_view line = section.substr(pos, next - pos);
    const bool continuation = line[0] == ' ' || line[0] == '\t';
    const auto colon = line.find(':');
    std::string_view name = line.substr(0, colon == std::string_view::npos ? 0 : colon);
    // obs-optional (RFC 5322 §4.5.3): WSP may come between name and colon.
    while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.remove_suffix(1);
    if (continuation || colon == std::string_view::npos || !valid_field_name(name)) {
      if (fields.empty()) {
        fields.push_back({{}, line});
      } else {
        auto& last = fields.back();
        last.raw = std::string_view(last.raw.data(), last.raw.size() + line.size());
      }
    } else {
      fields.push_back({name, line});
    }
    pos = next;
  }
  return fields;
}

}  // namespace mailgate::mime
