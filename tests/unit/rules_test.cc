// The Lua rule runtime: contract, helpers, and the sandbox abuse corpus. Each
// hostile rule must fail alone, with its exact error and counter, while the
// well-behaved rule beside it keeps working and the call returns in budget.
#include "rules/rules.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "common/time.h"
#include "decision/engine.h"
#include "store/store.h"
#include "support/temp_dir.h"

namespace tailor {
namespace {

std::shared_ptr<const Catalog> TinyCatalog() {
  auto cat = std::make_shared<Catalog>();
  Offer a;
  a.id = "o_phone";
  a.category = "phones";
  a.value = 100;
  a.discount = std::make_pair(0.1, 0.3);
  Offer b;
  b.id = "o_baby";
  b.category = "beauty";
  b.value = 10;
  b.tags["sensitive"] = "pregnancy";
  Offer c;
  c.id = "o_case";
  c.item = "i1";
  c.value = 5;
  cat->offers = {a, b, c};
  Item it;
  it.id = "i1";
  it.category = "accessories";
  it.price = 20;
  cat->items = {it};
  cat->item_value = {20};
  cat->item_index["i1"] = 0;
  for (size_t i = 0; i < cat->offers.size(); ++i) cat->offer_index[cat->offers[i].id] = i;
  return cat;
}

// A well-behaved rule that must keep working next to the hostile ones.
const char* kGood = R"lua(
rule {
  name = "good",
  score = function(offer, p, customer, ctx) return 2, "always double" end,
}
)lua";

class Rules : public ::testing::Test {
 protected:
  std::shared_ptr<const RuleSet> Load(const std::string& hostile, RuleLimits limits = {}) {
    std::vector<std::string> errors;
    auto set = RuleSet::FromSources({{"rules/good.lua", kGood}, {"rules/hostile.lua", hostile}},
                                    limits, &errors);
    EXPECT_NE(set, nullptr) << (errors.empty() ? "" : errors[0]);
    return set;
  }

  // Evaluates offer 0 and returns the effect; the request is also timed.
  RuleEffect Run(const std::shared_ptr<const RuleSet>& set, int64_t* micros = nullptr) {
    if (!runtime_ || runtime_->rules() != set.get())
      runtime_ = std::make_unique<RuleRuntime>(set, catalog_);
    EXPECT_TRUE(runtime_->ok());
    RuleRequest req;
    req.profile = &profile_;
    req.personalised = true;
    req.customer_id = "c1";
    req.channel = "web";
    req.placement = "home";
    req.now_ms = now_ ? now_ : now_ms();
    req.context_json = context_json_;
    req.facts = facts_;
    runtime_->Begin(req);
    int64_t t0 = mono_ns();
    RuleEffect fx = runtime_->Evaluate(0, 0, -1, 0.5);
    if (micros) *micros = (mono_ns() - t0) / 1000;
    runtime_->End();
    return fx;
  }

  size_t Index(const RuleSet& set, const std::string& name) {
    for (size_t i = 0; i < set.rules().size(); ++i)
      if (set.rules()[i].name == name) return i;
    ADD_FAILURE() << "no rule " << name;
    return 0;
  }

  std::shared_ptr<const Catalog> catalog_ = TinyCatalog();
  Profile profile_;
  int64_t now_ = 0;  // the request's now; 0: the wall clock
  std::string context_json_ = "{}";
  const nlohmann::json* facts_ = nullptr;
  std::unique_ptr<RuleRuntime> runtime_;
};

std::string Joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += x + "\n";
  return s;
}

// ---- abuse corpus -----------------------------------------------------------

struct Abuse {
  const char* name;
  const char* source;
  const char* expect_in_reason;
  enum { kError, kTimeout, kMemory } counter;
};

class SandboxAbuse : public Rules, public ::testing::WithParamInterface<Abuse> {};

TEST_P(SandboxAbuse, FailsAloneWithItsErrorAndCounter) {
  const Abuse& a = GetParam();
  RuleLimits limits;
  limits.instructions = 2'000'000;
  limits.time_us = 200'000;
  limits.call_memory = 2 << 20;
  auto set = Load(a.source, limits);
  ASSERT_NE(set, nullptr);
  int64_t us = 0;
  RuleEffect fx = Run(set, &us);
  // The good rule still applied its lever; the hostile one was dropped.
  EXPECT_DOUBLE_EQ(fx.levers, 2.0) << Joined(fx.reasons);
  EXPECT_FALSE(fx.vetoed);
  std::string all = Joined(fx.reasons);
  EXPECT_NE(all.find("hostile"), std::string::npos) << all;
  EXPECT_NE(all.find(a.expect_in_reason), std::string::npos) << all;
  EXPECT_NE(all.find("(effect dropped)"), std::string::npos) << all;
  const RuleCounters& c = set->counters(Index(*set, "hostile"));
  EXPECT_EQ(c.errors.load(), a.counter == Abuse::kError ? 1u : 0u) << all;
  EXPECT_EQ(c.timeouts.load(), a.counter == Abuse::kTimeout ? 1u : 0u) << all;
  EXPECT_EQ(c.memory.load(), a.counter == Abuse::kMemory ? 1u : 0u) << all;
  // Within budget: the deadline is 200 ms; allow scheduling noise.
  EXPECT_LT(us, 1'000'000);
  // The state is still usable: a second request works the same way.
  EXPECT_DOUBLE_EQ(Run(set).levers, 2.0);
}

INSTANTIATE_TEST_SUITE_P(
    Corpus, SandboxAbuse,
    ::testing::Values(
        Abuse{"infinite_loop",
              R"(rule { name = "hostile", score = function() while true do end end })",
              "score timeout: ", Abuse::kTimeout},
        Abuse{"pcall_cannot_swallow_the_budget",
              R"(rule { name = "hostile", score = function()
                   while true do pcall(function() while true do end end) end end })",
              "score timeout: ", Abuse::kTimeout},
        Abuse{"memory_bomb",
              R"(rule { name = "hostile", score = function()
                   local t = {} for i = 1, 1e9 do t[i] = {i} end end })",
              "score memory: ", Abuse::kMemory},
        Abuse{"string_rep_bomb",
              R"(rule { name = "hostile", score = function()
                   return #string.rep(string.rep("x", 64), 1e5) end })",
              "score memory: ", Abuse::kMemory},
        Abuse{"global_assignment",
              R"(rule { name = "hostile", score = function() leaked = 1 end })",
              "assignment to undeclared global 'leaked'", Abuse::kError},
        Abuse{"undeclared_global_read",
              R"(rule { name = "hostile", score = function() return undefined_thing + 1 end })",
              "undeclared global 'undefined_thing'", Abuse::kError},
        Abuse{"os_execute",
              R"(rule { name = "hostile", score = function() os.execute("touch /tmp/pwned") end })",
              "undeclared global 'os'", Abuse::kError},
        Abuse{"io_open",
              R"(rule { name = "hostile", score = function() io.open("/etc/passwd") end })",
              "undeclared global 'io'", Abuse::kError},
        Abuse{"require", R"(rule { name = "hostile", score = function() require("socket") end })",
              "undeclared global 'require'", Abuse::kError},
        Abuse{"load", R"(rule { name = "hostile", score = function() load("return 1")() end })",
              "undeclared global 'load'", Abuse::kError},
        Abuse{"string_dump",
              R"(rule { name = "hostile", score = function()
                   return string.dump(function() end) end })",
              "field 'dump'", Abuse::kError},
        Abuse{"deep_recursion",
              R"(local function f(n) return f(n + 1) + 1 end
                 rule { name = "hostile", score = function() return f(1) end })",
              "score memory: ", Abuse::kMemory},
        Abuse{"bad_return_type",
              R"(rule { name = "hostile", score = function() return "lots" end })",
              "must return a number[, reason] or nil; got string", Abuse::kError},
        Abuse{"nan_lever", R"(rule { name = "hostile", score = function() return 0/0 end })",
              "lever must be a number in [0, 100]", Abuse::kError},
        Abuse{"modify_offer",
              R"(rule { name = "hostile", score = function(offer) offer.value = 0 end })",
              "read-only field 'value'", Abuse::kError},
        Abuse{"string_metatable",
              R"(rule { name = "hostile", score = function() getmetatable("").__index = nil end })",
              "undeclared global 'getmetatable'", Abuse::kError},
        // Library functions run in C, where the count hook never fires: each
        // charges its work to the budget, pattern matching step by step.
        Abuse{"pattern_backtracking_find",
              R"(rule { name = "hostile", score = function()
                   return string.find(string.rep("a", 40), string.rep("a*", 40) .. "b") end })",
              "hostile: score timeout: rules/hostile.lua:2: rule exceeded its budget (effect "
              "dropped)",
              Abuse::kTimeout},
        Abuse{"pattern_backtracking_method_call",
              R"(rule { name = "hostile", score = function()
                   return (("a"):rep(40)):match(("a-"):rep(40) .. "b") end })",
              "hostile: score timeout: rules/hostile.lua:2: rule exceeded its budget (effect "
              "dropped)",
              Abuse::kTimeout},
        Abuse{"pattern_backtracking_gsub",
              R"(rule { name = "hostile", score = function()
                   return string.gsub(string.rep("a", 40), string.rep("a?", 40) .. "b", "") end })",
              "hostile: score timeout: rules/hostile.lua:2: rule exceeded its budget (effect "
              "dropped)",
              Abuse::kTimeout},
        Abuse{"pattern_backtracking_gmatch",
              R"(rule { name = "hostile", score = function()
                   for _ in string.gmatch(string.rep("a", 40), string.rep("a*", 40) .. "b") do end
                 end })",
              "hostile: score timeout: rules/hostile.lua:2: rule exceeded its budget (effect "
              "dropped)",
              Abuse::kTimeout},
        Abuse{"string_rep_of_nothing",
              R"(rule { name = "hostile", score = function() return #string.rep("", 1e15) end })",
              "hostile: score timeout: rules/hostile.lua:1: rule exceeded its budget (effect "
              "dropped)",
              Abuse::kTimeout},
        Abuse{"table_move_of_nothing",
              R"(rule { name = "hostile", score = function() table.move({}, 1, 1e12, 2) end })",
              "hostile: score timeout: rules/hostile.lua:1: rule exceeded its budget (effect "
              "dropped)",
              Abuse::kTimeout},
        Abuse{"malformed_pattern",
              R"(rule { name = "hostile", score = function() return string.find("x", "[a") end })",
              "hostile: score error: rules/hostile.lua:1: malformed pattern (missing ']') (effect "
              "dropped)",
              Abuse::kError},
        // Library tables are read-only: one file cannot change another's.
        Abuse{"library_table_write",
              R"(rule { name = "hostile", score = function()
                   history.count = function() return 0 end end })",
              "hostile: score error: rules/hostile.lua:2: attempt to modify read-only field "
              "'count' (effect dropped)",
              Abuse::kError},
        Abuse{"string_library_write",
              R"(rule { name = "hostile", score = function() string.find = nil end })",
              "hostile: score error: rules/hostile.lua:1: attempt to modify read-only field 'find' "
              "(effect dropped)",
              Abuse::kError},
        Abuse{"globals_through_G",
              R"(rule { name = "hostile", score = function() _G.history = {} end })",
              "hostile: score error: rules/hostile.lua:1: undeclared global '_G' (effect dropped)",
              Abuse::kError},
        // pairs() on a read-only table must not hand out the table behind it.
        Abuse{"pairs_state_is_not_the_real_table",
              R"(rule { name = "hostile", score = function(offer)
                   local _, t = pairs(offer) t.value = 0 end })",
              "hostile: score error: rules/hostile.lua:2: attempt to modify read-only field "
              "'value' (effect dropped)",
              Abuse::kError},
        Abuse{"pairs_values_are_read_only",
              R"(rule { name = "hostile", score = function(offer)
                   for k, v in pairs(offer) do if k == "channels" then v[1] = "x" end end end })",
              "hostile: score error: rules/hostile.lua:2: attempt to modify read-only field '1' "
              "(effect dropped)",
              Abuse::kError},
        Abuse{"pairs_on_a_library",
              R"(rule { name = "hostile", score = function()
                   local _, lib = pairs(string) lib.find = nil end })",
              "hostile: score error: rules/hostile.lua:2: attempt to modify read-only field 'find' "
              "(effect dropped)",
              Abuse::kError}),
    [](const ::testing::TestParamInfo<Abuse>& info) { return info.param.name; });

TEST_F(Rules, StashedHandleFromAnEarlierRequestIsRevoked) {
  auto set = Load(R"(
    local saved
    rule { name = "hostile", score = function(offer, p, customer, ctx)
      if saved then return saved.age end
      saved = customer
    end })");
  profile_.known = true;
  profile_.customer.attributes_json = R"({"age": 40})";
  RuleEffect first = Run(set);
  EXPECT_DOUBLE_EQ(first.levers, 2.0);
  RuleEffect second = Run(set);
  std::string all = Joined(second.reasons);
  EXPECT_NE(all.find("stashed handle"), std::string::npos) << all;
  EXPECT_EQ(set->counters(Index(*set, "hostile")).errors.load(), 1u);
}

TEST_F(Rules, EligibleVetoesWithReasonAndCounts) {
  auto set = Load(R"(rule { name = "hostile", eligible = function(offer)
      if offer.category == "phones" then return false, "no phones today" end end })");
  RuleEffect fx = Run(set);
  EXPECT_TRUE(fx.vetoed);
  EXPECT_NE(Joined(fx.reasons).find("hostile: no phones today"), std::string::npos);
  EXPECT_EQ(set->counters(Index(*set, "hostile")).vetoes.load(), 1u);
}

// Each request's garbage must be collected as requests go by, with no
// collection forced between them: 3,000 calls that each leave a 3,000-slot
// table behind (150 MB in all) keep the heap far below the state's limit,
// where only emergency collections at the limit would be left otherwise.
TEST_F(Rules, GarbageOfEarlierRequestsIsCollected) {
  RuleLimits limits;
  limits.state_memory = 32 << 20;
  auto set = Load(R"(rule { name = "hostile", score = function(offer)
      local t = {}
      for i = 1, 3000 do t[i] = {i} end
      return 1, "made " .. #t end })",
                  limits);
  size_t peak = 0;
  for (int i = 0; i < 3000; ++i) {
    RuleEffect fx = Run(set);
    ASSERT_DOUBLE_EQ(fx.levers, 2.0) << i << ": " << Joined(fx.reasons);
    peak = std::max(peak, runtime_->memory_used());
  }
  const RuleCounters& c = set->counters(Index(*set, "hostile"));
  EXPECT_EQ(c.memory.load(), 0u);
  EXPECT_EQ(c.errors.load(), 0u);
  EXPECT_LT(peak, 8u << 20);
}

// Client data nested far past the protocol's limit (a store row, a plugin's
// facts, or a message that got past the parser) reaches the rules cut at
// kMaxJsonDepth levels: no crash, no Lua error, and the rules still run.
TEST_F(Rules, DeeplyNestedContextAndFactsAreCutAtTheDepthLimit) {
  const int kDeep = 10'000;
  context_json_ = R"({"deep":)" + std::string(kDeep, '[') + std::string(kDeep, ']') + "}";
  nlohmann::json facts = {
      {"context",
       {{"facts_deep", nlohmann::json::parse(std::string(kDeep, '[') + std::string(kDeep, ']'))}}}};
  facts_ = &facts;
  profile_.known = true;
  profile_.customer.attributes_json =
      R"({"prefs":)" + std::string(kDeep, '[') + std::string(kDeep, ']') + "}";
  auto set = Load(R"(
    local function depth(t) local n = 0 while type(t) == "table" do n = n + 1 t = t[1] end return n end
    rule { name = "hostile", score = function(offer, p, customer, ctx)
      return 1.5, string.format("depths %d %d %d", depth(ctx.deep), depth(ctx.facts_deep),
                                depth(customer.prefs)) end })");
  RuleEffect fx = Run(set);
  EXPECT_DOUBLE_EQ(fx.levers, 3.0) << Joined(fx.reasons);
  EXPECT_NE(Joined(fx.reasons).find("hostile: x1.5 depths 32 32 32"), std::string::npos)
      << Joined(fx.reasons);
  EXPECT_EQ(set->counters(Index(*set, "hostile")).errors.load(), 0u);
}

// One file writing a library table would change every other file's rules:
// the write fails at load, naming the field.
TEST(RuleLoad, LibraryTablesAreReadOnlyAtLoad) {
  for (const char* source :
       {"history.count = function() return 0 end", "string.find = function() return 1 end",
        "table.insert = nil", "math.huge = 0", "utf8.char = nil"}) {
    std::vector<std::string> errors;
    auto set = RuleSet::FromSources({{"rules/a.lua", source}}, {}, &errors);
    EXPECT_EQ(set, nullptr) << source;
    EXPECT_NE(Joined(errors).find("attempt to modify read-only field '"), std::string::npos)
        << source << " -> " << Joined(errors);
  }
}

// Patterns that do not backtrack much keep Lua's results exactly.
TEST_F(Rules, BoundedPatternFunctionsKeepLuaSemantics) {
  auto set = Load(R"lua(rule { name = "hostile", score = function()
      local out = {}
      local function add(...) for _, v in ipairs({...}) do out[#out + 1] = tostring(v) end end
      add(string.find("hello world", "o w"))
      add(string.find("hello world", "l+"))
      add(string.find("a.b", ".", 1, true))
      add(string.match("key = value", "(%w+)%s*=%s*(%w+)"))
      add(string.match("  trim  ", "^%s*(.-)%s*$"))
      add(string.match("THE (quick) fox", "%((%a+)%)"))
      add(string.match("hello", "()ll()"))
      add(string.find("abc", "b", -1))
      add(string.gsub("hello world", "o", "0"))
      add(string.gsub("abc", "%w", "%0%0"))
      add(string.gsub("$name is $age", "%$(%w+)", {name = "ann", age = 7}))
      add(string.gsub("abc", "b", function(c) return c:upper() end))
      add(string.gsub("x = f(a(b)c)", "%b()", "[]"))
      add(string.find("THE (quick) fox", "%f[%a]%a+", 5))
      add(string.match("abcabc", "(abc)%1"))
      add(("x,y,,z"):gsub(",", ";", 2))
      local words = {}
      for w in string.gmatch("one two  three", "%a+") do words[#words + 1] = w end
      add(table.concat(words, "|"))
      for k, v in string.gmatch("a=1, b=2", "(%w+)=(%w+)") do add(k .. v) end
      return 1.5, table.concat(out, " ")
    end })lua");
  RuleEffect fx = Run(set);
  const std::string all = Joined(fx.reasons);
  EXPECT_EQ(set->counters(Index(*set, "hostile")).errors.load(), 0u) << all;
  // What PUC Lua 5.4's own string library returns for the same calls.
  EXPECT_NE(all.find("hostile: x1.5 5 7 3 4 2 2 key value trim quick 3 5 hell0 w0rld 2 aabbcc 3 "
                     "ann is 7 2 aBc 1 x = f[] 1 6 10 abc x;y;,z 2 one|two|three a1 b2"),
            std::string::npos)
      << all;
}

// A whole request's rule time is bounded: once spent, the remaining hooks
// are skipped, each skipped candidate says so, and the request is counted.
TEST_F(Rules, RequestRuleTimeIsBoundedAndNamed) {
  RuleLimits limits;
  limits.request_time_us = 1'000;
  limits.time_us = 200'000;
  auto set = Load(R"(rule { name = "hostile", score = function()
      local n = 0 for i = 1, 300000 do n = n + i end return 1 end })",
                  limits);
  runtime_ = std::make_unique<RuleRuntime>(set, catalog_);
  for (int request = 1; request <= 2; ++request) {
    RuleRequest req;
    req.channel = "web";
    req.now_ms = now_ms();
    runtime_->Begin(req);
    std::vector<RuleEffect> fx;
    for (size_t i = 0; i < 20; ++i) fx.push_back(runtime_->Evaluate(i, 0, -1, 0.5));
    runtime_->End();
    EXPECT_DOUBLE_EQ(fx[0].levers, 2.0);  // the first candidate ran every hook
    EXPECT_NE(Joined(fx.back().reasons)
                  .find("rules: skipped (this request's rule time of 1 ms is spent)"),
              std::string::npos)
        << Joined(fx.back().reasons);
    EXPECT_DOUBLE_EQ(fx.back().levers, 1.0);
    EXPECT_EQ(set->request_counters().deadlines.load(), static_cast<uint64_t>(request));
  }
  EXPECT_LT(set->counters(Index(*set, "good")).calls.load(), 40u);
}

// A finalize hook that returns a table from an earlier request: reading it
// raises (revoked), and that must be a dropped effect, not a process abort.
TEST_F(Rules, FinalizeReadingARevokedTableIsAnErrorNotAnAbort) {
  std::vector<std::string> errors;
  auto set = RuleSet::FromSources({{"f.lua", R"(
    local saved
    rule { name = "stasher", finalize = function(offers, customer)
      if saved then return {saved} end
      saved = customer
    end })"}},
                                  {}, &errors);
  ASSERT_NE(set, nullptr) << Joined(errors);
  RuleRuntime rt(set, catalog_);
  std::vector<std::string> notes;
  for (int request = 0; request < 2; ++request) {
    RuleRequest req;
    req.now_ms = now_ms();
    rt.Begin(req);
    std::vector<RuleRuntime::Ranked> ranked = {{0, "a", 3, ""}, {1, "b", 2, ""}};
    rt.Finalize(&ranked, &notes);
    rt.End();
    EXPECT_EQ(ranked.size(), 2u);
  }
  EXPECT_NE(Joined(notes).find("stasher: finalize error: reading the returned list: a request's "
                               "table was used after that request ended (stashed handle) (effect "
                               "dropped)"),
            std::string::npos)
      << Joined(notes);
  EXPECT_EQ(set->counters(0).errors.load(), 1u);
}

// Begin builds the request's tables in a protected call: running out of
// memory there skips the rules for that request (named, counted) instead of
// aborting the process, and the next request is served normally.
TEST_F(Rules, RequestTablesThatDoNotFitSkipTheRulesNotTheProcess) {
  RuleLimits limits;
  limits.state_memory = 2 << 20;
  auto set = Load(R"(rule { name = "hostile", score = function() return 1 end })", limits);
  context_json_ = R"({"blob":")" + std::string(3 << 20, 'x') + R"("})";
  RuleEffect fx = Run(set);
  EXPECT_DOUBLE_EQ(fx.levers, 1.0);
  EXPECT_NE(Joined(fx.reasons).find("rules: not run (this request's tables could not be built)"),
            std::string::npos)
      << Joined(fx.reasons);
  EXPECT_EQ(set->request_counters().build_errors.load(), 1u);
  context_json_ = "{}";
  EXPECT_DOUBLE_EQ(Run(set).levers, 2.0);
}

// ---- load-time errors ---------------------------------------------------------

TEST(RuleLoad, ErrorsNameFileAndLine) {
  struct Case {
    const char* source;
    const char* expect;
  } cases[] = {
      {"rule { name = 'x', score = function() return 1 end\n", "rules/bad.lua:2:"},
      {"\nx = 1\n", "rules/bad.lua:2: assignment to undeclared global 'x'"},
      {"rule { score = function() end }", "rule needs a name"},
      {"rule { name = 'x' }", "rule 'x' has no hook"},
      {"rule { name = 'x', scroe = function() end }", "unknown key 'scroe'"},
      {"rule { name = 'x', score = 5 }", "score must be a function"},
      {"while true do end", "loading took too long"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> errors;
    RuleLimits limits;
    limits.time_us = 50'000;
    auto set = RuleSet::FromSources({{"rules/bad.lua", c.source}}, limits, &errors);
    EXPECT_EQ(set, nullptr) << c.source;
    std::string all = Joined(errors);
    EXPECT_NE(all.find(c.expect), std::string::npos) << c.source << " -> " << all;
  }
}

TEST(RuleLoad, DuplicateNamesAcrossFilesAreRefused) {
  std::vector<std::string> errors;
  auto set = RuleSet::FromSources({{"a.lua", "rule { name = 'x', score = function() end }"},
                                   {"b.lua", "rule { name = 'x', score = function() end }"}},
                                  {}, &errors);
  EXPECT_EQ(set, nullptr);
  EXPECT_NE(Joined(errors).find("already declared at a.lua:1"), std::string::npos)
      << Joined(errors);
}

TEST(RuleLoad, ShippedRulesLoad) {
  std::vector<std::string> errors;
  auto set = RuleSet::Load(std::string(TAILOR_SOURCE_DIR) + "/rules", {}, &errors);
  ASSERT_NE(set, nullptr) << Joined(errors);
  EXPECT_GE(set->rules().size(), 6u);
}

// ---- helpers ------------------------------------------------------------------

TEST_F(Rules, HistoryHelpersReadTheProfile) {
  profile_.known = true;
  int64_t now = now_ms();
  for (int i = 0; i < 3; ++i) {
    Event e;
    e.customer_id = "c1";
    e.type = "impression";
    e.offer_id = "o_phone";
    e.ts_ms = now - (i + 1) * 3600 * 1000;
    profile_.recent.insert(profile_.recent.begin(), e);  // oldest first
  }
  Event old;
  old.customer_id = "c1";
  old.type = "impression";
  old.offer_id = "o_phone";
  old.ts_ms = now - 10LL * 86400 * 1000;
  profile_.recent.insert(profile_.recent.begin(), old);
  EventHistory::Builder b;
  for (const Event& e : profile_.recent) b.Add(e.type, e.offer_id, e.item_id, e.ts_ms);
  profile_.history = b.Build(INT64_MIN);
  auto set = Load(R"(rule { name = "hostile", score = function(offer)
      local week = history.count("impression", offer.id, "7d")
      local all = history.count("impression", offer.id)
      local ago = history.last("impression", offer.id)
      return week * 10 + all, string.format("ago=%.0f", ago) end })");
  RuleEffect fx = Run(set);
  EXPECT_DOUBLE_EQ(fx.levers, 2.0 * 34);  // 3 in the week, 4 in all
  EXPECT_NE(Joined(fx.reasons).find("ago=3600"), std::string::npos) << Joined(fx.reasons);
}

// Issue 12.4: history.* answer over the whole window asked, not over the
// last recent_events (50) events. One customer with 500 views in 30 days,
// older events below them, loaded by the store as the service does.
TEST_F(Rules, HistoryAnswersOverTheWholeWindowNotTheLastFifty) {
  constexpr int64_t kHour = 3'600'000, kDay = 24 * kHour;
  now_ = now_ms();
  testing::TempDir dir;
  std::string err;
  Store::Options o;
  o.path = dir.file("t.db");
  auto store = Store::Open(o, &err);
  ASSERT_NE(store, nullptr) << err;
  auto event = [&](const char* type, const char* offer, const char* item, int64_t ts) {
    Event e;
    e.customer_id = "c1";
    e.type = type;
    e.offer_id = offer;
    e.item_id = item;
    e.ts_ms = ts;
    store->AppendEvent(e);
  };
  event("purchase", "", "i1", now_ - 40 * kDay);  // accessories
  event("dismiss", "o_phone", "", now_ - 35 * kDay);
  event("impression", "o_phone", "", now_ - 12 * kHour - 1);  // 1 ms outside "12h"
  event("impression", "o_phone", "", now_ - 12 * kHour);      // exactly at the edge: in
  for (int i = 0; i < 500; ++i) event("view", "", "i2", now_ - 1 - i * (29 * kDay / 500));
  store->Flush();
  profile_ = store->LoadProfile("c1", 50);
  ASSERT_EQ(profile_.recent.size(), 50u);
  auto set = Load(R"(rule { name = "hostile", score = function(offer)
      return 2, string.format("views=%d dismissed=%.0fs b60=%s b30=%s cat60=%s cat30=%s h12=%d",
        history.count("view", nil, "30d"), history.last("dismiss", offer.id) or -1,
        tostring(history.bought("i1", "60d")), tostring(history.bought("i1", "30d")),
        tostring(history.bought("accessories", "60d")),
        tostring(history.bought("accessories", "30d")),
        history.count("impression", offer.id, "12h")) end })");
  RuleEffect fx = Run(set);
  EXPECT_NE(Joined(fx.reasons)
                .find("views=500 dismissed=3024000s b60=true b30=false "
                      "cat60=true cat30=false h12=1"),
            std::string::npos)
      << Joined(fx.reasons);
  // Events applied after the load (the profile cache's path) count too.
  profile_.history.Add("view", "", "i2", now_ - 2 * kHour);
  fx = Run(set);
  EXPECT_NE(Joined(fx.reasons).find("views=501 "), std::string::npos) << Joined(fx.reasons);
}

TEST_F(Rules, FinalizeReordersAndTrimsAndBadResultsAreDropped) {
  std::vector<std::string> errors;
  auto set = RuleSet::FromSources({{"f.lua", R"(rule { name = "reverse", finalize = function(offers)
          local out = {}
          for i = #offers, 1, -1 do out[#out + 1] = offers[i] end
          table.remove(out, 1)
          return out, "reversed, dropped the last"
        end })"}},
                                  {}, &errors);
  ASSERT_NE(set, nullptr) << Joined(errors);
  RuleRuntime rt(set, catalog_);
  RuleRequest req;
  req.channel = "web";
  req.placement = "home";
  req.now_ms = now_ms();
  rt.Begin(req);
  std::vector<RuleRuntime::Ranked> ranked = {{0, "a", 3, ""}, {1, "b", 2, ""}, {2, "c", 1, ""}};
  std::vector<std::string> notes;
  rt.Finalize(&ranked, &notes);
  rt.End();
  ASSERT_EQ(ranked.size(), 2u);
  EXPECT_EQ(ranked[0].id, "b");
  EXPECT_EQ(ranked[1].id, "a");
  EXPECT_NE(Joined(notes).find("kept 2 of 3"), std::string::npos) << Joined(notes);

  auto bad = RuleSet::FromSources(
      {{"f.lua", R"(rule { name = "liar", finalize = function() return {"zzz"} end })"}}, {},
      &errors);
  RuleRuntime rt2(bad, catalog_);
  rt2.Begin(req);
  ranked = {{0, "a", 3, ""}, {1, "b", 2, ""}};
  notes.clear();
  rt2.Finalize(&ranked, &notes);
  rt2.End();
  EXPECT_EQ(ranked.size(), 2u);  // unchanged
  EXPECT_NE(Joined(notes).find("not in the ranked list"), std::string::npos) << Joined(notes);
  EXPECT_EQ(bad->counters(0).errors.load(), 1u);
}

}  // namespace
}  // namespace tailor
