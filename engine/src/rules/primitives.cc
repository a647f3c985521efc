#include "rules/primitives.h"

#include "tailor/plugin.h"

#include <lua.hpp>

#include <cstdlib>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include "model/types.h"
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

// The earliest event time a window reaching back window_ms from now
// includes (INT64_MIN, the whole history, when the subtraction overflows).
int64_t SinceMs(int64_t now_ms, int64_t window_ms) {
  int64_t since = 0;
  if (__builtin_sub_overflow(now_ms, window_ms, &since)) return INT64_MIN;
  return since;
}

// The customer's history when the request may look at it.
const EventHistory* HistoryOf(const RuleRequest* r) {
  return r && r->profile && r->personalised ? &r->profile->history : nullptr;
}

// history.count(event, id_or_nil, window) -> number of the customer's events
// of that type (about that offer or item) at or after now - window. Exact
// over every event the profile holds (store.history_days), not only the
// recent ones.
int HistoryCount(lua_State* L) {
  Sandbox* sb = SandboxOf(L);
  size_t type_len = 0, id_len = 0;
  const char* type_c = luaL_checklstring(L, 1, &type_len);
  const char* id_c = lua_isnoneornil(L, 2) ? nullptr : luaL_checklstring(L, 2, &id_len);
  std::string_view type(type_c, type_len), id(id_c ? id_c : "", id_len);
  int64_t window = WindowMs(L, 3);
  int64_t n = 0;
  if (const EventHistory* h = HistoryOf(sb->request))
    n = h->Count(type, id, SinceMs(sb->request->now_ms, window));
  lua_pushinteger(L, n);
  return 1;
}

// history.last(event, id_or_nil) -> seconds since the newest such event, or nil.
int HistoryLast(lua_State* L) {
  Sandbox* sb = SandboxOf(L);
  size_t type_len = 0, id_len = 0;
  const char* type_c = luaL_checklstring(L, 1, &type_len);
  const char* id_c = lua_isnoneornil(L, 2) ? nullptr : luaL_checklstring(L, 2, &id_len);
  std::string_view type(type_c, type_len), id(id_c ? id_c : "", id_len);
  if (const EventHistory* h = HistoryOf(sb->request)) {
    if (std::optional<int64_t> ts = h->Newest(type, id)) {
      lua_pushnumber(L, static_cast<double>(sb->request->now_ms - *ts) / 1000.0);
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
// window was of that item or of an item in that category (by the catalog).
int HistoryBought(lua_State* L) {
  Sandbox* sb = SandboxOf(L);
  size_t what_len = 0;
  const char* what_c = luaL_checklstring(L, 1, &what_len);
  const std::string_view what(what_c, what_len);
  int64_t window = WindowMs(L, 2);
  const EventHistory* h = HistoryOf(sb->request);
  bool found = false;
  if (h) {
    const int64_t since = SinceMs(sb->request->now_ms, window);
    std::optional<int64_t> newest = h->NewestItem("purchase", what);
    found = newest && *newest >= since;
    // One captured reference: std::function keeps it without allocating.
    struct {
      const Catalog* cat;
      std::string_view what;
      int64_t since;
      std::string item;
      bool found = false;
    } ask{CatalogOf(L), what, since, {}};
    if (!found && ask.cat)
      h->ForEachItem("purchase", [&ask](std::string_view id, int64_t ts) {
        if (ts < ask.since) return true;
        ask.item.assign(id);
        auto it = ask.cat->item_index.find(ask.item);
        ask.found =
            it != ask.cat->item_index.end() && ask.cat->items[it->second].category == ask.what;
        return !ask.found;
      });
    found = found || ask.found;
  }
  lua_pushboolean(L, found);
  return 1;
}

}  // namespace

int64_t WindowMs(lua_State* L, int idx) {
  if (lua_isnoneornil(L, idx)) return std::numeric_limits<int64_t>::max();
  // Past int64 milliseconds (or NaN) is the whole history, not undefined.
  auto clamped = [](double ms) {
    return ms < 9.2e18 ? static_cast<int64_t>(ms) : std::numeric_limits<int64_t>::max();
  };
  if (lua_type(L, idx) == LUA_TNUMBER) return clamped(lua_tonumber(L, idx) * 1000);
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
  return clamped(n * static_cast<double>(unit));
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
