#include "rules/rules.h"

#include "tailor/plugin.h"

#include <lua.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string_view>

#include "common/log.h"
#include "common/time.h"
#include "decision/engine.h"
#include "store/store.h"

namespace tailor {

// history.bought(item_or_category, window) -> true when a purchase in the
// window was of that item or of an item in that category.
int HistoryBought(lua_State* L);

namespace {

using nlohmann::json;

constexpr int kHookEvery = 1000;    // instructions between budget checks
constexpr size_t kMaxReason = 200;  // bytes of a rule's reason kept

// ---------------------------------------------------------------------------
// Sandbox state shared by the throwaway (load) and per-worker states.

struct Sandbox {
  // Memory accounting for the custom allocator.
  size_t used = 0;
  size_t limit = 0;  // whole state
  size_t call_limit = std::numeric_limits<size_t>::max();
  bool memory_hit = false;
  // Budget of the call in progress.
  int64_t instructions = 0;
  int64_t max_instructions = 0;
  int64_t deadline_ns = 0;  // 0 until the first hook check of the call
  int64_t time_ns = 0;
  bool aborted = false;
  bool hooked = false;   // the count hook is installed at kHookEvery
  bool loading = false;  // `rule {}` is only callable while loading files
  // Declared rules, in order (filled while loading).
  struct Declared {
    RuleInfo info;
    int eligible = LUA_NOREF, score = LUA_NOREF, finalize = LUA_NOREF;
  };
  std::vector<Declared> declared;
  std::vector<std::string> load_errors;
  std::string current_file;
  // Request state for the helpers.
  const RuleRequest* request = nullptr;
  size_t candidate = 0;
  uint64_t generation = 0;  // bumped per request; stale proxies are revoked
};

Sandbox* SandboxOf(lua_State* L) { return *static_cast<Sandbox**>(lua_getextraspace(L)); }

// Fails only growth, never a shrink; osize is not a size when ptr is NULL.
void* Alloc(void* ud, void* ptr, size_t osize, size_t nsize) {
  auto* sb = static_cast<Sandbox*>(ud);
  size_t old = ptr ? osize : 0;
  if (nsize == 0) {
    std::free(ptr);
    sb->used -= old;
    return nullptr;
  }
  if (nsize > old) {
    size_t grow = nsize - old;
    if (sb->used + grow > sb->limit || sb->used + grow > sb->call_limit) {
      sb->memory_hit = true;
      return nullptr;
    }
  }
  void* p = std::realloc(ptr, nsize);
  if (!p) return nullptr;
  sb->used = sb->used - old + nsize;
  return p;
}

// The deadline check. Once tripped it fires on every instruction, so a pcall
// inside the rule cannot swallow the abort and carry on.
void Hook(lua_State* L, lua_Debug*) {
  Sandbox* sb = SandboxOf(L);
  sb->instructions += sb->aborted ? 1 : kHookEvery;
  // The clock starts at the first check: most hook calls finish before it,
  // and reading the clock on every call would cost more than the rule.
  int64_t now = mono_ns();
  if (sb->deadline_ns == 0) sb->deadline_ns = now + sb->time_ns;
  if (!sb->aborted && (sb->instructions > sb->max_instructions || now > sb->deadline_ns)) {
    sb->aborted = true;
    lua_sethook(L, Hook, LUA_MASKCOUNT, 1);
  }
  if (sb->aborted) luaL_error(L, "rule exceeded its budget");
}

// __index / __newindex of a file's environment: undeclared globals are errors.
int EnvIndex(lua_State* L) {
  // upvalue 1: the shared globals table
  lua_pushvalue(L, 2);
  lua_rawget(L, lua_upvalueindex(1));
  if (!lua_isnil(L, -1)) return 1;
  return luaL_error(L, "undeclared global '%s'", lua_tostring(L, 2) ? lua_tostring(L, 2) : "?");
}

int EnvNewIndex(lua_State* L) {
  return luaL_error(L, "assignment to undeclared global '%s' (use local)",
                    lua_tostring(L, 2) ? lua_tostring(L, 2) : "?");
}

int ReadOnly(lua_State* L) {
  return luaL_error(L, "attempt to modify read-only field '%s'",
                    lua_tostring(L, 2) ? lua_tostring(L, 2) : "?");
}

int Revoked(lua_State* L) {
  return luaL_error(L, "a request's table was used after that request ended (stashed handle)");
}

std::string ReasonOf(lua_State* L, int idx) {
  size_t len = 0;
  const char* s = lua_tolstring(L, idx, &len);
  if (!s) return "";
  return std::string(s, std::min(len, kMaxReason));
}

// rule { name = ..., description = ..., eligible = fn, score = fn, finalize = fn }
int DeclareRule(lua_State* L) {
  Sandbox* sb = SandboxOf(L);
  if (!sb->loading) return luaL_error(L, "rule{} can only be declared when the file loads");
  luaL_checktype(L, 1, LUA_TTABLE);
  static const char* const kKeys[] = {"name", "description", "eligible", "score", "finalize"};
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    lua_pop(L, 1);
    const char* k = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : nullptr;
    bool known = false;
    for (const char* key : kKeys) known = known || (k && std::strcmp(k, key) == 0);
    if (!known)
      return luaL_error(L,
                        "rule has unknown key '%s' (valid: name, description, eligible, score, "
                        "finalize)",
                        k ? k : luaL_typename(L, -1));
  }
  Sandbox::Declared d;
  lua_getfield(L, 1, "name");
  if (lua_type(L, -1) != LUA_TSTRING || lua_rawlen(L, -1) == 0)
    return luaL_error(L, "rule needs a name (a non-empty string)");
  d.info.name = lua_tostring(L, -1);
  lua_pop(L, 1);
  for (const auto& other : sb->declared)
    if (other.info.name == d.info.name)
      return luaL_error(L, "rule '%s' is already declared at %s:%d", d.info.name.c_str(),
                        other.info.file.c_str(), other.info.line);
  lua_getfield(L, 1, "description");
  if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING)
    return luaL_error(L, "rule '%s': description must be a string", d.info.name.c_str());
  if (lua_type(L, -1) == LUA_TSTRING) d.info.description = lua_tostring(L, -1);
  lua_pop(L, 1);
  int* refs[] = {&d.eligible, &d.score, &d.finalize};
  bool* has[] = {&d.info.eligible, &d.info.score, &d.info.finalize};
  const char* hooks[] = {"eligible", "score", "finalize"};
  for (int i = 0; i < 3; ++i) {
    lua_getfield(L, 1, hooks[i]);
    if (lua_isnil(L, -1)) {
      lua_pop(L, 1);
      continue;
    }
    if (!lua_isfunction(L, -1))
      return luaL_error(L, "rule '%s': %s must be a function", d.info.name.c_str(), hooks[i]);
    *refs[i] = luaL_ref(L, LUA_REGISTRYINDEX);
    *has[i] = true;
  }
  if (!d.info.eligible && !d.info.score && !d.info.finalize)
    return luaL_error(L, "rule '%s' has no hook (eligible, score or finalize)",
                      d.info.name.c_str());
  lua_Debug ar;
  if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "l", &ar)) d.info.line = ar.currentline;
  d.info.file = sb->current_file;
  sb->declared.push_back(std::move(d));
  return 0;
}

// --- helpers for rules ------------------------------------------------------

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

void OpenSandboxLibs(lua_State* L) {
  static const luaL_Reg kLibs[] = {{LUA_GNAME, luaopen_base},
                                   {LUA_STRLIBNAME, luaopen_string},
                                   {LUA_TABLIBNAME, luaopen_table},
                                   {LUA_MATHLIBNAME, luaopen_math},
                                   {LUA_UTF8LIBNAME, luaopen_utf8}};
  for (const auto& lib : kLibs) {
    luaL_requiref(L, lib.name, lib.func, 1);
    lua_pop(L, 1);
  }
  lua_pushglobaltable(L);
  for (const char* banned :
       {"load", "loadfile", "dofile", "require", "collectgarbage", "print", "rawset", "rawequal",
        "rawget", "rawlen", "setmetatable", "getmetatable"}) {
    lua_pushnil(L);
    lua_setfield(L, -2, banned);
  }
  // A getmetatable that cannot reach the string metatable (shared by all rules).
  lua_getfield(L, -1, "string");
  lua_pushnil(L);
  lua_setfield(L, -2, "dump");
  lua_pop(L, 1);
  lua_pushcfunction(L, DeclareRule);
  lua_setfield(L, -2, "rule");
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
  lua_pop(L, 1);
  // Protect the string metatable: `("").x = ...` tricks cannot reach it.
  lua_pushliteral(L, "");
  if (lua_getmetatable(L, -1)) {
    lua_pushliteral(L, "locked");
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

lua_State* NewState(Sandbox* sb) {
  lua_State* L = lua_newstate(Alloc, sb);
  if (!L) return nullptr;
  *static_cast<Sandbox**>(lua_getextraspace(L)) = sb;
  OpenSandboxLibs(L);
  return L;
}

// Pushes a per-file environment: reads fall through to the globals, unknown
// names and any assignment are errors.
void PushEnv(lua_State* L) {
  lua_newtable(L);
  lua_newtable(L);
  lua_pushglobaltable(L);
  lua_pushcclosure(L, EnvIndex, 1);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, EnvNewIndex);
  lua_setfield(L, -2, "__newindex");
  lua_pushliteral(L, "locked");
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, -2);
}

void Arm(Sandbox* sb, lua_State* L, const RuleLimits& lim) {
  sb->instructions = 0;
  sb->max_instructions = lim.instructions;
  sb->deadline_ns = 0;
  sb->time_ns = lim.time_us * 1000;
  sb->memory_hit = false;
  sb->call_limit = sb->used + lim.call_memory;
  // The hook stays installed between calls (only Lua code runs it); it is
  // reinstalled after an abort switched it to every instruction.
  if (!sb->hooked || sb->aborted) {
    lua_sethook(L, Hook, LUA_MASKCOUNT, kHookEvery);
    sb->hooked = true;
  }
  sb->aborted = false;
}

// Why a protected call failed: "timeout", "memory" or "error".
const char* Disarm(Sandbox* sb, lua_State* L, int rc) {
  (void)L;
  sb->call_limit = std::numeric_limits<size_t>::max();
  if (rc == LUA_OK) return nullptr;
  if (sb->aborted) return "timeout";
  if (rc == LUA_ERRMEM || sb->memory_hit) return "memory";
  return "error";
}

// Loads and runs every source in a state with the sandbox; declares rules.
bool LoadSources(lua_State* L, Sandbox* sb,
                 const std::vector<std::pair<std::string, std::string>>& sources,
                 const RuleLimits& lim, std::vector<std::string>* errors) {
  bool ok = true;
  for (const auto& [file, text] : sources) {
    sb->current_file = file;
    std::string chunk = "@" + file;
    // Text only: precompiled bytecode can crash the VM.
    if (luaL_loadbufferx(L, text.data(), text.size(), chunk.c_str(), "t") != LUA_OK) {
      errors->push_back(std::string(lua_tostring(L, -1)));
      lua_pop(L, 1);
      ok = false;
      continue;
    }
    PushEnv(L);
    if (!lua_setupvalue(L, -2, 1)) lua_pop(L, 1);
    sb->loading = true;
    Arm(sb, L, lim);
    int rc = lua_pcall(L, 0, 0, 0);
    const char* why = Disarm(sb, L, rc);
    sb->loading = false;
    if (why) {
      std::string msg = lua_tostring(L, -1) ? lua_tostring(L, -1) : "error";
      lua_pop(L, 1);
      if (std::strcmp(why, "timeout") == 0) msg = file + ": loading took too long: " + msg;
      if (std::strcmp(why, "memory") == 0) msg = file + ": loading used too much memory";
      errors->push_back(msg);
      ok = false;
    }
  }
  return ok;
}

std::vector<std::pair<std::string, std::string>> ReadDir(const std::string& dir,
                                                         std::vector<std::string>* errors) {
  std::vector<std::pair<std::string, std::string>> out;
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    errors->push_back(dir + ":1:1: rules directory does not exist");
    return out;
  }
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec))
    if (e.path().extension() == ".lua") files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    out.emplace_back(f, ss.str());
  }
  return out;
}

// JSON -> read-only Lua value (tables become proxies).
void PushJson(lua_State* L, const json& j, std::vector<int>* proxies);

// __pairs and __len of a proxy: iterate / measure the real table (upvalue 1).
int ProxyPairs(lua_State* L) {
  lua_getglobal(L, "next");
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushnil(L);
  return 3;
}

int ProxyLen(lua_State* L) {
  lua_pushinteger(L, static_cast<lua_Integer>(lua_rawlen(L, lua_upvalueindex(1))));
  return 1;
}

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

void PushJson(lua_State* L, const json& j, std::vector<int>* proxies) {
  switch (j.type()) {
    case json::value_t::object:
      lua_createtable(L, 0, static_cast<int>(j.size()));
      for (auto it = j.begin(); it != j.end(); ++it) {
        PushJson(L, it.value(), proxies);
        lua_setfield(L, -2, it.key().c_str());
      }
      PushReadOnly(L, proxies);
      break;
    case json::value_t::array: {
      lua_createtable(L, static_cast<int>(j.size()), 0);
      lua_Integer i = 1;
      for (const auto& e : j) {
        PushJson(L, e, proxies);
        lua_rawseti(L, -2, i++);
      }
      PushReadOnly(L, proxies);
      break;
    }
    case json::value_t::string:
      lua_pushstring(L, j.get_ref<const std::string&>().c_str());
      break;
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

void SetString(lua_State* L, const char* k, const std::string& v) {
  if (v.empty()) return;
  lua_pushlstring(L, v.data(), v.size());
  lua_setfield(L, -2, k);
}

}  // namespace

// --- RuleSet ----------------------------------------------------------------

std::shared_ptr<const RuleSet> RuleSet::Load(const std::string& dir, const RuleLimits& limits,
                                             std::vector<std::string>* errors) {
  size_t before = errors->size();
  auto sources = ReadDir(dir, errors);
  if (errors->size() != before) return nullptr;
  return FromSources(sources, limits, errors);
}

std::shared_ptr<const RuleSet> RuleSet::FromSources(
    const std::vector<std::pair<std::string, std::string>>& sources, const RuleLimits& limits,
    std::vector<std::string>* errors) {
  Sandbox sb;
  sb.limit = limits.state_memory;
  lua_State* L = NewState(&sb);
  if (!L) {
    errors->push_back("cannot create a Lua state");
    return nullptr;
  }
  bool ok = LoadSources(L, &sb, sources, limits, errors);
  auto set = std::shared_ptr<RuleSet>(new RuleSet());
  set->sources_ = sources;
  set->limits_ = limits;
  for (const auto& d : sb.declared) set->rules_.push_back(d.info);
  set->counters_ = std::make_unique<RuleCounters[]>(set->rules_.size());
  lua_close(L);
  if (!ok) return nullptr;
  return set;
}

// --- RuleRuntime ------------------------------------------------------------

struct RuleRuntime::Impl {
  Sandbox sb;
  int offers_ref = LUA_NOREF;  // array of read-only offer tables, by catalog index
  int items_ref = LUA_NOREF;   // lazily filled cache of item tables
  int customer_ref = LUA_NOREF, ctx_ref = LUA_NOREF;
  std::vector<int> request_proxies;  // revoked at End()
  std::vector<size_t> eligible_rules, score_rules, finalize_rules;
};

namespace {

// history.bought needs the catalog to map items to categories.
const Catalog* CatalogOf(lua_State* L) {
  lua_getfield(L, LUA_REGISTRYINDEX, "tailor.catalog");
  auto* c = static_cast<const Catalog*>(lua_touserdata(L, -1));
  lua_pop(L, 1);
  return c;
}

}  // namespace

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

RuleRuntime::RuleRuntime(std::shared_ptr<const RuleSet> rules,
                         std::shared_ptr<const Catalog> catalog)
    : impl_(std::make_unique<Impl>()), rules_(std::move(rules)), catalog_(std::move(catalog)) {
  Sandbox& sb = impl_->sb;
  sb.limit = rules_->limits().state_memory;
  L_ = NewState(&sb);
  if (!L_) return;
  lua_pushlightuserdata(L_, const_cast<Catalog*>(catalog_.get()));
  lua_setfield(L_, LUA_REGISTRYINDEX, "tailor.catalog");
  std::vector<std::string> errors;
  if (!LoadSources(L_, &sb, rules_->sources(), rules_->limits(), &errors) ||
      sb.declared.size() != rules_->rules().size()) {
    // The set loaded in the check state; failing here means the environment
    // differs (e.g. memory). Serve without rules rather than half of them.
    for (const auto& e : errors) log::Error("rules", e);
    lua_close(L_);
    L_ = nullptr;
    return;
  }
  for (size_t i = 0; i < sb.declared.size(); ++i) {
    if (sb.declared[i].info.eligible) impl_->eligible_rules.push_back(i);
    if (sb.declared[i].info.score) impl_->score_rules.push_back(i);
    if (sb.declared[i].info.finalize) impl_->finalize_rules.push_back(i);
  }
  // Offer tables once per state: the per-candidate cost is then one call.
  lua_createtable(L_, static_cast<int>(catalog_->offers.size()), 0);
  lua_Integer idx = 1;
  for (const Offer& o : catalog_->offers) {
    lua_createtable(L_, 0, 12);
    lua_pushliteral(L_, "offer");
    lua_setfield(L_, -2, "kind");
    SetString(L_, "id", o.id);
    SetString(L_, "name", o.name);
    SetString(L_, "item", o.item);
    SetString(L_, "category", o.category);
    if (o.category.empty() && !o.item.empty())
      if (auto it = catalog_->item_index.find(o.item); it != catalog_->item_index.end())
        SetString(L_, "category", catalog_->items[it->second].category);
    SetString(L_, "content", o.content);
    lua_pushnumber(L_, o.value);
    lua_setfield(L_, -2, "value");
    json tags = o.tags;
    PushJson(L_, tags, nullptr);
    lua_setfield(L_, -2, "tags");
    PushJson(L_, json(o.channels), nullptr);
    lua_setfield(L_, -2, "channels");
    if (o.discount) {
      lua_pushnumber(L_, o.discount->first);
      lua_setfield(L_, -2, "discount_min");
      lua_pushnumber(L_, o.discount->second);
      lua_setfield(L_, -2, "discount_max");
    }
    PushReadOnly(L_, nullptr);
    lua_rawseti(L_, -2, idx++);
  }
  impl_->offers_ref = luaL_ref(L_, LUA_REGISTRYINDEX);
  lua_newtable(L_);
  impl_->items_ref = luaL_ref(L_, LUA_REGISTRYINDEX);
  lua_gc(L_, LUA_GCCOLLECT);
  // What a request allocates dies with it, while the catalog tables live as
  // long as the state: the generational collector's cheap minor collections
  // fit that, where an incremental step per request kept re-marking the
  // catalog (an eighth of a recs decision).
  lua_gc(L_, LUA_GCGEN, 0, 0);
}

RuleRuntime::~RuleRuntime() {
  if (L_) lua_close(L_);
}

size_t RuleRuntime::memory_used() const { return impl_->sb.used; }

namespace {

// Adds facts[part]'s members to the table on top of the stack, leaving keys
// the table already has (the request's own data wins).
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

}  // namespace

void RuleRuntime::Begin(const RuleRequest& req) {
  if (!L_) return;
  Sandbox& sb = impl_->sb;
  sb.request = &req;
  ++sb.generation;
  // customer: id, known, personalised, attributes (also flattened), consent, counts
  lua_createtable(L_, 0, 8);
  SetString(L_, "id", req.personalised ? req.customer_id : std::string());
  lua_pushboolean(L_, req.profile && req.profile->known);
  lua_setfield(L_, -2, "known");
  lua_pushboolean(L_, req.personalised);
  lua_setfield(L_, -2, "personalised");
  if (req.profile && req.personalised) {
    json attrs = json::parse(req.profile->customer.attributes_json, nullptr, false);
    if (attrs.is_object()) {
      for (auto it = attrs.begin(); it != attrs.end(); ++it) {
        if (it.key() == "id" || it.key() == "known") continue;
        PushJson(L_, it.value(), &impl_->request_proxies);
        lua_setfield(L_, -2, it.key().c_str());
      }
      PushJson(L_, attrs, &impl_->request_proxies);
      lua_setfield(L_, -2, "attributes");
    }
    json consent = json::parse(req.profile->customer.consent_json, nullptr, false);
    PushJson(L_, consent.is_object() ? consent : json::object(), &impl_->request_proxies);
    lua_setfield(L_, -2, "consent");
    PushJson(L_, json(req.profile->counts), &impl_->request_proxies);
    lua_setfield(L_, -2, "counts");
  } else {
    PushJson(L_, json::object(), &impl_->request_proxies);
    lua_setfield(L_, -2, "consent");
    PushJson(L_, json::object(), &impl_->request_proxies);
    lua_setfield(L_, -2, "counts");
  }
  MergeFacts(L_, req.facts, "customer", &impl_->request_proxies);
  PushReadOnly(L_, &impl_->request_proxies);
  impl_->customer_ref = luaL_ref(L_, LUA_REGISTRYINDEX);

  // ctx: channel, placement, hour, weekday, now, and every context key.
  json context = json::parse(req.context_json, nullptr, false);
  if (!context.is_object()) context = json::object();
  lua_createtable(L_, 0, 8);
  for (auto it = context.begin(); it != context.end(); ++it) {
    PushJson(L_, it.value(), &impl_->request_proxies);
    lua_setfield(L_, -2, it.key().c_str());
  }
  SetString(L_, "channel", req.channel);
  SetString(L_, "placement", req.placement);
  int64_t secs = req.now_ms / 1000;
  if (!context.contains("hour")) {
    lua_pushinteger(L_, (secs / 3600) % 24);
    lua_setfield(L_, -2, "hour");
  }
  if (!context.contains("weekday")) {
    lua_pushinteger(L_, ((secs / 86400) + 4) % 7);  // 0 = Sunday; 1970-01-01 was a Thursday
    lua_setfield(L_, -2, "weekday");
  }
  lua_pushinteger(L_, secs);
  lua_setfield(L_, -2, "now");
  MergeFacts(L_, req.facts, "context", &impl_->request_proxies);
  PushReadOnly(L_, &impl_->request_proxies);
  impl_->ctx_ref = luaL_ref(L_, LUA_REGISTRYINDEX);
}

namespace {

// Pushes a candidate's read-only table (offer, or item from the lazy cache).
void PushCandidate(lua_State* L, int offers_ref, int items_ref, const Catalog& cat, int offer_index,
                   int item_index) {
  if (offer_index >= 0) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, offers_ref);
    lua_rawgeti(L, -1, offer_index + 1);
    lua_remove(L, -2);
    return;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, items_ref);
  if (lua_rawgeti(L, -1, item_index + 1) != LUA_TNIL) {
    lua_remove(L, -2);
    return;
  }
  lua_pop(L, 1);
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
  json attrs = json::parse(it.attributes_json, nullptr, false);
  if (attrs.is_object() && attrs.contains("tags") && attrs["tags"].is_object())
    PushJson(L, attrs["tags"], nullptr);
  else
    PushJson(L, json::object(), nullptr);
  lua_setfield(L, -2, "tags");
  PushReadOnly(L, nullptr);
  lua_pushvalue(L, -1);
  lua_rawseti(L, -3, item_index + 1);
  lua_remove(L, -2);
}

}  // namespace

RuleEffect RuleRuntime::Evaluate(size_t candidate, int offer_index, int item_index, double p) {
  RuleEffect fx;
  if (!L_) return fx;
  Sandbox& sb = impl_->sb;
  sb.candidate = candidate;
  const RuleLimits& lim = rules_->limits();
  PushCandidate(L_, impl_->offers_ref, impl_->items_ref, *catalog_, offer_index, item_index);
  int offer = lua_gettop(L_);

  auto fail = [&](size_t r, const char* hook, const char* why, const std::string& msg) {
    RuleCounters& c = rules_->counters(r);
    const std::string& name = rules_->rules()[r].name;
    if (std::strcmp(why, "timeout") == 0)
      c.timeouts.fetch_add(1, std::memory_order_relaxed);
    else if (std::strcmp(why, "memory") == 0)
      c.memory.fetch_add(1, std::memory_order_relaxed);
    else
      c.errors.fetch_add(1, std::memory_order_relaxed);
    std::string line = name + ": " + hook + " " + why + ": " + msg + " (effect dropped)";
    log::Warn("rule:" + name, line);
    fx.reasons.push_back(line);
    if (std::strcmp(why, "memory") == 0) lua_gc(L_, LUA_GCCOLLECT);
  };

  for (size_t r : impl_->eligible_rules) {
    rules_->counters(r).calls.fetch_add(1, std::memory_order_relaxed);
    lua_rawgeti(L_, LUA_REGISTRYINDEX, impl_->sb.declared[r].eligible);
    lua_pushvalue(L_, offer);
    lua_rawgeti(L_, LUA_REGISTRYINDEX, impl_->customer_ref);
    lua_rawgeti(L_, LUA_REGISTRYINDEX, impl_->ctx_ref);
    Arm(&sb, L_, lim);
    int rc = lua_pcall(L_, 3, 2, 0);
    if (const char* why = Disarm(&sb, L_, rc)) {
      fail(r, "eligible", why, lua_tostring(L_, -1) ? lua_tostring(L_, -1) : "error");
      lua_pop(L_, 1);
      continue;
    }
    int t = lua_type(L_, -2);
    if (t == LUA_TBOOLEAN && !lua_toboolean(L_, -2)) {
      std::string reason = ReasonOf(L_, -1);
      rules_->counters(r).vetoes.fetch_add(1, std::memory_order_relaxed);
      fx.vetoed = true;
      fx.reasons.push_back(rules_->rules()[r].name + ": " +
                           (reason.empty() ? "not eligible" : reason));
      lua_pop(L_, 2);
      break;
    }
    if (t != LUA_TNIL && t != LUA_TBOOLEAN)
      fail(r, "eligible", "error",
           std::string("must return true, false[, reason] or nil; got ") + lua_typename(L_, t));
    lua_pop(L_, 2);
  }
  if (!fx.vetoed) {
    for (size_t r : impl_->score_rules) {
      rules_->counters(r).calls.fetch_add(1, std::memory_order_relaxed);
      lua_rawgeti(L_, LUA_REGISTRYINDEX, impl_->sb.declared[r].score);
      lua_pushvalue(L_, offer);
      lua_pushnumber(L_, p);
      lua_rawgeti(L_, LUA_REGISTRYINDEX, impl_->customer_ref);
      lua_rawgeti(L_, LUA_REGISTRYINDEX, impl_->ctx_ref);
      Arm(&sb, L_, lim);
      int rc = lua_pcall(L_, 4, 2, 0);
      if (const char* why = Disarm(&sb, L_, rc)) {
        fail(r, "score", why, lua_tostring(L_, -1) ? lua_tostring(L_, -1) : "error");
        lua_pop(L_, 1);
        continue;
      }
      int t = lua_type(L_, -2);
      if (t == LUA_TNUMBER) {
        double f = lua_tonumber(L_, -2);
        if (!std::isfinite(f) || f < 0 || f > 100) {
          fail(r, "score", "error", "lever must be a number in [0, 100], got " + std::to_string(f));
        } else if (f != 1.0) {
          fx.levers *= f;
          rules_->counters(r).levers.fetch_add(1, std::memory_order_relaxed);
          char buf[32];
          std::snprintf(buf, sizeof buf, "x%.3g", f);
          std::string reason = ReasonOf(L_, -1);
          fx.reasons.push_back(rules_->rules()[r].name + ": " + buf +
                               (reason.empty() ? "" : " " + reason));
        }
      } else if (t != LUA_TNIL) {
        fail(r, "score", "error",
             std::string("must return a number[, reason] or nil; got ") + lua_typename(L_, t));
      }
      lua_pop(L_, 2);
    }
  }
  lua_settop(L_, offer - 1);
  return fx;
}

void RuleRuntime::Finalize(std::vector<Ranked>* ranked, std::vector<std::string>* notes) {
  if (!L_ || impl_->finalize_rules.empty()) return;
  Sandbox& sb = impl_->sb;
  for (size_t r : impl_->finalize_rules) {
    const std::string& name = rules_->rules()[r].name;
    rules_->counters(r).calls.fetch_add(1, std::memory_order_relaxed);
    lua_rawgeti(L_, LUA_REGISTRYINDEX, impl_->sb.declared[r].finalize);
    lua_createtable(L_, static_cast<int>(ranked->size()), 0);
    for (size_t i = 0; i < ranked->size(); ++i) {
      lua_createtable(L_, 0, 3);
      SetString(L_, "id", (*ranked)[i].id);
      SetString(L_, "category", (*ranked)[i].category);
      lua_pushnumber(L_, (*ranked)[i].priority);
      lua_setfield(L_, -2, "priority");
      lua_pushinteger(L_, static_cast<lua_Integer>(i + 1));
      lua_setfield(L_, -2, "rank");
      lua_rawseti(L_, -2, static_cast<lua_Integer>(i + 1));
    }
    lua_rawgeti(L_, LUA_REGISTRYINDEX, impl_->customer_ref);
    lua_rawgeti(L_, LUA_REGISTRYINDEX, impl_->ctx_ref);
    Arm(&sb, L_, rules_->limits());
    int rc = lua_pcall(L_, 3, 2, 0);
    const char* why = Disarm(&sb, L_, rc);
    std::string error;
    std::vector<Ranked> out;
    if (why) {
      error = std::string(why) + ": " + (lua_tostring(L_, -1) ? lua_tostring(L_, -1) : "error");
      lua_pop(L_, 1);
    } else {
      if (lua_istable(L_, -2)) {
        std::map<std::string, size_t> pos;
        for (size_t i = 0; i < ranked->size(); ++i) pos[(*ranked)[i].id] = i;
        lua_Integer n = static_cast<lua_Integer>(luaL_len(L_, -2));
        for (lua_Integer i = 1; i <= n && error.empty(); ++i) {
          lua_geti(L_, -2, i);
          std::string id;
          if (lua_type(L_, -1) == LUA_TSTRING) id = lua_tostring(L_, -1);
          if (lua_istable(L_, -1)) {
            lua_getfield(L_, -1, "id");
            if (lua_type(L_, -1) == LUA_TSTRING) id = lua_tostring(L_, -1);
            lua_pop(L_, 1);
          }
          lua_pop(L_, 1);
          auto it = pos.find(id);
          if (it == pos.end())
            error = "error: returned '" + id + "', which is not in the ranked list";
          else
            out.push_back((*ranked)[it->second]);
        }
        if (error.empty() && static_cast<size_t>(n) != ranked->size()) {
          notes->push_back(name + ": kept " + std::to_string(out.size()) + " of " +
                           std::to_string(ranked->size()) +
                           (lua_isstring(L_, -1) ? " (" + ReasonOf(L_, -1) + ")" : ""));
        } else if (error.empty()) {
          bool reordered = false;
          for (size_t i = 0; i < out.size(); ++i) reordered |= out[i].id != (*ranked)[i].id;
          if (reordered)
            notes->push_back(name + ": reordered" +
                             (lua_isstring(L_, -1) ? " (" + ReasonOf(L_, -1) + ")" : ""));
        }
        if (error.empty()) *ranked = std::move(out);
      } else if (!lua_isnil(L_, -2)) {
        error =
            std::string("error: must return a list of offers or nil; got ") + luaL_typename(L_, -2);
      }
      lua_pop(L_, 2);
    }
    if (!error.empty()) {
      RuleCounters& c = rules_->counters(r);
      if (error.rfind("timeout", 0) == 0)
        c.timeouts.fetch_add(1, std::memory_order_relaxed);
      else if (error.rfind("memory", 0) == 0)
        c.memory.fetch_add(1, std::memory_order_relaxed);
      else
        c.errors.fetch_add(1, std::memory_order_relaxed);
      std::string line = name + ": finalize " + error + " (effect dropped)";
      log::Warn("rule:" + name, line);
      notes->push_back(line);
    }
  }
}

void RuleRuntime::End() {
  if (!L_) return;
  // Revoke this request's tables so a stashed reference cannot read the next
  // customer's data.
  for (int ref : impl_->request_proxies) {
    lua_rawgeti(L_, LUA_REGISTRYINDEX, ref);
    lua_pushcfunction(L_, Revoked);
    lua_setfield(L_, -2, "__index");
    lua_pop(L_, 1);
    luaL_unref(L_, LUA_REGISTRYINDEX, ref);
  }
  impl_->request_proxies.clear();
  luaL_unref(L_, LUA_REGISTRYINDEX, impl_->customer_ref);
  luaL_unref(L_, LUA_REGISTRYINDEX, impl_->ctx_ref);
  impl_->customer_ref = impl_->ctx_ref = LUA_NOREF;
  impl_->sb.request = nullptr;
}

}  // namespace tailor
