// policy/header_section: see header_section.hpp.
#include "policy/header_section.hpp"

#include <algorithm>

#include "mime/header_section.hpp"
#include "text/ascii.hpp"

namespace mailgate::policy {
namespace {

using text::iequals;

bool valid_name(std::string_view n) { return mime::valid_field_name(n); }

std::string unfold(std::string_view raw) {
  auto colon = raw.find(':');
  std::string_view v = raw.substr(colon + 1);
  std::string out;
  out.reserve(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (v[i] == '\r' || v[i] == '\n') continue;
    out.push_back(v[i]);
  }
  return std::string(text::trim(out));
}

}  // namespace

std::size_t header_section_end(std::string_view message) {
  const std::size_t length = mime::header_section_length(message);
  return length < message.size() ? length : std::string_view::npos;
}

HeaderSection::HeaderSection(std::string_view text) {
  for (const auto& f : mime::split_header_fields(text))
    fields_.push_back({std::string(f.name), std::string(f.raw)});
  for (auto& f : fields_)
    if (!f.raw.ends_with("\r\n")) f.raw += "\r\n";
}

std::optional<std::string> HeaderSection::first(std::string_view name) const {
  for (const auto& f : fields_)
    if (!f.name.empty() && iequals(f.name, name)) return unfold(f.raw);
  return std::nullopt;
}

std::vector<std::string> HeaderSection::all(std::string_view name) const {
  std::vector<std::string> out;
  for (const auto& f : fields_)
    if (!f.name.empty() && iequals(f.name, name)) out.push_back(unfold(f.raw));
  return out;
}

std::string HeaderSection::format_field(std::string_view name, std::string_view value,
                                        std::string& error) {
  if (!valid_name(name)) {
    error = "invalid header name";
    return {};
  }
  if (value.find_first_of("\r\n") != std::string_view::npos) {
    error = "header value must not contain CR or LF";
    return {};
  }
  if (value.size() > 16 * 1024) {
    error = "header value too long";
    return {};
  }
  // Fold at spaces so no line exceeds 998 octets; a run without spaces that
  // long cannot be folded and is refused.
  std::string raw(name);
  raw += ": ";
  std::size_t line_len = raw.size();
  std::size_t pos = 0;
  while (pos < value.size()) {
    auto sp = value.find(' ', pos + 1);
    std::string_view word = value.substr(pos, sp == std::string_view::npos ? value.npos : sp - pos);
    if (line_len + word.size() > 998) {
      if (word.size() + 1 > 998 || word.front() != ' ') {
        error = "header value has a word too long to fold";
        return {};
      }
      raw += "\r\n";
      line_len = 0;
    }
    raw.append(word);
    line_len += word.size();
    pos += word.size();
  }
  raw += "\r\n";
  return raw;
}

std::string HeaderSection::add(std::string_view name, std::string_view value) {
  std::string error;
  auto raw = format_field(name, value, error);
  if (!error.empty()) return error;
  fields_.insert(fields_.begin(), {std::string(name), std::move(raw)});
  modified_ = true;
  return {};
}

std::string HeaderSection::replace(std::string_view name, std::string_view value) {
  std::string error;
  auto raw = format_field(name, value, error);
  if (!error.empty()) return error;
  auto first = std::find_if(fields_.begin(), fields_.end(), [&](const Field& f) {
    return !f.name.empty() && iequals(f.name, name);
  });
  if (first == fields_.end()) return add(name, value);
  first->name = std::string(name);
  first->raw = std::move(raw);
  const auto keep = first - fields_.begin();
  std::size_t i = 0;
  std::erase_if(fields_, [&](const Field& f) {
    const bool later = static_cast<std::ptrdiff_t>(i++) > keep;
    return later && !f.name.empty() && iequals(f.name, name);
  });
  modified_ = true;
  return {};
}

std::size_t HeaderSection::remove(std::string_view name) {
  const auto before = fields_.size();
  std::erase_if(fields_, [&](const Field& f) { return !f.name.empty() && iequals(f.name, name); });
  const auto n = before - fields_.size();
  if (n) modified_ = true;
  return n;
}

std::string HeaderSection::str() const {
  std::string out;
  for (const auto& f : fields_) out += f.raw;
  return out;
}

}  // namespace mailgate::policy
