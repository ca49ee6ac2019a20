// config/value: the value tree's helpers (see value.hpp).
#include "config/value.hpp"

#include <fmt/format.h>

namespace mailgate::config {

Value Value::new_table() {
  Value v;
  v.type = Type::Table;
  v.table = std::make_shared<Table>();
  return v;
}

Value Value::of(std::string s) {
  Value v;
  v.type = Type::String;
  v.str = std::move(s);
  return v;
}

const Value* find(const Table& t, std::string_view key) {
  auto it = t.fields.find(std::string(key));
  if (it == t.fields.end() || it->second.type == Value::Type::Nil) return nullptr;
  return &it->second;
}

std::string quote_text(std::string_view s) {
  std::string out = "\"";
  std::size_t n = 0;
  for (unsigned char c : s) {
    if (++n > 60) {
      out += "...";
      break;
    }
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string describe(const Value& v) {
  switch (v.type) {
    case Value::Type::Nil:
      return "nil";
    case Value::Type::Boolean:
      return "boolean";
    case Value::Type::Integer:
      return std::to_string(v.integer);
    case Value::Type::Number:
      return fmt::format("{}", v.number);
    case Value::Type::String:
      return quote_text(v.str);
    case Value::Type::Table:
      return "table";
    case Value::Type::Other:
      return v.str;
  }
  return "?";
}

std::string field_path(const std::string& base, std::string_view key) {
  return base.empty() ? std::string(key) : base + "." + std::string(key);
}

std::string item_path(const std::string& base, long long i) {
  return fmt::format("{}[{}]", base, i);
}

}  // namespace mailgate::config
