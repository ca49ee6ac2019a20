// policy/config: loads the Lua config file into a validated Config.
// Steps: (1) run the file (text only, never bytecode) in a fresh Lua state
// whose global `mailgate` table collects mailgate.configure{} (deep-merged
// over earlier calls) and mailgate.listen{} (one listener per call); (2) copy
// those tables into a plain C++ tree; (3) apply --set overrides; (4) check
// every key against the schema of config.hpp and convert units.
// Promises: an unknown key, a wrong type, a bad unit or an out-of-range value
// is a ConfigError naming the config file and the dotted key; features not
// built yet (STARTTLS, AUTH, TLS certificates) are errors saying "not
// implemented yet", never silently ignored. Hooks are registered and plugins
// loaded with the run-time API (lua_api), so their errors show here too. Relative paths
// (spool.path, log.deliveries) are kept as written: they are relative to the
// working directory of the process, not to the config file.
#include "policy/config.hpp"

#include <arpa/inet.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string_view>
#include <thread>

#include <fmt/format.h>
#include <lua.hpp>

#include "dns/idna.hpp"
#include "policy/lua_api.hpp"
#include "policy/lua_state.hpp"

namespace mailgate::policy {
namespace {

// ---------------------------------------------------------------------------
// Lua side. These C functions run inside lua_pcall and may raise Lua errors
// (longjmp), so they hold no C++ objects with destructors.

constexpr int kMaxDepth = 32;
char kStateKey;  // registry[&kStateKey] = { configure = {}, listeners = {} }

// True if the table at idx has at least one entry and its keys are exactly 1..n.
bool is_nonempty_array(lua_State* L, int idx) {
  idx = lua_absindex(L, idx);
  lua_Integer count = 0;
  lua_Integer max = 0;
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    lua_pop(L, 1);
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1) {
      lua_pop(L, 1);
      return false;
    }
    max = std::max(max, lua_tointeger(L, -1));
    ++count;
  }
  return count > 0 && max == count;
}

// Pushes a deep copy of the value at idx (tables copied, other values shared).
void push_copy(lua_State* L, int idx, int depth) {
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) != LUA_TTABLE) {
    lua_pushvalue(L, idx);
    return;
  }
  if (depth > kMaxDepth) luaL_error(L, "tables nested more than %d deep", kMaxDepth);
  luaL_checkstack(L, 6, "config tables nested too deeply");
  lua_newtable(L);
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {  // ... copy key value
    push_copy(L, -1, depth + 1);   // ... copy key value vcopy
    lua_pushvalue(L, -3);          // ... copy key value vcopy key
    lua_insert(L, -2);             // ... copy key value key vcopy
    lua_rawset(L, -5);             // ... copy key value
    lua_pop(L, 1);                 // ... copy key
  }
}

// Merges the table at src into the table at dst: nested tables that are
// both maps merge key by key; anything else (scalars, arrays) replaces.
void merge_into(lua_State* L, int dst, int src, int depth) {
  dst = lua_absindex(L, dst);
  src = lua_absindex(L, src);
  if (depth > kMaxDepth) luaL_error(L, "tables nested more than %d deep", kMaxDepth);
  luaL_checkstack(L, 6, "config tables nested too deeply");
  lua_pushnil(L);
  while (lua_next(L, src) != 0) {  // ... key value
    lua_pushvalue(L, -2);
    lua_rawget(L, dst);  // ... key value existing
    if (lua_type(L, -2) == LUA_TTABLE && lua_type(L, -1) == LUA_TTABLE &&
        !is_nonempty_array(L, -2) && !is_nonempty_array(L, -1)) {
      merge_into(L, -1, -2, depth + 1);
      lua_pop(L, 2);  // ... key
    } else {
      lua_pop(L, 1);            // ... key value
      push_copy(L, -1, depth);  // ... key value vcopy
      lua_pushvalue(L, -3);     // ... key value vcopy key
      lua_insert(L, -2);        // ... key value key vcopy
      lua_rawset(L, dst);       // ... key value
      lua_pop(L, 1);            // ... key
    }
  }
}

void push_state_field(lua_State* L, const char* field) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &kStateKey);
  lua_getfield(L, -1, field);
  lua_remove(L, -2);
}

int l_configure(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  push_state_field(L, "configure");
  merge_into(L, -1, 1, 0);
  return 0;
}

int l_listen(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  push_state_field(L, "listeners");
  const lua_Integer n = static_cast<lua_Integer>(lua_rawlen(L, -1));
  push_copy(L, 1, 0);
  lua_rawseti(L, -2, n + 1);
  return 0;
}

// The hook API (mailgate.on/use/reject/...) is the run-time one, so that
// check-config registers handlers and loads plugins exactly as serve does.
void install_api(lua_State* L, ApiContext* ctx) {
  lua_newtable(L);
  lua_newtable(L);
  lua_setfield(L, -2, "configure");
  lua_newtable(L);
  lua_setfield(L, -2, "listeners");
  lua_rawsetp(L, LUA_REGISTRYINDEX, &kStateKey);

  install_mailgate_api(L, ctx);
  set_config_functions(L, l_configure, l_listen);
}

// ---------------------------------------------------------------------------
// C++ side: a plain copy of the collected tables, then overrides and checks.

struct Table;

struct Value {
  enum class Type { Nil, Boolean, Integer, Number, String, Table, Other };
  Type type = Type::Nil;
  bool boolean = false;
  long long integer = 0;
  double number = 0;
  std::string str;                 // String; type name for Other
  std::shared_ptr<Table> table;    // Table
  std::optional<std::string> raw;  // the text of a --set value
};

struct Table {
  std::map<std::string, Value> fields;  // string keys
  std::map<long long, Value> items;     // integer keys
  std::vector<std::string> odd_keys;    // keys of other types, described
};

// Reads the Lua value at idx without calling metamethods or raising errors.
// The collected tables are copies made by push_copy: acyclic and bounded.
Value to_value(lua_State* L, int idx) {
  idx = lua_absindex(L, idx);
  Value v;
  switch (lua_type(L, idx)) {
    case LUA_TNIL:
      break;
    case LUA_TBOOLEAN:
      v.type = Value::Type::Boolean;
      v.boolean = lua_toboolean(L, idx) != 0;
      break;
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx)) {
        v.type = Value::Type::Integer;
        v.integer = lua_tointeger(L, idx);
      } else {
        v.type = Value::Type::Number;
        v.number = lua_tonumber(L, idx);
      }
      break;
    case LUA_TSTRING: {
      v.type = Value::Type::String;
      std::size_t len = 0;
      const char* s = lua_tolstring(L, idx, &len);
      v.str.assign(s, len);
      break;
    }
    case LUA_TTABLE: {
      v.type = Value::Type::Table;
      v.table = std::make_shared<Table>();
      lua_checkstack(L, 4);
      lua_pushnil(L);
      while (lua_next(L, idx) != 0) {
        if (lua_type(L, -2) == LUA_TSTRING) {
          std::size_t len = 0;
          const char* k = lua_tolstring(L, -2, &len);
          v.table->fields[std::string(k, len)] = to_value(L, -1);
        } else if (lua_isinteger(L, -2)) {
          v.table->items[lua_tointeger(L, -2)] = to_value(L, -1);
        } else if (lua_type(L, -2) == LUA_TNUMBER) {
          v.table->odd_keys.push_back(fmt::format("{}", lua_tonumber(L, -2)));
        } else {
          v.table->odd_keys.push_back(fmt::format("<{}>", luaL_typename(L, -2)));
        }
        lua_pop(L, 1);
      }
      break;
    }
    default:
      v.type = Value::Type::Other;
      v.str = luaL_typename(L, idx);
      break;
  }
  return v;
}

Value new_table() {
  Value v;
  v.type = Value::Type::Table;
  v.table = std::make_shared<Table>();
  return v;
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

// "boolean", "table", "-5", "2.5", "\"1 GBB\"" — what the error saw.
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

bool is_ident_segment(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// "true"/"false" → boolean, -?digits → integer, -?digits.digits → number,
// anything else → string. The text is kept for string-typed keys.
Value override_value(std::string_view text) {
  Value v;
  v.raw = std::string(text);
  std::string_view body = text;
  if (!body.empty() && body.front() == '-') body.remove_prefix(1);
  const auto dot = body.find('.');
  const bool is_int = all_digits(body);
  const bool is_dec = !is_int && dot != std::string_view::npos && all_digits(body.substr(0, dot)) &&
                      all_digits(body.substr(dot + 1));
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

std::string item_path(const std::string& base, long long i) {
  return fmt::format("{}[{}]", base, i);
}

std::string field_path(const std::string& base, std::string_view key) {
  return base.empty() ? std::string(key) : base + "." + std::string(key);
}

bool parse_ip_literal(const std::string& s) {
  unsigned char buf[16];
  if (s.find('\0') != std::string::npos) return false;
  return inet_pton(s.find(':') == std::string::npos ? AF_INET : AF_INET6, s.c_str(), buf) == 1;
}

std::optional<std::uint16_t> parse_port(std::string_view s) {
  if (!all_digits(s) || s.size() > 5) return std::nullopt;
  unsigned v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  if (v > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(v);
}

// A domain for relay_domains: labels of letters, digits, '-' (and UTF-8
// bytes), separated by single dots; no leading or trailing dot.
bool valid_domain(std::string_view d) {
  if (d.empty() || d.size() > 253 || d.front() == '.' || d.back() == '.') return false;
  if (d.find("..") != std::string_view::npos) return false;
  return std::all_of(d.begin(), d.end(), [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c >= 0x80;
  });
}

bool valid_hostname(std::string_view h) {
  return !h.empty() && h.size() <= 255 && std::all_of(h.begin(), h.end(), [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return c > 0x20 && c < 0x7f;
  });
}

// "127.x.y.z:port", "[::1]:port", "localhost:port".
bool is_loopback_listen(const std::string& listen) {
  const auto colon = listen.rfind(':');
  std::string host = listen.substr(0, colon == std::string::npos ? listen.size() : colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (host == "localhost" || host == "::1") return true;
  in_addr a{};
  return inet_pton(AF_INET, host.c_str(), &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

std::string machine_hostname() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "localhost";
  return buf;
}

struct Override {
  std::string text;  // as given: "spool.path=/tmp/x"
  std::string key;   // as errors name it: "spool.path", "listen[1].address"
};

class Checker {
 public:
  Checker(std::string file, std::vector<Override> overrides)
      : file_(std::move(file)), overrides_(std::move(overrides)) {}

  [[noreturn]] void fail(const std::string& key, const std::string& message) const {
    std::string msg = file_ + ": " + message;
    for (const auto& o : overrides_) {
      const bool related = o.key == key || o.key.starts_with(key + ".") ||
                           o.key.starts_with(key + "[") || key.starts_with(o.key + ".") ||
                           key.starts_with(o.key + "[");
      if (related) {
        msg += " (from --set " + o.text + ")";
        break;
      }
    }
    throw ConfigError(msg);
  }

  [[noreturn]] void expected(const std::string& key, std::string_view what, const Value& v) const {
    fail(key, fmt::format("{}: expected {}, got {}", key, what, describe(v)));
  }

  // Rejects keys of `t` outside `known`; `fn` names the call ("configure").
  void only_keys(const Table& t, const std::string& path,
                 std::initializer_list<std::string_view> known, std::string_view fn) const {
    for (const auto& [k, v] : t.fields) {  // std::map: sorted, so the report is stable
      if (std::find(known.begin(), known.end(), k) == known.end()) {
        fail(field_path(path, k), fmt::format("{}: unknown key '{}'", fn, field_path(path, k)));
      }
    }
    if (!t.items.empty()) {
      const auto key = item_path(path, t.items.begin()->first);
      fail(key, fmt::format("{}: unknown key '{}'", fn, key));
    }
    if (!t.odd_keys.empty()) {
      const auto key = path.empty() ? t.odd_keys.front() : path + "[" + t.odd_keys.front() + "]";
      fail(key, fmt::format("{}: unknown key '{}'", fn, key));
    }
  }

  static const Value* find(const Table& t, std::string_view key) {
    auto it = t.fields.find(std::string(key));
    if (it == t.fields.end() || it->second.type == Value::Type::Nil) return nullptr;
    return &it->second;
  }

  const Table* table(const Value* v, const std::string& key) const {
    if (v == nullptr) return nullptr;
    if (v->type != Value::Type::Table) expected(key, "a table", *v);
    return v->table.get();
  }

  std::string string(const Value& v, const std::string& key) const {
    if (v.type == Value::Type::String) return v.str;
    if (v.raw) return *v.raw;  // --set http.token=12345 stays the string "12345"
    expected(key, "a string", v);
  }

  std::string nonempty_string(const Value& v, const std::string& key) const {
    auto s = string(v, key);
    if (s.empty()) fail(key, key + ": must not be empty");
    return s;
  }

  bool boolean(const Value& v, const std::string& key) const {
    if (v.type != Value::Type::Boolean) expected(key, "true or false", v);
    return v.boolean;
  }

  std::uint64_t integer(const Value& v, const std::string& key, std::uint64_t min,
                        std::uint64_t max) const {
    const auto what = fmt::format("an integer from {} to {}", min, max);
    std::optional<long double> n;
    if (v.type == Value::Type::Integer) n = v.integer;
    if (v.type == Value::Type::Number && std::isfinite(v.number) &&
        v.number == std::floor(v.number)) {
      n = v.number;
    }
    if (!n || *n < static_cast<long double>(min) || *n > static_cast<long double>(max)) {
      expected(key, what, v);
    }
    return static_cast<std::uint64_t>(*n);
  }

  template <typename T>
  T integer_as(const Value& v, const std::string& key, std::uint64_t min) const {
    return static_cast<T>(integer(v, key, min, std::numeric_limits<T>::max()));
  }

  std::uint64_t size(const Value& v, const std::string& key, std::uint64_t min = 0) const {
    constexpr std::string_view what = "a size (e.g. \"1GB\")";
    std::optional<std::uint64_t> n;
    if (v.type == Value::Type::Integer && v.integer >= 0) {
      n = static_cast<std::uint64_t>(v.integer);
    } else if (v.type == Value::Type::Number && v.number >= 0 && v.number < 0x1p64 &&
               v.number == std::floor(v.number)) {
      n = static_cast<std::uint64_t>(v.number);
    } else if (v.type == Value::Type::String) {
      n = parse_size(v.str);
    }
    if (!n) expected(key, what, v);
    if (*n < min) fail(key, fmt::format("{}: must be at least {} bytes, got {}", key, min, *n));
    return *n;
  }

  // Durations: a number is seconds; must be > 0 unless allow_zero.
  Duration duration(const Value& v, const std::string& key, bool allow_zero = false) const {
    constexpr std::string_view what = "a duration (e.g. \"30s\", \"5m\")";
    std::optional<Duration> d;
    if (v.type == Value::Type::Integer && v.integer >= 0 &&
        v.integer <= std::numeric_limits<Duration::rep>::max() / 1000) {
      d = Duration{v.integer * 1000};
    } else if (v.type == Value::Type::Number && std::isfinite(v.number) && v.number >= 0 &&
               v.number < 9.2e15) {
      // Whole milliseconds, allowing for binary floating point (0.1 + 0.2).
      const double ms = v.number * 1000.0;
      const double rounded = std::round(ms);
      if (std::fabs(ms - rounded) <= 1e-6 * std::max(1.0, ms)) {
        d = Duration{static_cast<Duration::rep>(rounded)};
      }
    } else if (v.type == Value::Type::String) {
      d = parse_duration(v.str);
    }
    if (!d) expected(key, what, v);
    if (!allow_zero && d->count() == 0) fail(key, key + ": must be longer than 0");
    return *d;
  }

  Rate rate(const Value& v, const std::string& key) const {
    std::optional<Rate> r;
    if (v.type == Value::Type::String) r = parse_rate(v.str);
    if (!r || r->count <= 0) expected(key, "a rate (e.g. \"60/min\") or 0", v);
    return *r;
  }

  std::string one_of(const Value& v, const std::string& key,
                     std::initializer_list<std::string_view> options) const {
    std::string what;
    for (auto o : options) what += (what.empty() ? "" : " | ") + std::string(o);
    if (v.type != Value::Type::String ||
        std::find(options.begin(), options.end(), v.str) == options.end()) {
      expected(key, what, v);
    }
    return v.str;
  }

  // An array: a table whose keys are exactly 1..n (an empty table is an empty array).
  std::vector<const Value*> array(const Value& v, const std::string& key,
                                  std::string_view what) const {
    if (v.type != Value::Type::Table || !v.table->fields.empty() || !v.table->odd_keys.empty()) {
      expected(key, fmt::format("an array of {}", what), v);
    }
    std::vector<const Value*> out;
    long long next = 1;
    for (const auto& [i, item] : v.table->items) {
      if (i != next++) expected(key, fmt::format("an array of {} (keys 1..n)", what), v);
      out.push_back(&item);
    }
    return out;
  }

  std::vector<std::string> string_array(const Value& v, const std::string& key) const {
    std::vector<std::string> out;
    long long i = 1;
    for (const Value* item : array(v, key, "strings"))
      out.push_back(string(*item, item_path(key, i++)));
    return out;
  }

  // "ip:port" or "[v6]:port", IP literal only (a listener binds, it does not resolve).
  std::string host_port(const Value& v, const std::string& key) const {
    auto s = string(v, key);
    if (!parse_host_port(s)) expected(key, "\"ip:port\" or \"[ipv6]:port\"", v);
    return s;
  }

  Config check(const Value& configure, const std::vector<Value>& listeners) const {
    Config c;
    const Table& t = *configure.table;
    only_keys(t, "",
              {"hostname", "workers", "spool", "http", "dns", "tls", "log", "delivery", "policy",
               "metrics"},
              "configure");

    if (auto* v = find(t, "hostname")) {
      c.hostname = string(*v, "hostname");
      if (!valid_hostname(c.hostname)) {
        expected("hostname", "a host name (printable, no spaces)", *v);
      }
    } else {
      c.hostname = machine_hostname();
    }

    if (auto* v = find(t, "workers"))
      c.workers = static_cast<unsigned>(integer(*v, "workers", 0, 1024));
    if (c.workers == 0) c.workers = std::max(1u, std::thread::hardware_concurrency());

    if (auto* s = table(find(t, "spool"), "spool")) {
      only_keys(*s, "spool", {"path", "min_free_space", "body_buffer", "max_queue_bytes"},
                "configure");
      if (auto* v = find(*s, "path")) c.spool.path = nonempty_string(*v, "spool.path");
      if (auto* v = find(*s, "min_free_space")) {
        c.spool.min_free_space = size(*v, "spool.min_free_space");
      }
      if (auto* v = find(*s, "body_buffer"))
        c.spool.body_buffer = size(*v, "spool.body_buffer", 4096);
      if (auto* v = find(*s, "max_queue_bytes")) {
        c.spool.max_queue_bytes = size(*v, "spool.max_queue_bytes", 1);
      }
    }

    bool http_global_tls = false;  // http.tls = true: resolved once tls{} is read
    if (auto* h = table(find(t, "http"), "http")) {
      only_keys(*h, "http", {"listen", "token", "tls"}, "configure");
      if (auto* v = find(*h, "listen")) c.http.listen = host_port(*v, "http.listen");
      if (auto* v = find(*h, "token")) c.http.token = string(*v, "http.token");
      if (auto* v = find(*h, "tls")) {
        if (v->type == Value::Type::Boolean) {
          http_global_tls = v->boolean;
        } else if (v->type == Value::Type::Table) {
          c.http.tls = certificate(*v, "http.tls", "configure");
          if (c.http.tls.cert.empty()) fail("http.tls", "http.tls: needs cert and key");
        } else {
          expected("http.tls", "true, false or { cert = \"...\", key = \"...\" }", *v);
        }
      }
    }
    // The admin API can inject and bounce mail: off loopback it needs a token.
    if (c.http.token.empty() && !is_loopback_listen(c.http.listen)) {
      fail("http.listen",
           "http.listen: " + c.http.listen +
               " is not a loopback address: set http.token (the admin API can inject and "
               "bounce mail), or listen on 127.0.0.1 / [::1]");
    }

    if (auto* d = table(find(t, "dns"), "dns")) {
      only_keys(*d, "dns", {"servers"}, "configure");
      if (auto* v = find(*d, "servers")) {
        long long i = 1;
        for (const Value* item : array(*v, "dns.servers", "\"ip\" or \"ip:port\" strings")) {
          const auto key = item_path("dns.servers", i++);
          auto s = string(*item, key);
          if (!parse_ip_literal(s) && !parse_host_port(s)) {
            expected(key, "\"ip\", \"ip:port\" or \"[ipv6]:port\"", *item);
          }
          c.dns.servers.push_back(s);
        }
      }
    }

    if (auto* tl = find(t, "tls")) c.tls = certificate(*tl, "tls", "configure");
    if (http_global_tls) {
      if (c.tls.cert.empty()) {
        fail("http.tls",
             "http.tls: true needs a certificate: tls = { cert = \"...\", key = "
             "\"...\" } in configure{}, or http.tls = { cert = ..., key = ... }");
      }
      c.http.tls = c.tls;
    }

    if (auto* l = table(find(t, "log"), "log")) {
      only_keys(*l, "log", {"level", "deliveries"}, "configure");
      if (auto* v = find(*l, "level")) {
        c.log.level = one_of(*v, "log.level", {"trace", "debug", "info", "warn", "error", "off"});
      }
      if (auto* v = find(*l, "deliveries"))
        c.log.deliveries = nonempty_string(*v, "log.deliveries");
    }

    if (auto* d = table(find(t, "delivery"), "delivery")) {
      only_keys(*d, "delivery",
                {"port", "retry", "max_connections", "max_messages_per_connection", "tls",
                 "bounce_rules"},
                "configure");
      if (auto* v = find(*d, "port")) {
        c.delivery.port = static_cast<std::uint16_t>(integer(*v, "delivery.port", 1, 65535));
      }
      if (auto* r = table(find(*d, "retry"), "delivery.retry")) {
        only_keys(*r, "delivery.retry", {"first", "max", "max_age", "delay_warning"}, "configure");
        auto& rc = c.delivery.retry;
        if (auto* v = find(*r, "first")) rc.first = duration(*v, "delivery.retry.first");
        if (auto* v = find(*r, "max")) rc.max = duration(*v, "delivery.retry.max");
        if (auto* v = find(*r, "max_age")) rc.max_age = duration(*v, "delivery.retry.max_age");
        if (auto* v = find(*r, "delay_warning")) {
          rc.delay_warning = duration(*v, "delivery.retry.delay_warning", /*allow_zero=*/true);
        }
        if (rc.first > rc.max) {
          fail("delivery.retry.first",
               "delivery.retry.first: must not be longer than delivery.retry.max");
        }
      }
      if (auto* v = find(*d, "max_connections")) {
        c.delivery.max_connections = integer_as<std::uint32_t>(*v, "delivery.max_connections", 1);
      }
      if (auto* v = find(*d, "max_messages_per_connection")) {
        c.delivery.max_messages_per_connection =
            integer_as<std::uint32_t>(*v, "delivery.max_messages_per_connection", 1);
      }
      if (auto* v = find(*d, "tls")) {
        c.delivery.tls = one_of(*v, "delivery.tls", {"opportunistic", "required", "disabled"});
      }
      if (auto* v = find(*d, "bounce_rules")) {
        long long i = 1;
        for (const Value* item : array(*v, "delivery.bounce_rules", "rule tables")) {
          const auto key = item_path("delivery.bounce_rules", i++);
          const Table* r = table(item, key);
          if (r == nullptr) continue;
          only_keys(*r, key, {"class", "enhanced", "text", "code_min", "code_max"}, "configure");
          smtp::BounceRule rule;
          const Value* cls = find(*r, "class");
          if (cls == nullptr) {
            fail(key, key +
                          ".class: required (bad-mailbox, bad-domain, policy, content, quota, "
                          "routing, transient, other)");
            continue;
          }
          auto parsed = smtp::bounce_class_from_string(string(*cls, key + ".class"));
          if (!parsed || *parsed == smtp::BounceClass::None) {
            expected(key + ".class",
                     "bad-mailbox, bad-domain, policy, content, quota, routing, transient or other",
                     *cls);
            continue;
          }
          rule.cls = *parsed;
          if (auto* e = find(*r, "enhanced")) rule.enhanced_prefix = string(*e, key + ".enhanced");
          if (auto* e = find(*r, "text")) rule.text_pattern = string(*e, key + ".text");
          if (auto* e = find(*r, "code_min"))
            rule.code_min = static_cast<int>(integer(*e, key + ".code_min", 400, 599));
          if (auto* e = find(*r, "code_max"))
            rule.code_max = static_cast<int>(integer(*e, key + ".code_max", 400, 599));
          c.delivery.bounce_rules.push_back(std::move(rule));
        }
      }
    }

    if (auto* p = table(find(t, "policy"), "policy")) {
      only_keys(*p, "policy", {"hook_timeout", "memory_limit"}, "configure");
      if (auto* v = find(*p, "hook_timeout")) {
        c.policy.hook_timeout = duration(*v, "policy.hook_timeout");
      }
      if (auto* v = find(*p, "memory_limit")) {
        // A state with the libraries, the API and the shipped plugins needs well under 1MB.
        c.policy.memory_limit = size(*v, "policy.memory_limit", 1'000'000);
      }
    }

    if (auto* m = table(find(t, "metrics"), "metrics")) {
      only_keys(*m, "metrics", {"destinations"}, "configure");
      if (auto* v = find(*m, "destinations")) {
        c.metrics.destinations = string_array(*v, "metrics.destinations");
        for (auto& d : c.metrics.destinations) d = dns::normalize_domain(d);
      }
    }

    if (listeners.empty()) fail("listen", "no mailgate.listen{} in config");
    for (std::size_t i = 0; i < listeners.size(); ++i) {
      const auto lp = item_path("listen", static_cast<long long>(i + 1));
      c.listeners.push_back(listener(listeners[i], lp));
      auto& mine = c.listeners.back();
      if (mine.tls.cert.empty()) mine.tls = c.tls;  // the global certificate
      if (mine.auth != AuthMode::Off && !mine.starttls && !mine.implicit_tls &&
          !mine.auth_plaintext) {
        const auto k = field_path(lp, "auth");
        fail(k, k + ": AUTH is offered only over TLS: set starttls or implicit_tls "
                    "(auth_plaintext = true allows it without, for loopback tests)");
      }
      if ((mine.starttls || mine.implicit_tls) && mine.tls.cert.empty()) {
        const auto k = field_path(lp, mine.starttls ? "starttls" : "implicit_tls");
        fail(k, k + ": needs a certificate: tls = { cert = \"...\", key = \"...\" } in "
                    "configure{} or in this listener");
      }
      const auto hp = parse_host_port(mine.address);
      for (std::size_t j = 0; j < i && hp->second != 0; ++j) {
        if (parse_host_port(c.listeners[j].address) == hp) {
          const auto key = item_path("listen", static_cast<long long>(i + 1)) + ".address";
          fail(key, fmt::format("{}: {} is already used by listen[{}]", key, mine.address, j + 1));
        }
      }
    }
    return c;
  }

  // tls = { cert = "x.pem", key = "x.key" }: both or neither. The files
  // themselves are loaded (and their errors reported) by the TLS module.
  TlsConfig certificate(const Value& v, const std::string& key, const char* where) const {
    TlsConfig out;
    const Table* tl = table(&v, key);
    only_keys(*tl, key, {"cert", "key", "self_signed"}, where);
    if (auto* c = find(*tl, "cert")) out.cert = nonempty_string(*c, key + ".cert");
    if (auto* k = find(*tl, "key")) out.key = nonempty_string(*k, key + ".key");
    if (auto* s = find(*tl, "self_signed")) out.self_signed = boolean(*s, key + ".self_signed");
    if (out.cert.empty() != out.key.empty()) {
      const auto missing = key + (out.cert.empty() ? ".cert" : ".key");
      fail(missing, missing + ": required with " + key + (out.cert.empty() ? ".key" : ".cert"));
    }
    return out;
  }

  ListenerConfig listener(const Value& lv, const std::string& p) const {
    ListenerConfig l;
    const Table& t = *lv.table;
    only_keys(t, p,
              {"address", "relay_networks", "relay_domains", "starttls", "implicit_tls", "tls",
               "auth", "auth_plaintext", "max_message_size", "max_recipients", "timeouts",
               "max_errors", "max_junk_commands", "max_line_length", "max_connections",
               "max_connections_per_ip", "connection_rate_per_ip", "greet_pause"},
              "listen");
    const auto key = [&](std::string_view k) { return field_path(p, k); };

    if (auto* v = find(t, "address")) {
      l.address = host_port(*v, key("address"));
    } else {
      fail(key("address"), key("address") + ": required (e.g. \"127.0.0.1:2525\")");
    }

    if (auto* v = find(t, "relay_networks")) {
      long long i = 1;
      for (const Value* item : array(*v, key("relay_networks"), "CIDR networks")) {
        const auto k = item_path(key("relay_networks"), i++);
        std::optional<net::Cidr> cidr;
        if (item->type == Value::Type::String) cidr = net::Cidr::parse(item->str);
        if (!cidr) expected(k, "a CIDR network (e.g. \"10.0.0.0/8\")", *item);
        l.relay_networks.push_back(*cidr);
      }
    } else {
      l.relay_networks = {*net::Cidr::parse("127.0.0.0/8"), *net::Cidr::parse("::1/128")};
    }

    if (auto* v = find(t, "relay_domains")) {
      long long i = 1;
      for (const Value* item : array(*v, key("relay_domains"), "domains")) {
        const auto k = item_path(key("relay_domains"), i++);
        if (item->type != Value::Type::String || !valid_domain(item->str)) {
          expected(k, "a domain (e.g. \"example.com\")", *item);
        }
        // Compared with recipient domains in the one normalized form.
        l.relay_domains.push_back(dns::normalize_domain(item->str));
      }
    }

    if (auto* v = find(t, "starttls")) l.starttls = boolean(*v, key("starttls"));
    if (auto* v = find(t, "implicit_tls")) l.implicit_tls = boolean(*v, key("implicit_tls"));
    if (auto* v = find(t, "tls")) l.tls = certificate(*v, key("tls"), "listen");
    if (auto* v = find(t, "auth_plaintext")) l.auth_plaintext = boolean(*v, key("auth_plaintext"));

    if (auto* v = find(t, "auth")) {
      const auto mode = one_of(*v, key("auth"), {"off", "optional", "required"});
      l.auth = mode == "required"   ? AuthMode::Required
               : mode == "optional" ? AuthMode::Optional
                                    : AuthMode::Off;
    }

    if (auto* v = find(t, "max_message_size")) {
      l.max_message_size = size(*v, key("max_message_size"), 1);
    }
    if (auto* v = find(t, "max_recipients")) {
      l.max_recipients = integer_as<std::uint32_t>(*v, key("max_recipients"), 1);
    }
    if (auto* to = table(find(t, "timeouts"), key("timeouts"))) {
      only_keys(*to, key("timeouts"),
                {"command", "data", "session", "transaction", "min_data_rate"}, "listen");
      if (auto* v = find(*to, "command")) l.command_timeout = duration(*v, key("timeouts.command"));
      if (auto* v = find(*to, "data")) l.data_timeout = duration(*v, key("timeouts.data"));
      if (auto* v = find(*to, "session")) l.session_timeout = duration(*v, key("timeouts.session"));
      if (auto* v = find(*to, "transaction"))
        l.transaction_timeout = duration(*v, key("timeouts.transaction"));
      if (auto* v = find(*to, "min_data_rate"))
        l.min_data_rate = size(*v, key("timeouts.min_data_rate"));
    }
    if (auto* v = find(t, "max_connections"))
      l.max_connections = integer_as<std::uint32_t>(*v, key("max_connections"), 0);
    if (auto* v = find(t, "max_connections_per_ip"))
      l.max_connections_per_ip = integer_as<std::uint32_t>(*v, key("max_connections_per_ip"), 0);
    if (auto* v = find(t, "connection_rate_per_ip")) {
      if (v->type == Value::Type::Integer && v->integer == 0) {
        l.connection_rate_per_ip.reset();  // 0: no limit
      } else {
        l.connection_rate_per_ip = rate(*v, key("connection_rate_per_ip"));
      }
    }
    if (auto* v = find(t, "greet_pause")) {
      l.greet_pause = duration(*v, key("greet_pause"), /*allow_zero=*/true);
      if (l.greet_pause > Duration(60'000))
        fail(key("greet_pause"), key("greet_pause") + ": must not be longer than 60s");
    }
    if (auto* v = find(t, "max_errors")) {
      l.max_errors = integer_as<std::uint32_t>(*v, key("max_errors"), 1);
    }
    if (auto* v = find(t, "max_junk_commands")) {
      l.max_junk_commands = integer_as<std::uint32_t>(*v, key("max_junk_commands"), 1);
    }
    if (auto* v = find(t, "max_line_length")) {
      l.max_line_length =
          static_cast<std::uint32_t>(integer(*v, key("max_line_length"), 512, 1 << 20));
    }
    return l;
  }

 private:
  std::string file_;
  std::vector<Override> overrides_;
};

// Applies one --set to the configure tree (or, for "listen.KEY" /
// "listen.N.KEY", to the first / N-th listener). Returns the key as errors name it.
Override apply_override(const std::string& text, Value& configure, std::vector<Value>& listeners) {
  const auto eq = text.find('=');
  if (eq == std::string::npos) {
    throw ConfigError(fmt::format("--set {}: expected KEY=VALUE", quote_text(text)));
  }
  const std::string_view key(text.data(), eq);
  const std::string_view value = std::string_view(text).substr(eq + 1);
  std::vector<std::string_view> segs;
  for (std::size_t pos = 0;;) {
    const auto dot = key.find('.', pos);
    segs.push_back(
        key.substr(pos, dot == std::string_view::npos ? std::string_view::npos : dot - pos));
    if (dot == std::string_view::npos) break;
    pos = dot + 1;
  }
  for (auto s : segs) {
    if (!is_ident_segment(s)) {
      throw ConfigError(fmt::format(
          "--set {}: bad key '{}' (dot-separated names of letters, digits and _)", text, key));
    }
  }

  Value* node = &configure;
  std::string path;
  std::size_t first = 0;
  if (segs.front() == "listen") {
    std::size_t index = 1;
    first = 1;
    if (segs.size() > 2 && all_digits(segs[1])) {
      index = std::strtoull(std::string(segs[1]).c_str(), nullptr, 10);
      first = 2;
    }
    if (segs.size() <= first) {
      throw ConfigError(
          fmt::format("--set {}: name a listener key (e.g. listen.address=...)", text));
    }
    if (index == 0 || index > listeners.size()) {
      throw ConfigError(fmt::format("--set {}: the config has {} mailgate.listen{{}} call(s)", text,
                                    listeners.size()));
    }
    node = &listeners[index - 1];
    path = item_path("listen", static_cast<long long>(index));
  }

  for (std::size_t i = first; i < segs.size(); ++i) {
    if (node->type != Value::Type::Table) {
      throw ConfigError(
          fmt::format("--set {}: '{}' is {}, not a table", text, path, describe(*node)));
    }
    const auto seg = segs[i];
    Value* child;
    if (all_digits(seg)) {
      const long long n = std::strtoll(std::string(seg).c_str(), nullptr, 10);
      child = &node->table->items[n];
      path = item_path(path, n);
    } else {
      child = &node->table->fields[std::string(seg)];
      path = field_path(path, seg);
    }
    if (i + 1 < segs.size() && child->type == Value::Type::Nil) *child = new_table();
    node = child;
  }
  *node = override_value(value);
  return Override{text, path};
}

}  // namespace

std::optional<std::pair<std::string, std::uint16_t>> parse_host_port(std::string_view s) {
  std::string host;
  std::string_view port;
  if (!s.empty() && s.front() == '[') {
    const auto close = s.find(']');
    if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':') {
      return std::nullopt;
    }
    host = std::string(s.substr(1, close - 1));
    port = s.substr(close + 2);
    if (host.find(':') == std::string::npos) return std::nullopt;  // brackets are for IPv6
  } else {
    const auto colon = s.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = std::string(s.substr(0, colon));
    port = s.substr(colon + 1);
    if (host.find(':') != std::string::npos) return std::nullopt;  // IPv6 needs brackets
  }
  if (!parse_ip_literal(host)) return std::nullopt;
  auto p = parse_port(port);
  if (!p) return std::nullopt;
  return std::make_pair(std::move(host), *p);
}

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  LuaState state;
  lua_State* L = state.get();
  ApiContext api;
  {
    std::error_code ec;
    auto abs = std::filesystem::absolute(path, ec);
    api.config_dir =
        (ec ? std::filesystem::path(path) : abs).lexically_normal().parent_path().string();
  }
  api.plugin_dir = default_plugin_dir();
  install_api(L, &api);

  // Syntax and runtime errors carry "path:line:" (Lua shortens long paths
  // to "...tail"); "cannot open path" names it too. The binary-chunk refusal
  // and non-string error values do not: those get the path in front.
  const auto lua_failure = [&](lua_State* L) {
    auto msg = lua_error_text(L, -1);
    if (msg.find(path) == std::string::npos && !msg.starts_with("...")) msg = path + ": " + msg;
    return ConfigError(msg);
  };
  if (luaL_loadfilex(L, path.c_str(), "t") != LUA_OK) throw lua_failure(L);
  if (lua_pcall(L, 0, 0, 0) != LUA_OK) throw lua_failure(L);

  lua_rawgetp(L, LUA_REGISTRYINDEX, &kStateKey);
  lua_getfield(L, -1, "configure");
  Value configure = to_value(L, -1);
  lua_pop(L, 1);
  lua_getfield(L, -1, "listeners");
  std::vector<Value> listeners;
  const auto n = static_cast<lua_Integer>(lua_rawlen(L, -1));
  for (lua_Integer i = 1; i <= n; ++i) {
    lua_rawgeti(L, -1, i);
    listeners.push_back(to_value(L, -1));
    lua_pop(L, 1);
  }
  lua_pop(L, 2);

  std::vector<Override> applied;
  for (const auto& o : overrides) applied.push_back(apply_override(o, configure, listeners));

  Config config = Checker(path, std::move(applied)).check(configure, listeners);
  std::error_code ec;
  auto abs = std::filesystem::absolute(path, ec);
  config.config_dir =
      (ec ? std::filesystem::path(path) : abs).lexically_normal().parent_path().string();
  return config;
}

}  // namespace mailgate::policy
