#include "rules/libs.h"

#include <lua.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "rules/marshal.h"
#include "rules/pattern.h"
#include "rules/sandbox.h"

namespace tailor::rules_internal {

namespace {

constexpr double kBytesPerStep = 32;

enum Cost : int {
  kBytes,   // 1 + the string arguments' bytes / kBytesPerStep
  kRep,     // string.rep(s, n[, sep]): + n repetitions
  kMove,    // table.move(a, f, e, ...): + e - f + 1 elements
  kConcat,  // table.concat(t, sep, i, j): + j - i + 1 elements
  kUnpack,  // table.unpack(t, i, j): + j - i + 1 values
  kLen,     // table.insert / table.remove: + #t elements shifted
  kSort,    // table.sort: + n log2 n comparisons
};

// Argument idx as the library will read it (1e12 is an integer to it), or def.
double IntArg(lua_State* L, int idx, double def) {
  int ok = 0;
  lua_Integer v = lua_tointegerx(L, idx, &ok);
  return ok ? static_cast<double>(v) : def;
}

double Span(lua_State* L, int i_arg, int j_arg) {
  double len = lua_istable(L, 1) ? static_cast<double>(lua_rawlen(L, 1)) : 0;
  double i = IntArg(L, i_arg, 1), j = IntArg(L, j_arg, len);
  return j >= i ? j - i + 1 : 0;
}

double CostOf(lua_State* L, Cost kind) {
  double bytes = 0;
  for (int i = 1, n = lua_gettop(L); i <= n; ++i)
    if (lua_type(L, i) == LUA_TSTRING) bytes += static_cast<double>(lua_rawlen(L, i));
  double cost = 1 + bytes / kBytesPerStep;
  switch (kind) {
    case kBytes:
      break;
    case kRep:
      cost += std::max(0.0, IntArg(L, 2, 0)) * (1 + bytes / kBytesPerStep);
      break;
    case kMove:
      cost += std::max(0.0, IntArg(L, 3, 0) - IntArg(L, 2, 1) + 1);
      break;
    case kConcat:
      cost += Span(L, 3, 4);
      break;
    case kUnpack:
      cost += Span(L, 2, 3);
      break;
    case kLen:
      cost += lua_istable(L, 1) ? static_cast<double>(lua_rawlen(L, 1)) : 0;
      break;
    case kSort: {
      double n = lua_istable(L, 1) ? static_cast<double>(lua_rawlen(L, 1)) : 0;
      cost += n > 1 ? n * std::log2(n) : 0;
      break;
    }
  }
  return cost;
}

// upvalue 1: the library's own function; upvalue 2: its Cost.
int Charged(lua_State* L) {
  double cost = CostOf(L, static_cast<Cost>(lua_tointeger(L, lua_upvalueindex(2))));
  // Past any budget anyway: clamp so the sum cannot overflow.
  Charge(L, cost > 1e15 ? static_cast<int64_t>(1e15) : static_cast<int64_t>(cost));
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

Cost CostFor(const char* lib, const char* name) {
  if (std::strcmp(lib, LUA_STRLIBNAME) == 0 && std::strcmp(name, "rep") == 0) return kRep;
  if (std::strcmp(lib, LUA_TABLIBNAME) != 0) return kBytes;
  if (std::strcmp(name, "move") == 0) return kMove;
  if (std::strcmp(name, "concat") == 0) return kConcat;
  if (std::strcmp(name, "unpack") == 0) return kUnpack;
  if (std::strcmp(name, "insert") == 0 || std::strcmp(name, "remove") == 0) return kLen;
  if (std::strcmp(name, "sort") == 0) return kSort;
  return kBytes;
}

lua_CFunction OwnStringFunction(const char* name) {
  if (std::strcmp(name, "find") == 0) return PatternFind;
  if (std::strcmp(name, "match") == 0) return PatternMatch;
  if (std::strcmp(name, "gmatch") == 0) return PatternGmatch;
  if (std::strcmp(name, "gsub") == 0) return PatternGsub;
  return nullptr;
}

// Builds the bounded copy of globals[lib] and leaves it on the stack; the
// original stays in the registry's loaded-modules table (so argument errors
// still name "string.rep"), unreachable from rules.
void PushBounded(lua_State* L, const char* lib) {
  const bool is_string = std::strcmp(lib, LUA_STRLIBNAME) == 0;
  const bool charge = std::strcmp(lib, LUA_MATHLIBNAME) != 0;  // math is O(1)
  lua_getfield(L, -1, lib);
  lua_newtable(L);
  lua_pushnil(L);
  while (lua_next(L, -3)) {  // stack: original, bounded, key, value
    const char* name = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
    if (is_string && std::strcmp(name, "dump") == 0) {
      lua_pop(L, 1);
      continue;
    }
    if (lua_CFunction own = is_string ? OwnStringFunction(name) : nullptr) {
      lua_pop(L, 1);
      lua_pushcfunction(L, own);
    } else if (charge && lua_iscfunction(L, -1)) {
      lua_pushinteger(L, CostFor(lib, name));
      lua_pushcclosure(L, Charged, 2);
    }
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, -4);
  }
  lua_remove(L, -2);
}

}  // namespace

void FreezeLibraries(lua_State* L) {
  for (const char* lib : {LUA_STRLIBNAME, LUA_TABLIBNAME, LUA_UTF8LIBNAME, LUA_MATHLIBNAME}) {
    PushBounded(L, lib);
    if (std::strcmp(lib, LUA_STRLIBNAME) == 0) {
      // ("x"):find(...) reads the string metatable's __index.
      lua_pushliteral(L, "");
      if (lua_getmetatable(L, -1)) {
        lua_pushvalue(L, -3);
        lua_setfield(L, -2, "__index");
        lua_pushliteral(L, "locked");
        lua_setfield(L, -2, "__metatable");
        lua_pop(L, 1);
      }
      lua_pop(L, 1);
    }
    PushReadOnly(L, nullptr);
    lua_setfield(L, -2, lib);
  }
  lua_getfield(L, -1, "history");
  PushReadOnly(L, nullptr);
  lua_setfield(L, -2, "history");
}

}  // namespace tailor::rules_internal
