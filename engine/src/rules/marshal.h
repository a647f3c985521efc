// Lua marshalling: JSON and catalog records into read-only Lua tables.
// Every table a rule sees is a proxy whose writes are errors; a request's
// proxies are recorded so the request's end can revoke them. Internal to
// rules/.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

struct lua_State;

namespace tailor {
struct Catalog;
struct Offer;
}  // namespace tailor

namespace tailor::rules_internal {

// Replaces the table on top of the stack with a read-only proxy over it.
// With proxies, the proxy's metatable is referenced there for RevokeProxy.
void PushReadOnly(lua_State* L, std::vector<int>* proxies);

// Pushes a JSON value as a read-only Lua value (objects and arrays become
// proxies, recorded in proxies when not null). Bounded: a value nested
// kMaxJsonDepth (common/json_limits.h) levels below j becomes nil, and the
// Lua stack is checked before each level, so no document, however deep or
// however it arrived (message, store, plugin facts), can exhaust either.
void PushJson(lua_State* L, const nlohmann::json& j, std::vector<int>* proxies);

// t[k] = v on the table on top of the stack; an empty v leaves k unset.
void SetString(lua_State* L, const char* k, const std::string& v);

// Adds facts[part]'s members to the table on top of the stack, leaving keys
// the table already has (the request's own data wins).
void MergeFacts(lua_State* L, const nlohmann::json* facts, const char* part,
                std::vector<int>* proxies);

// Pushes an offer's read-only table.
void PushOffer(lua_State* L, const Catalog& cat, const Offer& o);

// Pushes a candidate's read-only table: an offer from the array at offers_ref,
// or an item from the cache at items_ref. False, with nothing pushed, for an
// item not built yet. Allocates nothing, so it needs no protected call.
bool PushCachedCandidate(lua_State* L, int offers_ref, int items_ref, int offer_index,
                         int item_index);

// Builds item item_index's read-only table with tags (a JSON object), caches
// it at items_ref and leaves it on the stack. Allocates: call it protected.
void PushNewItem(lua_State* L, int items_ref, const Catalog& cat, int item_index,
                 const nlohmann::json& tags);

// Makes the proxy whose metatable is referenced by ref unreadable and drops
// the reference: a stashed handle cannot read a later request's data.
void RevokeProxy(lua_State* L, int ref);

}  // namespace tailor::rules_internal
