#include "rules/sandbox.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/log.h"
#include "common/time.h"
#include "rules/libs.h"
#include "rules/primitives.h"

namespace tailor::rules_internal {

Sandbox* SandboxOf(lua_State* L) { return *static_cast<Sandbox**>(lua_getextraspace(L)); }

namespace {

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

// The budget check. Once tripped the hook fires on every instruction, so a
// pcall inside the rule cannot swallow the abort and carry on.
void Hook(lua_State* L, lua_Debug*);

void CheckBudget(lua_State* L, Sandbox* sb) {
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

void Hook(lua_State* L, lua_Debug*) {
  Sandbox* sb = SandboxOf(L);
  sb->instructions += sb->aborted ? 1 : kHookEvery;
  CheckBudget(L, sb);
}

// A Lua error outside any protected call: Lua aborts the process when this
// returns. Every entry into Lua is protected, so reaching here is a bug;
// say what it was before the abort.
int Panic(lua_State* L) {
  const char* msg = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "(not a string)";
  log::Error("rules", std::string("unprotected Lua error (bug), aborting: ") + msg);
  return 0;
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

// The field of the table at idx, pushed, without metamethods (a rule's table
// may carry a metatable whose __index raises).
int RawField(lua_State* L, int idx, const char* key) {
  lua_pushstring(L, key);
  return lua_rawget(L, idx);
}

// The body of rule{}: returns false with the message pushed. Lua raises
// errors by longjmp, past C++ destructors, so nothing here raises one while
// a string or a vector of its own is alive (the caller raises it after).
bool DeclareRuleOrExplain(lua_State* L) {
  Sandbox* sb = SandboxOf(L);
  if (!sb->loading) {
    lua_pushstring(L, "rule{} can only be declared when the file loads");
    return false;
  }
  if (lua_type(L, 1) != LUA_TTABLE) {
    lua_pushfstring(L, "rule{} expects a table, got %s", luaL_typename(L, 1));
    return false;
  }
  static const char* const kKeys[] = {"name", "description", "eligible", "score", "finalize"};
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    lua_pop(L, 1);
    const char* k = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : nullptr;
    bool known = false;
    for (const char* key : kKeys) known = known || (k && std::strcmp(k, key) == 0);
    if (!known) {
      lua_pushfstring(L,
                      "rule has unknown key '%s' (valid: name, description, eligible, score, "
                      "finalize)",
                      k ? k : luaL_typename(L, -1));
      return false;
    }
  }
  if (RawField(L, 1, "name") != LUA_TSTRING || lua_rawlen(L, -1) == 0) {
    lua_pushstring(L, "rule needs a name (a non-empty string)");
    return false;
  }
  const char* name = lua_tostring(L, -1);  // stays on the stack while used
  for (const auto& other : sb->declared)
    if (other.info.name == name) {
      lua_pushfstring(L, "rule '%s' is already declared at %s:%d", name, other.info.file.c_str(),
                      other.info.line);
      return false;
    }
  const int description = RawField(L, 1, "description");
  if (description != LUA_TNIL && description != LUA_TSTRING) {
    lua_pushfstring(L, "rule '%s': description must be a string", name);
    return false;
  }
  const char* hooks[] = {"eligible", "score", "finalize"};
  bool any = false;
  for (const char* hook : hooks) {
    const int type = RawField(L, 1, hook);
    lua_pop(L, 1);
    if (type == LUA_TNIL) continue;
    if (type != LUA_TFUNCTION) {
      lua_pushfstring(L, "rule '%s': %s must be a function", name, hook);
      return false;
    }
    any = true;
  }
  if (!any) {
    lua_pushfstring(L, "rule '%s' has no hook (eligible, score or finalize)", name);
    return false;
  }
  // Checked; from here on nothing raises but running out of memory.
  Sandbox::Declared d;
  d.info.name = name;
  if (description == LUA_TSTRING) d.info.description = lua_tostring(L, -1);
  int* refs[] = {&d.eligible, &d.score, &d.finalize};
  bool* has[] = {&d.info.eligible, &d.info.score, &d.info.finalize};
  for (int i = 0; i < 3; ++i) {
    if (RawField(L, 1, hooks[i]) == LUA_TNIL) {
      lua_pop(L, 1);
      continue;
    }
    *refs[i] = luaL_ref(L, LUA_REGISTRYINDEX);
    *has[i] = true;
  }
  lua_Debug ar;
  if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "l", &ar)) d.info.line = ar.currentline;
  d.info.file = sb->current_file;
  sb->declared.push_back(std::move(d));
  return true;
}

// rule { name = ..., description = ..., eligible = fn, score = fn, finalize = fn }
int DeclareRule(lua_State* L) {
  if (DeclareRuleOrExplain(L)) return 0;
  luaL_where(L, 1);  // "file:line:" before the message, as luaL_error writes it
  lua_insert(L, -2);
  lua_concat(L, 2);
  return lua_error(L);
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
        "rawget", "rawlen", "setmetatable", "getmetatable", "_G"}) {
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
  OpenPrimitives(L);   // history.*, plugin_score
  FreezeLibraries(L);  // bounded, read-only; locks the string metatable
  lua_pop(L, 1);
}

int OpenSandboxLibsProtected(lua_State* L) {
  OpenSandboxLibs(L);
  return 0;
}

}  // namespace

void Charge(lua_State* L, int64_t steps) {
  Sandbox* sb = SandboxOf(L);
  sb->instructions += steps;
  sb->charged += steps;
  // Read the clock about as often as the hook would for the same work.
  if (sb->charged < kHookEvery && sb->instructions <= sb->max_instructions && !sb->aborted) return;
  sb->charged = 0;
  CheckBudget(L, sb);
}

lua_State* NewState(Sandbox* sb) {
  lua_State* L = lua_newstate(Alloc, sb);
  if (!L) return nullptr;
  *static_cast<Sandbox**>(lua_getextraspace(L)) = sb;
  lua_atpanic(L, Panic);
  lua_pushcfunction(L, OpenSandboxLibsProtected);
  if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
    log::Error("rules", std::string("cannot open the sandbox libraries: ") +
                            (lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "error"));
    lua_close(L);
    return nullptr;
  }
  return L;
}

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
  sb->charged = 0;
  sb->call_limit = sb->used + lim.call_memory;
  // The hook stays installed between calls (only Lua code runs it); it is
  // reinstalled after an abort switched it to every instruction.
  if (!sb->hooked || sb->aborted) {
    lua_sethook(L, Hook, LUA_MASKCOUNT, kHookEvery);
    sb->hooked = true;
  }
  sb->aborted = false;
}

const char* Disarm(Sandbox* sb, lua_State* L, int rc) {
  (void)L;
  sb->call_limit = std::numeric_limits<size_t>::max();
  if (rc == LUA_OK) return nullptr;
  if (sb->aborted) return "timeout";
  if (rc == LUA_ERRMEM || sb->memory_hit) return "memory";
  return "error";
}

namespace {

// Runs the compiled chunk (argument 1) in a fresh environment, inside the
// caller's protected call: building the environment may fail too.
int RunFile(lua_State* L) {
  PushEnv(L);
  if (!lua_setupvalue(L, 1, 1)) lua_pop(L, 1);
  lua_call(L, 0, 0);
  return 0;
}

}  // namespace

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
    lua_pushcfunction(L, RunFile);
    lua_insert(L, -2);
    sb->loading = true;
    Arm(sb, L, lim);
    int rc = lua_pcall(L, 1, 0, 0);
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

std::string ReasonOf(lua_State* L, int idx) {
  // No lua_tolstring on a number: converting allocates, and callers read
  // results outside any protected call.
  if (lua_type(L, idx) == LUA_TNUMBER) {
    char buf[32];
    if (lua_isinteger(L, idx))
      std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(lua_tointeger(L, idx)));
    else
      std::snprintf(buf, sizeof buf, "%.14g", lua_tonumber(L, idx));
    return buf;
  }
  if (lua_type(L, idx) != LUA_TSTRING) return "";
  size_t len = 0;
  const char* s = lua_tolstring(L, idx, &len);
  return std::string(s, std::min(len, kMaxReason));
}

}  // namespace tailor::rules_internal
