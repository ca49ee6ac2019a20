// policy/lua_patterns: string.find, string.match, string.gmatch and
// string.gsub for policy states, with Lua 5.4's pattern language and results
// (captures, position captures, %b, %f, back-references, anchors, gsub with
// string/table/function replacements, gmatch's init) but a matcher of our own
// that counts its steps. Lua's own matcher runs in C, where the count hook
// cannot reach it: string.find(string.rep("a", 200), ".-.-.-.-b") would run
// for half a minute on a worker.
// Promises: every 1024 steps (a step: one position tried by one pattern item)
// the matcher asks call_over_budget (policy/sandbox); past the running call's
// deadline it stops and the call fails as a timeout. Outside a hook call there
// is no deadline. Plain searches (string.find with plain = true, or a pattern
// without special characters) use memmem: linear, not bounded by steps.
// Errors (malformed patterns, bad capture indexes, "pattern too complex" past
// 200 nested items, bad replacements) have stock Lua's messages.
#pragma once

struct lua_State;

namespace mailgate::policy {

// Replaces find, match, gmatch and gsub in the state's string table (which is
// also the __index of strings, so s:find(...) gets them too).
void install_bounded_patterns(lua_State* L);

}  // namespace mailgate::policy
