// policy/lua_state: owns one Lua 5.4 state (the runtime that runs the config
// file and, later, hooks). Promises: the state is closed exactly once; error
// values are turned into text without running Lua code (no __tostring), so
// reading an error can never raise another one.
#pragma once

#include <string>

struct lua_State;

namespace mailgate::policy {

class LuaState {
 public:
  // luaL_newstate + the standard libraries (the config file is the operator's
  // own, trusted code). Throws std::bad_alloc if Lua cannot allocate.
  LuaState();
  ~LuaState();
  LuaState(const LuaState&) = delete;
  LuaState& operator=(const LuaState&) = delete;

  lua_State* get() const { return L_; }

 private:
  lua_State* L_;
};

// The error value at stack index `idx` as text: the string itself, or
// "(error object is a T value)" for a non-string error.
std::string lua_error_text(lua_State* L, int idx);

}  // namespace mailgate::policy
