// config/value: the neutral value tree a config source is read into (the Lua
// tables of configure{} / listen{}, and --set values) before the schema checks
// it. Promises: a tree is plain data (no Lua, no cycles), so a schema can be
// tested without a config file; describe() renders a value the way every error
// names what it saw ("boolean", "table", "-5", "2.5", "\"1 GBB\"").
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mailgate::config {

struct Table;

struct Value {
  enum class Type { Nil, Boolean, Integer, Number, String, Table, Other };
  Type type = Type::Nil;
  bool boolean = false;
  long long integer = 0;
  double number = 0;
  std::string str;                 // String; the type name for Other ("function")
  std::shared_ptr<Table> table;    // Table
  std::optional<std::string> raw;  // the text of a --set value (a string key keeps it)

  static Value new_table();
  static Value of(std::string s);
};

struct Table {
  std::map<std::string, Value> fields;  // string keys, sorted: reports are stable
  std::map<long long, Value> items;     // integer keys
  std::vector<std::string> odd_keys;    // keys of other types, described ("2.5", "<boolean>")
};

// A field of `t` that is present and not nil, else null.
const Value* find(const Table& t, std::string_view key);

std::string describe(const Value& v);
// `s` in double quotes, escaped, cut after 60 bytes.
std::string quote_text(std::string_view s);

// How errors name keys: "spool.path", "listen[1].address", "dns.servers[2]".
std::string field_path(const std::string& base, std::string_view key);
std::string item_path(const std::string& base, long long i);

}  // namespace mailgate::config
