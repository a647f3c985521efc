// The libraries rules see, bounded and frozen. Every library function a rule
// calls runs in C, where the count hook never fires; so each one charges its
// work to the rule's budget (Charge in sandbox.h) before it runs: pattern
// matching step by step (pattern.h), and the others up front by the size of
// what they will touch (bytes of string arguments, counts of repetitions or
// elements). The tables themselves are read-only proxies shared by every file:
// no file can change what `string.find` or `history.count` means to another.
// Internal to rules/.
#pragma once

struct lua_State;

namespace tailor::rules_internal {

// Replaces string, table, utf8, math and history in the globals table on top
// of the stack with read-only tables of bounded functions (string.dump
// dropped), and points the string metatable's __index at the bounded string
// functions so that ("x"):find(...) is bounded too.
void FreezeLibraries(lua_State* L);

}  // namespace tailor::rules_internal
