#include "rules/marshal.h"

#include <lua.hpp>

#include <nlohmann/json.hpp>

#include "common/json_limits.h"
#include "model/types.h"

namespace tailor::rules_internal {

using nlohmann::json;

namespace {

int ReadOnly(lua_State* L) {
  return luaL_error(L, "attempt to modify read-only field '%s'",
                    lua_tostring(L, 2) ? lua_tostring(L, 2) : "?");
}

int Revoked(lua_State* L) {
  return luaL_error(L, "a request's table was used after that request ended (stashed handle)");
}

// The iterator __pairs hands out: upvalue 1 is the real table, which never
// leaves C. Its values are read-only already (nested tables are proxies), so
// iteration reveals nothing a read through the proxy would not.
int ProxyNext(lua_State* L) {
  lua_settop(L, 2);  // (proxy, key)
  if (lua_next(L, lua_upvalueindex(1))) return 2;
  return 0;
}

// __pairs of a proxy: (iterator, proxy, nil); the real table is not returned.
int ProxyPairs(lua_State* L) {
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushcclosure(L, ProxyNext, 1);
  lua_pushvalue(L, 1);
  lua_pushnil(L);
  return 3;
}

int ProxyLen(lua_State* L) {
  lua_pushinteger(L, static_cast<lua_Integer>(lua_rawlen(L, lua_upvalueindex(1))));
  return 1;
}

}  // namespace

void PushReadOnly(lua_State* L, std::vector<int>* proxies) {
  // stack: real table -> replace with a proxy whose metatable reads it.
  lua_newtable(L);  // proxy
  lua_newtable(L);  // mt
  lua_pushvalue(L, -3);
  lua_setfield(L, -2, "__index");  // mt.__index = real
  lua_pushvalue(L, -3);
  lua_pushcclosure(L, ProxyPairs, 1);
  lua_setfield(L, -2, "__pairs");
  lua_pushvalue(L, -3);
  lua_pushcclosure(L, ProxyLen, 1);
  lua_setfield(L, -2, "__len");
  lua_pushcfunction(L, ReadOnly);
  lua_setfield(L, -2, "__newindex");
  lua_pushliteral(L, "locked");
  lua_setfield(L, -2, "__metatable");
  if (proxies) {
    lua_pushvalue(L, -1);
    proxies->push_back(luaL_ref(L, LUA_REGISTRYINDEX));  // so End() can revoke it
  }
  lua_setmetatable(L, -2);
  lua_remove(L, -2);  // drop the real table
}

namespace {

// depth counts the levels above j (0 for a top-level value). Past
// kMaxJsonDepth the value becomes nil: no client document can drive the
// recursion (or the Lua stack) further, whatever path it came by.
void PushJsonAt(lua_State* L, const json& j, std::vector<int>* proxies, int depth) {
  // Each level holds its table, its proxy parts and one value.
  if (depth >= kMaxJsonDepth || !lua_checkstack(L, 6)) {
    lua_pushnil(L);
    return;
  }
  switch (j.type()) {
    case json::value_t::object:
      lua_createtable(L, 0, static_cast<int>(j.size()));
      for (auto it = j.begin(); it != j.end(); ++it) {
        PushJsonAt(L, it.value(), proxies, depth + 1);
        lua_setfield(L, -2, it.key().c_str());
      }
      PushReadOnly(L, proxies);
      break;
    case json::value_t::array: {
      lua_createtable(L, static_cast<int>(j.size()), 0);
      lua_Integer i = 1;
      for (const auto& e : j) {
        PushJsonAt(L, e, proxies, depth + 1);
        lua_rawseti(L, -2, i++);
      }
      PushReadOnly(L, proxies);
      break;
    }
    case json::value_t::string: {
      const std::string& v = j.get_ref<const std::string&>();
      lua_pushlstring(L, v.data(), v.size());
      break;
    }
    case json::value_t::boolean:
      lua_pushboolean(L, j.get<bool>());
      break;
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      lua_pushinteger(L, j.get<lua_Integer>());
      break;
    case json::value_t::number_float:
      lua_pushnumber(L, j.get<double>());
      break;
    default:
      lua_pushnil(L);
      break;
  }
}

}  // namespace

void PushJson(lua_State* L, const json& j, std::vector<int>* proxies) {
  PushJsonAt(L, j, proxies, 0);
}

void SetString(lua_State* L, const char* k, const std::string& v) {
  if (v.empty()) return;
  lua_pushlstring(L, v.data(), v.size());
  lua_setfield(L, -2, k);
}

void MergeFacts(lua_State* L, const json* facts, const char* part, std::vector<int>* proxies) {
  if (facts == nullptr) return;
  auto it = facts->find(part);
  if (it == facts->end() || !it->is_object()) return;
  for (auto f = it->begin(); f != it->end(); ++f) {
    if (lua_getfield(L, -1, f.key().c_str()) != LUA_TNIL) {
      lua_pop(L, 1);
      continue;
    }
    lua_pop(L, 1);
    PushJson(L, f.value(), proxies);
    lua_setfield(L, -2, f.key().c_str());
  }
}

void PushOffer(lua_State* L, const Catalog& cat, const Offer& o) {
  lua_createtable(L, 0, 12);
  lua_pushliteral(L, "offer");
  lua_setfield(L, -2, "kind");
  SetString(L, "id", o.id);
  SetString(L, "name", o.name);
  SetString(L, "item", o.item);
  SetString(L, "category", o.category);
  if (o.category.empty() && !o.item.empty())
    if (auto it = cat.item_index.find(o.item); it != cat.item_index.end())
      SetString(L, "category", cat.items[it->second].category);
  SetString(L, "content", o.content);
  lua_pushnumber(L, o.value);
  lua_setfield(L, -2, "value");
  json tags = o.tags;
  PushJson(L, tags, nullptr);
  lua_setfield(L, -2, "tags");
  PushJson(L, json(o.channels), nullptr);
  lua_setfield(L, -2, "channels");
  if (o.discount) {
    lua_pushnumber(L, o.discount->first);
    lua_setfield(L, -2, "discount_min");
    lua_pushnumber(L, o.discount->second);
    lua_setfield(L, -2, "discount_max");
  }
  PushReadOnly(L, nullptr);
}

bool PushCachedCandidate(lua_State* L, int offers_ref, int items_ref, int offer_index,
                         int item_index) {
  if (offer_index >= 0) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, offers_ref);
    lua_rawgeti(L, -1, offer_index + 1);
    lua_remove(L, -2);
    return true;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, items_ref);
  if (lua_rawgeti(L, -1, item_index + 1) != LUA_TNIL) {
    lua_remove(L, -2);
    return true;
  }
  lua_pop(L, 2);
  return false;
}

void PushNewItem(lua_State* L, int items_ref, const Catalog& cat, int item_index,
                 const json& tags) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, items_ref);
  const Item& it = cat.items[static_cast<size_t>(item_index)];
  lua_createtable(L, 0, 8);
  lua_pushliteral(L, "item");
  lua_setfield(L, -2, "kind");
  SetString(L, "id", it.id);
  SetString(L, "item", it.id);
  SetString(L, "title", it.title);
  SetString(L, "category", it.category);
  SetString(L, "brand", it.brand);
  lua_pushnumber(L, it.price);
  lua_setfield(L, -2, "price");
  lua_pushnumber(L, cat.item_value[static_cast<size_t>(item_index)]);
  lua_setfield(L, -2, "value");
  PushJson(L, tags, nullptr);
  lua_setfield(L, -2, "tags");
  PushReadOnly(L, nullptr);
  lua_pushvalue(L, -1);
  lua_rawseti(L, -3, item_index + 1);
  lua_remove(L, -2);
}

void RevokeProxy(lua_State* L, int ref) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
  for (const char* event : {"__index", "__pairs", "__len"}) {
    lua_pushcfunction(L, Revoked);
    lua_setfield(L, -2, event);
  }
  lua_pop(L, 1);
  luaL_unref(L, LUA_REGISTRYINDEX, ref);
}

}  // namespace tailor::rules_internal
