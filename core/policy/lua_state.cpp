// policy/lua_state: creation/destruction of a Lua state and error-value text
// (see lua_state.hpp for the promises).
#include "policy/lua_state.hpp"

#include <new>

#include <lua.hpp>

namespace mailgate::policy {

LuaState::LuaState() : L_(luaL_newstate()) {
  if (L_ == nullptr) throw std::bad_alloc();
  luaL_openlibs(L_);
}

LuaState::~LuaState() { lua_close(L_); }

std::string lua_error_text(lua_State* L, int idx) {
  if (lua_type(L, idx) == LUA_TSTRING) {
    std::size_t len = 0;
    const char* s = lua_tolstring(L, idx, &len);
    return std::string(s, len);
  }
  return std::string("(error object is a ") + luaL_typename(L, idx) + " value)";
}

}  // namespace mailgate::policy
