// RuleSet (checked sources) and RuleRuntime (one sandboxed state per worker).
// The sandbox itself is in sandbox.cc, the functions rules call in
// primitives.cc, and JSON / catalog -> Lua tables in marshal.cc.
#include "rules/rules.h"

#include <lua.hpp>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>

#include "common/log.h"
#include "common/time.h"
#include "model/types.h"
#include "rules/marshal.h"
#include "rules/primitives.h"
#include "rules/sandbox.h"
#include "store/store.h"

namespace tailor {

using nlohmann::json;
using namespace rules_internal;

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
  // This request: its tables were built; rule time spent so far (ns); the
  // request's rule deadline passed (hooks are skipped from then on).
  bool request_ok = false;
  int64_t request_rule_ns = 0;
  bool request_deadline = false;
};

namespace {

// "20 ms", "0.5 ms".
std::string Millis(int64_t us) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g ms", static_cast<double>(us) / 1000.0);
  return buf;
}

// What a failed protected call left on the stack, without converting it (a
// conversion allocates, and may fail, outside any protected call).
std::string ErrorText(lua_State* L) {
  if (lua_type(L, -1) == LUA_TSTRING) return lua_tostring(L, -1);
  return std::string("(error object is a ") + luaL_typename(L, -1) + ")";
}

// Runs fn(L) with arg as a light userdata in a protected call; on failure
// returns the error text and leaves the stack as it was.
template <typename Arg>
bool Protected(lua_State* L, lua_CFunction fn, Arg* arg, int nresults, std::string* error) {
  lua_pushcfunction(L, fn);
  lua_pushlightuserdata(L, arg);
  if (lua_pcall(L, 1, nresults, 0) == LUA_OK) return true;
  *error = ErrorText(L);
  lua_pop(L, 1);
  return false;
}

struct OfferBuild {
  const Catalog* catalog;
  int* offers_ref;
  int* items_ref;
};

int BuildOffers(lua_State* L) {
  auto* b = static_cast<OfferBuild*>(lua_touserdata(L, 1));
  lua_createtable(L, static_cast<int>(b->catalog->offers.size()), 0);
  lua_Integer idx = 1;
  for (const Offer& o : b->catalog->offers) {
    PushOffer(L, *b->catalog, o);
    lua_rawseti(L, -2, idx++);
  }
  *b->offers_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_newtable(L);
  *b->items_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

}  // namespace

RuleRuntime::RuleRuntime(std::shared_ptr<const RuleSet> rules,
                         std::shared_ptr<const Catalog> catalog)
    : impl_(std::make_unique<Impl>()), rules_(std::move(rules)), catalog_(std::move(catalog)) {
  Sandbox& sb = impl_->sb;
  sb.limit = rules_->limits().state_memory;
  L_ = NewState(&sb);
  if (!L_) return;
  SetPrimitivesCatalog(L_, catalog_.get());
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
  OfferBuild build{catalog_.get(), &impl_->offers_ref, &impl_->items_ref};
  std::string error;
  if (!Protected(L_, BuildOffers, &build, 0, &error)) {
    // A state whose build failed is never used: serve without rules.
    log::Error("rules", "cannot build the offer tables: " + error);
    lua_close(L_);
    L_ = nullptr;
    return;
  }
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

// The request's JSON, parsed before the protected call (so that nothing with
// a destructor lives in a frame a Lua error unwinds).
struct RequestBuild {
  const RuleRequest* req;
  const json* attrs;    // object or null
  const json* consent;  // object
  const json* counts;
  const json* context;  // object
  std::vector<int>* proxies;
  int* customer_ref;
  int* ctx_ref;
};

int BuildRequest(lua_State* L) {
  const auto* b = static_cast<const RequestBuild*>(lua_touserdata(L, 1));
  const RuleRequest& req = *b->req;
  // customer: id, known, personalised, attributes (also flattened), consent, counts
  lua_createtable(L, 0, 8);
  if (req.personalised) SetString(L, "id", req.customer_id);
  lua_pushboolean(L, req.profile && req.profile->known);
  lua_setfield(L, -2, "known");
  lua_pushboolean(L, req.personalised);
  lua_setfield(L, -2, "personalised");
  if (b->attrs) {
    for (auto it = b->attrs->begin(); it != b->attrs->end(); ++it) {
      if (it.key() == "id" || it.key() == "known") continue;
      PushJson(L, it.value(), b->proxies);
      lua_setfield(L, -2, it.key().c_str());
    }
    PushJson(L, *b->attrs, b->proxies);
    lua_setfield(L, -2, "attributes");
  }
  PushJson(L, *b->consent, b->proxies);
  lua_setfield(L, -2, "consent");
  PushJson(L, *b->counts, b->proxies);
  lua_setfield(L, -2, "counts");
  MergeFacts(L, req.facts, "customer", b->proxies);
  PushReadOnly(L, b->proxies);
  *b->customer_ref = luaL_ref(L, LUA_REGISTRYINDEX);

  // ctx: channel, placement, hour, weekday, now, and every context key.
  lua_createtable(L, 0, 8);
  for (auto it = b->context->begin(); it != b->context->end(); ++it) {
    PushJson(L, it.value(), b->proxies);
    lua_setfield(L, -2, it.key().c_str());
  }
  SetString(L, "channel", req.channel);
  SetString(L, "placement", req.placement);
  int64_t secs = req.now_ms / 1000;
  if (!b->context->contains("hour")) {
    lua_pushinteger(L, (secs / 3600) % 24);
    lua_setfield(L, -2, "hour");
  }
  if (!b->context->contains("weekday")) {
    lua_pushinteger(L, ((secs / 86400) + 4) % 7);  // 0 = Sunday; 1970-01-01 was a Thursday
    lua_setfield(L, -2, "weekday");
  }
  lua_pushinteger(L, secs);
  lua_setfield(L, -2, "now");
  MergeFacts(L, req.facts, "context", b->proxies);
  PushReadOnly(L, b->proxies);
  *b->ctx_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

}  // namespace

void RuleRuntime::Begin(const RuleRequest& req) {
  if (!L_) return;
  Sandbox& sb = impl_->sb;
  sb.request = &req;
  ++sb.generation;
  impl_->request_rule_ns = 0;
  impl_->request_deadline = false;
  json attrs, consent = json::object(), counts = json::object();
  if (req.profile && req.personalised) {
    attrs = json::parse(req.profile->customer.attributes_json, nullptr, false);
    consent = json::parse(req.profile->customer.consent_json, nullptr, false);
    if (!consent.is_object()) consent = json::object();
    counts = json(req.profile->counts);
  }
  json context = json::parse(req.context_json, nullptr, false);
  if (!context.is_object()) context = json::object();
  RequestBuild build{&req,
                     attrs.is_object() ? &attrs : nullptr,
                     &consent,
                     &counts,
                     &context,
                     &impl_->request_proxies,
                     &impl_->customer_ref,
                     &impl_->ctx_ref};
  std::string error;
  impl_->request_ok = Protected(L_, BuildRequest, &build, 0, &error);
  if (!impl_->request_ok) {
    rules_->request_counters().build_errors.fetch_add(1, std::memory_order_relaxed);
    log::Warn("rules", "request tables not built, rules skipped: " + error);
    lua_gc(L_, LUA_GCCOLLECT);
  }
}

namespace {

struct ItemBuild {
  const Catalog* catalog;
  int items_ref;
  int item_index;
  const json* tags;
};

int BuildItem(lua_State* L) {
  const auto* b = static_cast<const ItemBuild*>(lua_touserdata(L, 1));
  PushNewItem(L, b->items_ref, *b->catalog, b->item_index, *b->tags);
  return 1;
}

}  // namespace

bool RuleRuntime::PushCandidate(int offer_index, int item_index, std::string* error) {
  if (PushCachedCandidate(L_, impl_->offers_ref, impl_->items_ref, offer_index, item_index))
    return true;
  const Item& it = catalog_->items[static_cast<size_t>(item_index)];
  json attrs = json::parse(it.attributes_json, nullptr, false);
  json tags = json::object();
  if (attrs.is_object() && attrs.contains("tags") && attrs["tags"].is_object())
    tags = attrs["tags"];
  ItemBuild build{catalog_.get(), impl_->items_ref, item_index, &tags};
  return Protected(L_, BuildItem, &build, 1, error);
}

RuleEffect RuleRuntime::Evaluate(size_t candidate, int offer_index, int item_index, double p) {
  RuleEffect fx;
  if (!L_) return fx;
  if (!impl_->request_ok) {
    fx.reasons.push_back("rules: not run (this request's tables could not be built)");
    return fx;
  }
  const RuleLimits& lim = rules_->limits();
  if (impl_->request_deadline) {
    fx.reasons.push_back("rules: skipped (this request's rule time of " +
                         Millis(lim.request_time_us) + " is spent)");
    return fx;
  }
  const int64_t t0 = mono_ns();
  Sandbox& sb = impl_->sb;
  sb.candidate = candidate;
  std::string error;
  if (!PushCandidate(offer_index, item_index, &error)) {
    fx.reasons.push_back("rules: not run (the candidate's table could not be built: " + error +
                         ")");
    return fx;
  }
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
      fail(r, "eligible", why, ErrorText(L_));
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
        fail(r, "score", why, ErrorText(L_));
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
  ChargeRequestTime(mono_ns() - t0);
  return fx;
}

void RuleRuntime::ChargeRequestTime(int64_t ns) {
  impl_->request_rule_ns += ns;
  if (impl_->request_deadline || impl_->request_rule_ns <= rules_->limits().request_time_us * 1000)
    return;
  impl_->request_deadline = true;
  rules_->request_counters().deadlines.fetch_add(1, std::memory_order_relaxed);
  log::Warn("rules", "request rule time of " + std::to_string(rules_->limits().request_time_us) +
                         " us spent: remaining hooks skipped for this request");
}

namespace {

int BuildRankedList(lua_State* L) {
  const auto* ranked = static_cast<const std::vector<RuleRuntime::Ranked>*>(lua_touserdata(L, 1));
  lua_createtable(L, static_cast<int>(ranked->size()), 0);
  for (size_t i = 0; i < ranked->size(); ++i) {
    lua_createtable(L, 0, 4);
    SetString(L, "id", (*ranked)[i].id);
    SetString(L, "category", (*ranked)[i].category);
    lua_pushnumber(L, (*ranked)[i].priority);
    lua_setfield(L, -2, "priority");
    lua_pushinteger(L, static_cast<lua_Integer>(i + 1));
    lua_setfield(L, -2, "rank");
    lua_rawseti(L, -2, static_cast<lua_Integer>(i + 1));
  }
  return 1;
}

// Reads the ids of a finalize hook's list (argument 2): entries are ids or
// tables with an id ("" for anything else). Reading may run metamethods of
// the rule's tables (a revoked proxy raises), hence a protected call.
int ReadRankedIds(lua_State* L) {
  auto* ids = static_cast<std::vector<std::string>*>(lua_touserdata(L, 1));
  lua_Integer n = luaL_len(L, 2);
  for (lua_Integer i = 1; i <= n; ++i) {
    lua_geti(L, 2, i);
    if (lua_istable(L, -1)) lua_getfield(L, -1, "id");
    size_t len = 0;
    const char* id = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : "";
    ids->emplace_back(id, len);
    lua_settop(L, 2);
  }
  return 0;
}

}  // namespace

void RuleRuntime::Finalize(std::vector<Ranked>* ranked, std::vector<std::string>* notes) {
  if (!L_ || impl_->finalize_rules.empty()) return;
  if (!impl_->request_ok) return;  // Evaluate named it already
  Sandbox& sb = impl_->sb;
  const int64_t t0 = mono_ns();
  for (size_t r : impl_->finalize_rules) {
    const std::string& name = rules_->rules()[r].name;
    if (impl_->request_deadline) {
      notes->push_back(name + ": finalize skipped (this request's rule time of " +
                       std::to_string(rules_->limits().request_time_us / 1000) + " ms is spent)");
      continue;
    }
    rules_->counters(r).calls.fetch_add(1, std::memory_order_relaxed);
    std::string error;
    lua_rawgeti(L_, LUA_REGISTRYINDEX, impl_->sb.declared[r].finalize);
    if (!Protected(L_, BuildRankedList, ranked, 1, &error)) {
      lua_pop(L_, 1);
      error = "memory: " + error;
    } else {
      lua_rawgeti(L_, LUA_REGISTRYINDEX, impl_->customer_ref);
      lua_rawgeti(L_, LUA_REGISTRYINDEX, impl_->ctx_ref);
      Arm(&sb, L_, rules_->limits());
      int rc = lua_pcall(L_, 3, 2, 0);
      if (const char* why = Disarm(&sb, L_, rc)) {
        error = std::string(why) + ": " + ErrorText(L_);
        lua_pop(L_, 1);
      } else {
        ApplyFinalize(name, ranked, notes, &error);
        lua_pop(L_, 2);
      }
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
  ChargeRequestTime(mono_ns() - t0);
}

// The hook's (list, reason) results are on the stack top.
void RuleRuntime::ApplyFinalize(const std::string& name, std::vector<Ranked>* ranked,
                                std::vector<std::string>* notes, std::string* error) {
  if (lua_isnil(L_, -2)) return;
  if (!lua_istable(L_, -2)) {
    *error =
        std::string("error: must return a list of offers or nil; got ") + luaL_typename(L_, -2);
    return;
  }
  std::vector<std::string> ids;
  lua_pushcfunction(L_, ReadRankedIds);
  lua_pushlightuserdata(L_, &ids);
  lua_pushvalue(L_, -4);
  if (lua_pcall(L_, 2, 0, 0) != LUA_OK) {
    *error = "error: reading the returned list: " + ErrorText(L_);
    lua_pop(L_, 1);
    return;
  }
  std::map<std::string, size_t> pos;
  for (size_t i = 0; i < ranked->size(); ++i) pos[(*ranked)[i].id] = i;
  std::vector<Ranked> out;
  for (const std::string& id : ids) {
    auto it = pos.find(id);
    if (it == pos.end()) {
      *error = "error: returned '" + id + "', which is not in the ranked list";
      return;
    }
    out.push_back((*ranked)[it->second]);
  }
  std::string reason = ReasonOf(L_, -1);
  std::string why = reason.empty() ? "" : " (" + reason + ")";
  if (out.size() != ranked->size()) {
    notes->push_back(name + ": kept " + std::to_string(out.size()) + " of " +
                     std::to_string(ranked->size()) + why);
  } else {
    bool reordered = false;
    for (size_t i = 0; i < out.size(); ++i) reordered |= out[i].id != (*ranked)[i].id;
    if (reordered) notes->push_back(name + ": reordered" + why);
  }
  *ranked = std::move(out);
}

void RuleRuntime::End() {
  if (!L_) return;
  // Revoke this request's tables so a stashed reference cannot read the next
  // customer's data.
  for (int ref : impl_->request_proxies) RevokeProxy(L_, ref);
  impl_->request_proxies.clear();
  luaL_unref(L_, LUA_REGISTRYINDEX, impl_->customer_ref);
  luaL_unref(L_, LUA_REGISTRYINDEX, impl_->ctx_ref);
  impl_->customer_ref = impl_->ctx_ref = LUA_NOREF;
  impl_->request_ok = false;
  impl_->sb.request = nullptr;
}

}  // namespace tailor
