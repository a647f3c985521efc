// The functions rules call to ask about the customer and the request:
// history.count / history.last / history.bought over the customer's events
// (Profile::history: every event of store.history_days, exact to the
// millisecond, not only the recent ones; no SQL), plugin_score for the
// current candidate. A new primitive goes here: write
// the lua_CFunction, then register it in OpenPrimitives. Internal to rules/.
#pragma once

#include <cstdint>

struct lua_State;

namespace tailor {
struct Catalog;
}

namespace tailor::rules_internal {

// Adds `history` and `plugin_score` to the table on top of the stack (the
// globals of a sandbox state being built).
void OpenPrimitives(lua_State* L);

// The catalog history.bought maps items to categories with; lives as long as
// the state (the runtime holds it).
void SetPrimitivesCatalog(lua_State* L, const Catalog* catalog);

// A window argument: "7d", "12h", "30m", "45s" or a number of seconds; no
// argument is the whole history. Raises a Lua error on anything else.
int64_t WindowMs(lua_State* L, int idx);

}  // namespace tailor::rules_internal
