// template/tag_scan: see tag_scan.hpp. Mirrors kainjow::mustache 4.1's
// parser::parse (tag start/end search, "{{{" only with the default
// delimiters, "=" set-delimiter tags, trimmed tag contents).
#include "template/tag_scan.hpp"

#include <vector>

namespace mailgate::templating {
namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// kainjow's parse_set_delimiter_tag: "=<begin> <end>=", neither with '=' or
// whitespace.
bool set_delimiters(std::string_view contents, std::string& begin, std::string& end) {
  if (contents.size() < 5 || contents.back() != '=') return false;
  const auto inner = trim(contents.substr(1, contents.size() - 2));
  const auto space = inner.find(' ');
  if (space == std::string_view::npos) return false;
  const auto rest = inner.find_first_not_of(' ', space + 1);
  if (rest == std::string_view::npos) return false;
  const auto b = inner.substr(0, space), e = inner.substr(rest);
  for (const auto part : {b, e})
    for (const char c : part)
      if (c == '=' || is_space(c)) return false;
  begin = std::string(b);
  end = std::string(e);
  return true;
}

}  // namespace

TagScan scan_tags(std::string_view text, std::size_t depth_limit) {
  TagScan out;
  std::string begin = "{{", end = "}}";
  bool braces = true;
  struct Open {
    std::string name;
    std::size_t body_start;
  };
  std::vector<Open> open;
  std::size_t pos = 0;
  while (pos < text.size()) {
    if (text.compare(pos, begin.size(), begin) != 0) {
      ++pos;
      continue;
    }
    const std::size_t tag_start = pos;
    std::size_t contents_at = tag_start + begin.size();
    const bool triple = braces && tag_start != text.size() - 2 && contents_at < text.size() &&
                        text[contents_at] == begin[0];
    const std::string_view closing = triple ? std::string_view("}}}") : std::string_view(end);
    if (triple) ++contents_at;
    const auto tag_end = text.find(closing, contents_at);
    if (tag_end == std::string_view::npos) break;  // "Unclosed tag"
    const auto contents = trim(text.substr(contents_at, tag_end - contents_at));
    pos = tag_end + closing.size();
    if (!contents.empty() && contents[0] == '=') {
      if (!set_delimiters(contents, begin, end)) break;
      braces = begin == "{{" && end == "}}";
      continue;
    }
    if (triple || contents.empty()) continue;
    const char kind = contents[0];
    if (kind == '>') {
      if (!out.partial_at) out.partial_at = tag_start;
    } else if (kind == '#' || kind == '^') {
      open.push_back({std::string(trim(contents.substr(1))), pos});
      if (open.size() > out.max_depth) out.max_depth = open.size();
      if (open.size() > depth_limit && !out.too_deep_at) out.too_deep_at = tag_start;
    } else if (kind == '/') {
      if (open.empty()) break;  // "Unopened section"
      auto& bytes = out.section_bytes[open.back().name];
      bytes = std::max(bytes, tag_start - open.back().body_start);
      open.pop_back();
    }
  }
  return out;
}

}  // namespace mailgate::templating
