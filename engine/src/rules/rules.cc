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
#include "decision/engine.h"
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
};

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
  lua_createtable(L_, static_cast<int>(catalog_->offers.size()), 0);
  lua_Integer idx = 1;
  for (const Offer& o : catalog_->offers) {
    PushOffer(L_, *catalog_, o);
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
  for (int ref : impl_->request_proxies) RevokeProxy(L_, ref);
  impl_->request_proxies.clear();
  luaL_unref(L_, LUA_REGISTRYINDEX, impl_->customer_ref);
  luaL_unref(L_, LUA_REGISTRYINDEX, impl_->ctx_ref);
  impl_->customer_ref = impl_->ctx_ref = LUA_NOREF;
  impl_->sb.request = nullptr;
}

}  // namespace tailor
