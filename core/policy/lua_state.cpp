// policy/lua_state: creation/destruction of a Lua state, its counting
// allocator, panic and warning functions, and error-value text (see
// lua_state.hpp for the promises).
#include "policy/lua_state.hpp"

#include <spdlog/spdlog.h>

#include <cstdlib>
#include <new>

#include <lua.hpp>

#include "policy/sandbox.hpp"

namespace mailgate::policy {
namespace {

void* counting_alloc(void* ud, void* block, std::size_t osize, std::size_t nsize) {
  auto* c = static_cast<StateControl*>(ud);
  const std::size_t old = block != nullptr ? osize : 0;  // for a new block, osize is a type tag
  if (nsize == 0) {
    std::free(block);
    c->used -= old;
    return nullptr;
  }
  if (nsize > old && c->enforce && c->limit != 0 && c->used - old + nsize > c->limit) {
    if (c->refused_pending && c->refused_block == block && c->refused_osize == osize &&
        c->refused_nsize == nsize) {
      // Refused again after the emergency collection: the state is full.
      c->refused_pending = false;
      c->exhausted = true;
      if (c->running != nullptr && !c->running->failed())
        c->running->failure = CallLimits::Failure::Memory;
    } else {
      c->refused_block = block;
      c->refused_osize = osize;
      c->refused_nsize = nsize;
      c->refused_pending = true;
    }
    return nullptr;
  }
  void* p = std::realloc(block, nsize);
  if (p == nullptr) return nullptr;
  if (nsize > old) c->refused_pending = false;
  c->used = c->used - old + nsize;
  return p;
}

int on_panic(lua_State* L) {
  spdlog::critical("lua: unprotected error: {}", lua_error_text(L, -1));
  return 0;  // Lua aborts
}

// warn("@on"/"@off") are control messages; other messages come in pieces.
void on_warning(void* ud, const char* msg, int tocont) {
  auto* c = static_cast<StateControl*>(ud);
  if (c->warning.empty() && !tocont && msg[0] == '@') return;
  c->warning += msg;
  if (tocont) return;
  spdlog::warn("lua warning: {}", c->warning);
  c->warning.clear();
}

}  // namespace

LuaState::LuaState(std::size_t memory_limit) : control_(std::make_unique<StateControl>()) {
  control_->limit = memory_limit;
  L_ = lua_newstate(counting_alloc, control_.get());
  if (L_ == nullptr) throw std::bad_alloc();
  lua_atpanic(L_, on_panic);
  lua_setwarnf(L_, on_warning, control_.get());
  open_policy_libraries(L_);
}

LuaState::~LuaState() { lua_close(L_); }

StateControl& state_control(lua_State* L) {
  void* ud = nullptr;
  lua_getallocf(L, &ud);
  return *static_cast<StateControl*>(ud);
}

std::string lua_error_text(lua_State* L, int idx) {
  if (lua_type(L, idx) == LUA_TSTRING) {
    std::size_t len = 0;
    const char* s = lua_tolstring(L, idx, &len);
    return std::string(s, len);
  }
  return std::string("(error object is a ") + luaL_typename(L, idx) + " value)";
}

}  // namespace mailgate::policy
