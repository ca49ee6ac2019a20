// config/overrides: parsing and applying --set (see overrides.hpp).
#include "config/overrides.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>

#include "config/context.hpp"

namespace mailgate::config {
namespace {

bool is_ident_segment(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

Value typed_value(std::string_view text) {
  Value v;
  v.raw = std::string(text);
  std::string_view body = text;
  if (!body.empty() && body.front() == '-') body.remove_prefix(1);
  const auto dot = body.find('.');
  const bool is_int = is_index(body);
  const bool is_dec = !is_int && dot != std::string_view::npos && is_index(body.substr(0, dot)) &&
                      is_index(body.substr(dot + 1));
  if (text == "true" || text == "false") {
    v.type = Value::Type::Boolean;
    v.boolean = text == "true";
  } else if (is_int &&
             std::from_chars(text.data(), text.data() + text.size(), v.integer).ec == std::errc{}) {
    v.type = Value::Type::Integer;
  } else if (is_int || is_dec) {
    v.type = Value::Type::Number;
    v.number = std::strtod(std::string(text).c_str(), nullptr);
  } else {
    v.type = Value::Type::String;
    v.str = std::string(text);
  }
  return v;
}

}  // namespace

bool is_index(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

Assignment parse_assignment(const std::string& text) {
  const auto eq = text.find('=');
  if (eq == std::string::npos) {
    throw Error(fmt::format("--set {}: expected KEY=VALUE", quote_text(text)));
  }
  Assignment a;
  a.text = text;
  const std::string_view key(text.data(), eq);
  for (std::size_t pos = 0;;) {
    const auto dot = key.find('.', pos);
    a.segments.emplace_back(
        key.substr(pos, dot == std::string_view::npos ? std::string_view::npos : dot - pos));
    if (dot == std::string_view::npos) break;
    pos = dot + 1;
  }
  for (const auto& s : a.segments) {
    if (!is_ident_segment(s)) {
      throw Error(fmt::format(
          "--set {}: bad key '{}' (dot-separated names of letters, digits and _)", text, key));
    }
  }
  a.value = typed_value(std::string_view(text).substr(eq + 1));
  return a;
}

std::string assign(Value& node, const Assignment& a, std::size_t from, std::string path) {
  Value* at = &node;
  for (std::size_t i = from; i < a.segments.size(); ++i) {
    if (at->type != Value::Type::Table) {
      throw Error(fmt::format("--set {}: '{}' is {}, not a table", a.text, path, describe(*at)));
    }
    const auto& seg = a.segments[i];
    Value* child;
    if (is_index(seg)) {
      const long long n = std::strtoll(seg.c_str(), nullptr, 10);
      child = &at->table->items[n];
      path = item_path(path, n);
    } else {
      child = &at->table->fields[seg];
      path = field_path(path, seg);
    }
    if (i + 1 < a.segments.size() && child->type == Value::Type::Nil) *child = Value::new_table();
    at = child;
  }
  *at = a.value;
  return path;
}

}  // namespace mailgate::config
