// Lua pattern matching for rules, step-counted. Lua's own matcher (lstrlib)
// is a backtracking matcher that runs in C, where the count hook never fires:
// `string.find(string.rep("a", 40), string.rep("a*", 40) .. "b")` runs for
// ever. This one implements the same pattern language (classes, sets,
// quantifiers * + - ?, captures, position captures, back-references, %b,
// %f, anchors) and charges every matcher step to the rule's instruction
// budget (Charge in sandbox.h), so a pattern that backtracks too much fails
// like a loop that runs too long: "rule exceeded its budget". Internal to
// rules/.
#pragma once

struct lua_State;

namespace tailor::rules_internal {

// string.find, string.match, string.gmatch and string.gsub with Lua 5.4's
// arguments, results and error messages.
int PatternFind(lua_State* L);
int PatternMatch(lua_State* L);
int PatternGmatch(lua_State* L);
int PatternGsub(lua_State* L);

}  // namespace tailor::rules_internal
