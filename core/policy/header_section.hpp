// policy/header_section: the header section of a message as the `msg` object
// of a hook reads and edits it (msg:header, msg:headers, msg:add_header,
// msg:remove_header). Promises: parsing never fails (a malformed line is
// kept verbatim as part of the previous field); values returned are unfolded
// (CRLF + WSP → WSP) with leading whitespace removed; names compare
// case-insensitively; an added header must have an RFC 5322 field name and a
// value without CR or LF, and its line is folded so no line exceeds 998
// octets; str() gives the section back with CRLF line ends, unchanged fields
// byte for byte.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mailgate::policy {

class HeaderSection {
 public:
  HeaderSection() = default;
  // `text`: the header lines up to (not including) the empty line.
  explicit HeaderSection(std::string_view text);

  std::optional<std::string> first(std::string_view name) const;
  std::vector<std::string> all(std::string_view name) const;
  // Prepends "Name: value" (above the existing fields, like a trace field).
  // Returns "" or why the header was refused.
  std::string add(std::string_view name, std::string_view value);
  std::size_t remove(std::string_view name);  // every field of that name
  // The first field of that name takes the new value in place (the others
  // are removed); without one, the field is added as by add().
  std::string replace(std::string_view name, std::string_view value);

  bool modified() const { return modified_; }
  std::string str() const;

 private:
  struct Field {
    std::string name;
    std::string raw;  // whole field incl. folded continuation lines and final CRLF
  };
  // The folded "Name: value\r\n" field, or "" with `error` set.
  static std::string format_field(std::string_view name, std::string_view value,
                                  std::string& error);
  std::vector<Field> fields_;
  bool modified_ = false;
};

// Where the header section of `message` ends: the offset of the empty line,
// or npos when `message` has none (yet). The rule is
// mime::header_section_length's (that function gives message.size() where
// this gives npos); kept for callers that wait for a complete header section.
std::size_t header_section_end(std::string_view message);

}  // namespace mailgate::policy
