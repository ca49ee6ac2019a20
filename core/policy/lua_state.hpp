// policy/lua_state: owns one Lua 5.4 state of a policy (the config-time state
// of check-config, or one worker's run-time state) with the policy libraries
// (policy/sandbox) and an allocator that counts the state's memory.
// Promises: the state is closed exactly once; error values are turned into
// text without running Lua code (no __tostring), so reading an error can never
// raise another one. With a memory limit, an allocation that would take the
// state past it is refused while `enforce` is set (the driver sets it while
// Lua code runs, so its own argument pushes never fail for the limit); Lua
// answers a refusal with an emergency collection and asks again, and only a
// second refusal of the same request counts: it marks the state `exhausted`
// and fails the running hook call (CallLimits::Failure::Memory). Frees and
// shrinks are never refused.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

struct lua_State;

namespace mailgate::policy {

// What a running hook call is held to, whatever its code does (HookCall
// derives from it; policy/sandbox enforces it).
struct CallLimits {
  enum class Failure { None, Timeout, Memory };
  lua_State* thread = nullptr;  // the call's own Lua thread
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  Failure failure = Failure::None;  // once set the call has failed, whatever the script does
  char where[160] = {};             // "file:line" where the failure found the script, if known
  bool failed() const { return failure != Failure::None; }
};

// The bookkeeping of one state, reachable from each of its threads.
struct StateControl {
  std::size_t used = 0;           // bytes the state holds
  std::size_t limit = 0;          // 0: no limit
  bool enforce = false;           // the limit holds (only while Lua code runs)
  bool exhausted = false;         // an allocation was refused for good: replace the state
  CallLimits* running = nullptr;  // the hook call whose Lua code runs now, or null
  // The last refused request (Lua retries it once after an emergency collection).
  const void* refused_block = nullptr;
  std::size_t refused_osize = 0, refused_nsize = 0;
  bool refused_pending = false;
  std::string warning;  // a warn() message being assembled (Lua passes it in pieces)
};

class LuaState {
 public:
  // A new state with the policy libraries; memory_limit 0: no limit. Throws
  // std::bad_alloc if Lua cannot allocate.
  explicit LuaState(std::size_t memory_limit = 0);
  ~LuaState();
  LuaState(const LuaState&) = delete;
  LuaState& operator=(const LuaState&) = delete;

  lua_State* get() const { return L_; }
  StateControl& control() const { return *control_; }

 private:
  std::unique_ptr<StateControl> control_;  // the allocator's: outlives L_
  lua_State* L_;
};

// The control block of L's state (any thread of it).
StateControl& state_control(lua_State* L);

// The error value at stack index `idx` as text: the string itself, or
// "(error object is a T value)" for a non-string error.
std::string lua_error_text(lua_State* L, int idx);

}  // namespace mailgate::policy
