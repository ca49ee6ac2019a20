// policy/config_file: the Lua side of loading the config file.
// Steps: (1) run the file (text only, never bytecode) in a fresh Lua state
// whose global `mailgate` table collects mailgate.configure{} (deep-merged
// over earlier calls), mailgate.listen{} (one listener per call) and
// mailgate.webhook{} (one target per call) next to
// the run-time API (hooks registered, plugins loaded); (2) copy those tables
// into config::Value trees; (3) hand them to settings::validate (--set, every
// key against the modules' sections).
#include <algorithm>
#include <filesystem>

#include <fmt/format.h>
#include <lua.hpp>

#include "policy/config.hpp"
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

// Appends a copy of the table argument to the config state's list `field`
// (mailgate.listen{} and mailgate.webhook{} each declare one entry).
int append_declaration(lua_State* L, const char* field) {
  luaL_checktype(L, 1, LUA_TTABLE);
  push_state_field(L, field);
  const lua_Integer n = static_cast<lua_Integer>(lua_rawlen(L, -1));
  push_copy(L, 1, 0);
  lua_rawseti(L, -2, n + 1);
  return 0;
}

int l_listen(lua_State* L) { return append_declaration(L, "listeners"); }

int l_webhook(lua_State* L) { return append_declaration(L, "webhooks"); }

// The hook API (mailgate.on/use/reject/...) is the run-time one, so that
// check-config registers handlers and loads plugins exactly as serve does.
void install_api(lua_State* L, ApiContext* ctx) {
  lua_newtable(L);
  lua_newtable(L);
  lua_setfield(L, -2, "configure");
  lua_newtable(L);
  lua_setfield(L, -2, "listeners");
  lua_newtable(L);
  lua_setfield(L, -2, "webhooks");
  lua_rawsetp(L, LUA_REGISTRYINDEX, &kStateKey);

  install_mailgate_api(L, ctx);
  set_config_functions(L, l_configure, l_listen, l_webhook);
}

// ---------------------------------------------------------------------------
// C++ side: a plain copy of the collected tables for core/settings.

using config::Value;

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
      v = Value::new_table();
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

}  // namespace

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

  settings::ConfigTables tables;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &kStateKey);
  lua_getfield(L, -1, "configure");
  tables.configure = to_value(L, -1);
  lua_pop(L, 1);
  lua_getfield(L, -1, "listeners");
  const auto n = static_cast<lua_Integer>(lua_rawlen(L, -1));
  for (lua_Integer i = 1; i <= n; ++i) {
    lua_rawgeti(L, -1, i);
    tables.listen.push_back(to_value(L, -1));
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  lua_getfield(L, -1, "webhooks");
  const auto w = static_cast<lua_Integer>(lua_rawlen(L, -1));
  for (lua_Integer i = 1; i <= w; ++i) {
    lua_rawgeti(L, -1, i);
    tables.webhook.push_back(to_value(L, -1));
    lua_pop(L, 1);
  }
  lua_pop(L, 2);

  Config config = settings::validate(std::move(tables), path, overrides);
  config.config_dir = api.config_dir;
  return config;
}

}  // namespace mailgate::policy
