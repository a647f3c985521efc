// Sandbox mechanics shared by the throwaway load-check state and the
// per-worker states: the allocator with its memory caps, the count hook that
// enforces the per-call budget, per-file environments, the opened libraries,
// `rule {}` declaration and loading of rule files. Internal to rules/.
#pragma once

#include <lua.hpp>

#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "rules/rules.h"

namespace tailor::rules_internal {

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
  int64_t charged = 0;  // steps charged by C functions since the last clock read
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

Sandbox* SandboxOf(lua_State* L);

// Charges steps of work done in C (pattern matching, library functions) to
// the call's instruction budget, checking the deadline about as often as the
// hook does; past either, raises "rule exceeded its budget" (and the hook
// keeps raising it) exactly as a Lua loop would.
void Charge(lua_State* L, int64_t steps);

// A state whose allocator accounts into sb, with only the sandbox libraries
// and the rule primitives opened. Null when the state cannot be created.
lua_State* NewState(Sandbox* sb);

// Pushes a per-file environment: reads fall through to the globals, unknown
// names and any assignment are errors.
void PushEnv(lua_State* L);

// Arms the per-call budget before a protected call into rule code.
void Arm(Sandbox* sb, lua_State* L, const RuleLimits& lim);
// Why a protected call failed: "timeout", "memory" or "error"; null on success.
const char* Disarm(Sandbox* sb, lua_State* L, int rc);

// Loads and runs every source in a state with the sandbox; declares rules.
bool LoadSources(lua_State* L, Sandbox* sb,
                 const std::vector<std::pair<std::string, std::string>>& sources,
                 const RuleLimits& lim, std::vector<std::string>* errors);

// Every *.lua in dir, sorted by name, as {path, text}.
std::vector<std::pair<std::string, std::string>> ReadDir(const std::string& dir,
                                                         std::vector<std::string>* errors);

// A rule's reason string at idx, cut to kMaxReason bytes ("" if not a string).
std::string ReasonOf(lua_State* L, int idx);

}  // namespace tailor::rules_internal
