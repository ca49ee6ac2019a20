// policy/sandbox: the Lua environment of every policy state (the config-time
// state of check-config and each worker's run-time state get the same one),
// and what holds a hook call to policy.hook_timeout and policy.memory_limit
// whatever its code does.
//
// Libraries: base, coroutine, string, table, math, utf8, os.clock/date/
// difftime/time/getenv and debug.traceback. Not there: io, package/require,
// dofile/loadfile, the rest of os (execute, exit, remove, rename, tmpname,
// setlocale) and of debug. Changed: load takes text chunks only; print logs
// through the gateway's logger; setmetatable refuses __gc (finalizers run with
// hooks off, so nothing could stop one); collectgarbage refuses "stop";
// string.find/match/gmatch/gsub are the bounded ones of lua_patterns.
//
// Promises:
// - Every thread of a state carries the instruction-count hook (set on the
//   main thread; Lua threads inherit it from the thread that creates them),
//   so coroutines a script makes are stopped at the deadline too.
// - Once a call has failed (deadline passed, an allocation refused), it stays
//   failed whatever the script does: the count hook stops it at its next tick
//   (on the call's own thread a yield straight back to the driver, which no
//   pcall can catch; elsewhere an error), and every place where Lua code can
//   catch an error (pcall, xpcall and its handler, coroutine.resume,
//   coroutine.close, load's reader function) raises the failure again instead
//   of returning. The driver treats the call as failed even if the script
//   returns normally.
#pragma once

#include "policy/lua_state.hpp"

struct lua_State;

namespace mailgate::policy {

// Opens the policy libraries above in a fresh state and sets the count hook.
void open_policy_libraries(lua_State* L);

// The hook call whose Lua code runs now in L's state, or null.
CallLimits* running_call(lua_State* L);

// True when the running hook call (if any) has failed, or is past its
// deadline (then it is marked timed out). Cheap: bounded C loops call it.
bool call_over_budget(lua_State* L);

// Stops the running call, which has failed: yields its own thread back to the
// driver when it can, raises the failure as a Lua error otherwise. Use as
// `return stop_failed_call(L);` in a lua_CFunction.
int stop_failed_call(lua_State* L);

// "hook timed out (policy.hook_timeout)", "hook ran out of memory
// (policy.memory_limit)", or "" for None.
const char* failure_text(CallLimits::Failure f);

}  // namespace mailgate::policy
