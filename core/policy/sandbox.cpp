// policy/sandbox: see sandbox.hpp. The replaced functions follow the stock
// ones of Lua 5.4 (same arguments, results and error messages) and add one
// check: whether the running hook call has failed.
#include "policy/sandbox.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <cstring>

#include <lua.hpp>

#include "policy/lua_patterns.hpp"

namespace mailgate::policy {
namespace {

constexpr int kHookEvery = 1000;  // VM instructions between two looks at the deadline

void note_where(lua_State* L, lua_Debug* ar, CallLimits* call) {
  if (call->where[0] != '\0') return;
  if (ar != nullptr && lua_getinfo(L, "Sl", ar) && ar->currentline > 0)
    std::snprintf(call->where, sizeof call->where, "%s:%d", ar->short_src, ar->currentline);
}

void count_hook(lua_State* L, lua_Debug* ar) {
  CallLimits* call = running_call(L);
  if (call == nullptr) return;
  if (!call->failed()) {
    if (std::chrono::steady_clock::now() <= call->deadline) return;
    call->failure = CallLimits::Failure::Timeout;
  }
  note_where(L, ar, call);
  stop_failed_call(L);
}

// ---------------------------------------------------------------------------
// Where Lua code can catch an error: pcall, xpcall, coroutine.resume,
// coroutine.close, load (its reader). Each raises a failed call again.

int finish_pcall(lua_State* L, int status, lua_KContext extra) {
  if (call_over_budget(L)) return stop_failed_call(L);
  if (status != LUA_OK && status != LUA_YIELD) {
    lua_pushboolean(L, 0);
    lua_pushvalue(L, -2);
    return 2;  // false, the error
  }
  return lua_gettop(L) - static_cast<int>(extra);  // true, the results
}

int l_pcall(lua_State* L) {
  luaL_checkany(L, 1);
  if (call_over_budget(L)) return stop_failed_call(L);
  lua_pushboolean(L, 1);
  lua_insert(L, 1);
  const int status = lua_pcallk(L, lua_gettop(L) - 2, LUA_MULTRET, 0, 0, finish_pcall);
  return finish_pcall(L, status, 0);
}

int l_xpcall(lua_State* L) {
  const int n = lua_gettop(L);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  if (call_over_budget(L)) return stop_failed_call(L);
  lua_pushboolean(L, 1);
  lua_pushvalue(L, 1);
  lua_rotate(L, 3, 2);  // f, handler, true, f, args...
  const int status = lua_pcallk(L, n - 2, LUA_MULTRET, 2, 2, finish_pcall);
  return finish_pcall(L, status, 2);
}

// Resumes co with narg arguments from L: the number of results moved to L,
// or -1 with the error on L.
int resume_thread(lua_State* L, lua_State* co, int narg) {
  if (!lua_checkstack(co, narg)) {
    lua_pushliteral(L, "too many arguments to resume");
    return -1;
  }
  lua_xmove(L, co, narg);
  int nres = 0;
  const int status = lua_resume(co, L, narg, &nres);
  if (status == LUA_OK || status == LUA_YIELD) {
    if (!lua_checkstack(L, nres + 1)) {
      lua_pop(co, nres);
      lua_pushliteral(L, "too many results to resume");
      return -1;
    }
    lua_xmove(co, L, nres);
    return nres;
  }
  lua_xmove(co, L, 1);
  return -1;
}

lua_State* check_thread(lua_State* L) {
  lua_State* co = lua_tothread(L, 1);
  luaL_argexpected(L, co, 1, "thread");
  return co;
}

int l_co_resume(lua_State* L) {
  lua_State* co = check_thread(L);
  const int r = resume_thread(L, co, lua_gettop(L) - 1);
  if (call_over_budget(L)) return stop_failed_call(L);
  if (r < 0) {
    lua_pushboolean(L, 0);
    lua_insert(L, -2);
    return 2;
  }
  lua_pushboolean(L, 1);
  lua_insert(L, -(r + 1));
  return r + 1;
}

int close_thread(lua_State* co, lua_State* from) {
#if LUA_VERSION_RELEASE_NUM >= 50406
  return lua_closethread(co, from);
#else
  (void)from;
  return lua_resetthread(co);
#endif
}

int l_co_close(lua_State* L) {
  lua_State* co = check_thread(L);
  const char* busy = nullptr;
  if (co == L) {
    busy = "running";
  } else if (lua_status(co) == LUA_OK) {
    lua_Debug ar;
    if (lua_getstack(co, 0, &ar)) busy = "normal";
  }
  if (busy != nullptr) return luaL_error(L, "cannot close a %s coroutine", busy);
  const int status = close_thread(co, L);
  if (call_over_budget(L)) return stop_failed_call(L);
  if (status == LUA_OK) {
    lua_pushboolean(L, 1);
    return 1;
  }
  lua_pushboolean(L, 0);
  lua_xmove(co, L, 1);
  return 2;
}

constexpr int kReaderSlot = 5;  // where load keeps the reader's last piece

const char* load_reader(lua_State* L, void*, std::size_t* size) {
  luaL_checkstack(L, 2, "too many nested functions");
  lua_pushvalue(L, 1);
  lua_call(L, 0, 1);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    *size = 0;
    return nullptr;
  }
  if (!lua_isstring(L, -1)) luaL_error(L, "reader function must return a string");
  lua_replace(L, kReaderSlot);
  return lua_tolstring(L, kReaderSlot, size);
}

// load(chunk [, chunkname [, mode [, env]]]): text chunks only, whatever mode
// says (a binary chunk can crash the VM).
int l_load(lua_State* L) {
  std::size_t len = 0;
  const char* s = lua_tolstring(L, 1, &len);
  luaL_optstring(L, 3, "t");
  const int env = lua_isnone(L, 4) ? 0 : 4;
  int status;
  if (s != nullptr) {
    const char* name = luaL_optstring(L, 2, s);
    status = luaL_loadbufferx(L, s, len, name, "t");
  } else {
    const char* name = luaL_optstring(L, 2, "=(load)");
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_settop(L, kReaderSlot);
    status = lua_load(L, load_reader, nullptr, name, "t");
  }
  if (call_over_budget(L)) return stop_failed_call(L);
  if (status == LUA_OK) {
    if (env != 0) {
      lua_pushvalue(L, env);
      if (!lua_setupvalue(L, -2, 1)) lua_pop(L, 1);
    }
    return 1;
  }
  lua_pushnil(L);
  lua_insert(L, -2);
  return 2;
}

// ---------------------------------------------------------------------------
// Other base functions.

// setmetatable(t, mt): as Lua's, but a metatable with __gc is refused: Lua runs
// finalizers with hooks off, so a finalizer that loops could never be stopped.
int l_setmetatable(lua_State* L) {
  const int t = lua_type(L, 2);
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_argexpected(L, t == LUA_TNIL || t == LUA_TTABLE, 2, "nil or table");
  if (t == LUA_TTABLE) {
    lua_pushliteral(L, "__gc");
    const bool gc = lua_rawget(L, 2) != LUA_TNIL;
    lua_pop(L, 1);
    if (gc) return luaL_error(L, "setmetatable: __gc metamethods are not allowed in policy code");
  }
  if (luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL)
    return luaL_error(L, "cannot change a protected metatable");
  lua_settop(L, 2);
  lua_setmetatable(L, 1);
  return 1;
}

// collectgarbage(opt, ...): Lua's (upvalue 1) without "stop", which would leave
// every later call of the state's worker to emergency collections.
int l_collectgarbage(lua_State* L) {
  const char* opt = luaL_optstring(L, 1, "collect");
  if (std::strcmp(opt, "stop") == 0)
    return luaL_error(L, "collectgarbage: \"stop\" is not allowed in policy code");
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

// print(...): one log line at info, "lua FILE:LINE: a<TAB>b", like mailgate.log
// (a worker's stdout is nobody's terminal).
int l_print(lua_State* L) {
  const int n = lua_gettop(L);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (int i = 1; i <= n; ++i) {
    if (i > 1) luaL_addchar(&b, '\t');
    luaL_tolstring(L, i, nullptr);
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
  lua_Debug ar;
  int line = 0;
  const char* src = "?";
  if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "Sl", &ar)) {
    line = ar.currentline;
    src = ar.short_src;
  }
  std::size_t len = 0;
  const char* text = lua_tolstring(L, -1, &len);
  spdlog::info("lua {}:{}: {}", src, line, std::string_view(text, len));
  return 0;
}

// Replaces t[name] (t at the top of the stack) by fn with the old value as
// upvalue 1 (or none).
void replace(lua_State* L, const char* name, lua_CFunction fn, bool keep_old = false) {
  if (keep_old) {
    lua_getfield(L, -1, name);
    lua_pushcclosure(L, fn, 1);
  } else {
    lua_pushcfunction(L, fn);
  }
  lua_setfield(L, -2, name);
}

// Sets global `name` and package.loaded[name] to a table holding only `keep`
// of the library now at the top of the stack (popped).
void keep_only(lua_State* L, const char* name, std::initializer_list<const char*> keep) {
  lua_createtable(L, 0, static_cast<int>(keep.size()));
  for (const char* k : keep) {
    lua_getfield(L, -2, k);
    lua_setfield(L, -2, k);
  }
  lua_remove(L, -2);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_pushvalue(L, -2);
  lua_setfield(L, -2, name);
  lua_pop(L, 1);
  lua_setglobal(L, name);
}

}  // namespace

CallLimits* running_call(lua_State* L) { return state_control(L).running; }

bool call_over_budget(lua_State* L) {
  CallLimits* call = running_call(L);
  if (call == nullptr) return false;
  if (call->failed()) return true;
  if (std::chrono::steady_clock::now() <= call->deadline) return false;
  call->failure = CallLimits::Failure::Timeout;
  lua_Debug ar;
  if (lua_getstack(L, 1, &ar)) note_where(L, &ar, call);
  return true;
}

int stop_failed_call(lua_State* L) {
  CallLimits* call = running_call(L);
  if (call != nullptr && L == call->thread && lua_isyieldable(L)) return lua_yield(L, 0);
  return luaL_error(L, "%s", failure_text(call ? call->failure : CallLimits::Failure::Timeout));
}

const char* failure_text(CallLimits::Failure f) {
  switch (f) {
    case CallLimits::Failure::Timeout:
      return "hook timed out (policy.hook_timeout)";
    case CallLimits::Failure::Memory:
      return "hook ran out of memory (policy.memory_limit)";
    case CallLimits::Failure::None:
      break;
  }
  return "";
}

void open_policy_libraries(lua_State* L) {
  const luaL_Reg libs[] = {{LUA_GNAME, luaopen_base},
                           {LUA_COLIBNAME, luaopen_coroutine},
                           {LUA_TABLIBNAME, luaopen_table},
                           {LUA_STRLIBNAME, luaopen_string},
                           {LUA_MATHLIBNAME, luaopen_math},
                           {LUA_UTF8LIBNAME, luaopen_utf8},
                           {LUA_OSLIBNAME, luaopen_os},
                           {LUA_DBLIBNAME, luaopen_debug},
                           {nullptr, nullptr}};
  for (const luaL_Reg* lib = libs; lib->func != nullptr; ++lib) {
    luaL_requiref(L, lib->name, lib->func, 1);
    lua_pop(L, 1);
  }

  lua_pushglobaltable(L);
  lua_pushnil(L);
  lua_setfield(L, -2, "dofile");
  lua_pushnil(L);
  lua_setfield(L, -2, "loadfile");
  replace(L, "load", l_load);
  replace(L, "pcall", l_pcall);
  replace(L, "xpcall", l_xpcall);
  replace(L, "setmetatable", l_setmetatable);
  replace(L, "collectgarbage", l_collectgarbage, /*keep_old=*/true);
  replace(L, "print", l_print);
  lua_pop(L, 1);

  lua_getglobal(L, LUA_COLIBNAME);
  replace(L, "resume", l_co_resume);
  replace(L, "close", l_co_close);
  lua_pop(L, 1);

  install_bounded_patterns(L);

  lua_getglobal(L, LUA_OSLIBNAME);
  keep_only(L, LUA_OSLIBNAME, {"clock", "date", "difftime", "getenv", "time"});
  lua_getglobal(L, LUA_DBLIBNAME);
  keep_only(L, LUA_DBLIBNAME, {"traceback"});

  // Every thread made from now on inherits the hook from its creator.
  lua_sethook(L, count_hook, LUA_MASKCOUNT, kHookEvery);
}

}  // namespace mailgate::policy
