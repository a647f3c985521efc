#include "rules/primitives.h"

#include "tailor/plugin.h"

#include <lua.hpp>

#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>

#include "decision/engine.h"
#include "rules/sandbox.h"
#include "store/store.h"

namespace tailor::rules_internal {

namespace {

constexpr const char* kCatalogKey = "tailor.catalog";

// history.bought needs the catalog to map items to categories.
const Catalog* CatalogOf(lua_State* L) {
  lua_getfield(L, LUA_REGISTRYINDEX, kCatalogKey);
  auto* c = static_cast<const Catalog*>(lua_touserdata(L, -1));
  lua_pop(L, 1);
  return c;
}

// history.count(event, id_or_nil, window) -> number of the customer's recent
// events of that type (about that offer or item, within the window).
int HistoryCount(lua_State* L) {
  Sandbox* sb = SandboxOf(L);
  size_t type_len = 0, id_len = 0;
  const char* type_c = luaL_checklstring(L, 1, &type_len);
  const char* id_c = lua_isnoneornil(L, 2) ? nullptr : luaL_checklstring(L, 2, &id_len);
  std::string_view type(type_c, type_len), id(id_c ? id_c : "", id_len);
  int64_t window = WindowMs(L, 3);
  const RuleRequest* r = sb->request;
  int64_t n = 0;
  if (r && r->profile && r->personalised) {
    // Cheapest tests first: time, then lengths, then bytes.
    for (const Event& e : r->profile->recent) {
      if (r->now_ms - e.ts_ms > window) continue;
      if (std::string_view(e.type) != type) continue;
      if (id_c && std::string_view(e.offer_id) != id && std::string_view(e.item_id) != id) continue;
      ++n;
    }
  }
  lua_pushinteger(L, n);
  return 1;
}

// history.last(event, id_or_nil) -> seconds since the newest such event, or nil.
int HistoryLast(lua_State* L) {
  Sandbox* sb = SandboxOf(L);
  const char* type = luaL_checkstring(L, 1);
  const char* id = lua_isnoneornil(L, 2) ? nullptr : luaL_checkstring(L, 2);
  const RuleRequest* r = sb->request;
  if (r && r->profile && r->personalised) {
    for (auto it = r->profile->recent.rbegin(); it != r->profile->recent.rend(); ++it) {
      if (it->type != type) continue;
      if (id && it->offer_id != id && it->item_id != id) continue;
      lua_pushnumber(L, static_cast<double>(r->now_ms - it->ts_ms) / 1000.0);
      return 1;
    }
  }
  lua_pushnil(L);
  return 1;
}

// plugin_score(name) -> the named plugin's score for the current candidate, or nil.
int PluginScore(lua_State* L) {
  Sandbox* sb = SandboxOf(L);
  const char* name = luaL_checkstring(L, 1);
  const RuleRequest* r = sb->request;
  if (r && r->plugin_names && r->plugin_scores) {
    for (size_t k = 0; k < r->plugin_names->size(); ++k) {
      if ((*r->plugin_names)[k] != name || !(*r->plugin_ok)[k]) continue;
      const float score = r->plugin_scores[k * r->n_candidates + sb->candidate];
      if (score == TAILOR_SCORE_ABSTAIN) break;  // no opinion: nil
      lua_pushnumber(L, score);
      return 1;
    }
  }
  lua_pushnil(L);
  return 1;
}

// history.bought(item_or_category, window) -> true when a purchase in the
// window was of that item or of an item in that category.
int HistoryBought(lua_State* L) {
  Sandbox* sb = SandboxOf(L);
  const char* what = luaL_checkstring(L, 1);
  int64_t window = WindowMs(L, 2);
  const RuleRequest* r = sb->request;
  const Catalog* cat = CatalogOf(L);
  bool found = false;
  if (r && r->profile && r->personalised) {
    for (const Event& e : r->profile->recent) {
      if (e.type != "purchase" || r->now_ms - e.ts_ms > window) continue;
      if (e.item_id == what) found = true;
      if (!found && cat) {
        auto it = cat->item_index.find(e.item_id);
        if (it != cat->item_index.end() && cat->items[it->second].category == what) found = true;
      }
      if (found) break;
    }
  }
  lua_pushboolean(L, found);
  return 1;
}

}  // namespace

int64_t WindowMs(lua_State* L, int idx) {
  if (lua_isnoneornil(L, idx)) return std::numeric_limits<int64_t>::max();
  if (lua_type(L, idx) == LUA_TNUMBER) return static_cast<int64_t>(lua_tonumber(L, idx) * 1000);
  const char* s = luaL_checkstring(L, idx);
  char* end = nullptr;
  double n = std::strtod(s, &end);
  int64_t unit = 0;
  if (end && std::strcmp(end, "d") == 0) unit = 86400000;
  if (end && std::strcmp(end, "h") == 0) unit = 3600000;
  if (end && std::strcmp(end, "m") == 0) unit = 60000;
  if (end && std::strcmp(end, "s") == 0) unit = 1000;
  if (unit == 0 || n < 0)
    luaL_error(L, "window must look like \"7d\", \"12h\", \"30m\" or seconds");
  return static_cast<int64_t>(n * static_cast<double>(unit));
}

void SetPrimitivesCatalog(lua_State* L, const Catalog* catalog) {
  lua_pushlightuserdata(L, const_cast<Catalog*>(catalog));
  lua_setfield(L, LUA_REGISTRYINDEX, kCatalogKey);
}

void OpenPrimitives(lua_State* L) {
  lua_pushcfunction(L, PluginScore);
  lua_setfield(L, -2, "plugin_score");
  lua_newtable(L);
  lua_pushcfunction(L, HistoryCount);
  lua_setfield(L, -2, "count");
  lua_pushcfunction(L, HistoryLast);
  lua_setfield(L, -2, "last");
  lua_pushcfunction(L, HistoryBought);
  lua_setfield(L, -2, "bought");
  lua_setfield(L, -2, "history");
}

}  // namespace tailor::rules_internal
