// The decision stages one by one (decision/stages.h), without a service:
// candidates, judge, arbitrate, policy, price, finalize and the explanation.
// The plugin-facing stages (score, annotate, explain, diversify) are tested
// with real plugins in tests/plugins/score_stage_test.cc.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "decision/stages.h"
#include "decision/trace.h"

namespace tailor {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr int64_t kNow = 1767225600000;  // 2026-01-01

Offer MakeOffer(std::string id, std::string category, double value) {
  Offer o;
  o.id = std::move(id);
  o.category = std::move(category);
  o.value = value;
  return o;
}

Item MakeItem(std::string id, std::string category) {
  Item it;
  it.id = std::move(id);
  it.category = std::move(category);
  return it;
}

std::shared_ptr<Catalog> MakeCatalog() {
  auto cat = std::make_shared<Catalog>();
  cat->offers = {MakeOffer("o_a", "toys", 10), MakeOffer("o_b", "books", 40),
                 MakeOffer("o_c", "toys", 20)};
  cat->offers[1].channels = {"email"};
  cat->offers[2].valid_until_ms = kNow - 1;  // expired
  Offer promo = MakeOffer("o_promo", "", 30);
  promo.item = "i2";
  promo.channel_weights["web"] = 2.0;
  cat->offers.push_back(promo);
  cat->items = {MakeItem("i1", "toys"), MakeItem("i2", "books"), MakeItem("i3", "toys")};
  cat->item_value = {5, 15, 25};
  for (size_t i = 0; i < cat->offers.size(); ++i) cat->offer_index[cat->offers[i].id] = i;
  for (size_t i = 0; i < cat->items.size(); ++i) cat->item_index[cat->items[i].id] = i;
  return cat;
}

DecideRequest Request(std::string placement, std::string channel = "web") {
  DecideRequest r;
  r.customer = "c1";
  r.placement = std::move(placement);
  r.channel = std::move(channel);
  return r;
}

std::vector<std::string> Ids(const Candidates& c) {
  std::vector<std::string> out;
  for (size_t i = 0; i < c.size(); ++i) out.push_back(c.id(i));
  return out;
}

TEST(CandidatesStage, OffersValidOnTheChannelWithTheirCategoryAndContextWeight) {
  auto cat = MakeCatalog();
  PlacementConfig home;
  home.weight = 1.5;
  Candidates c;
  CollectCandidates(*cat, home, Request("home"), kNow, &c);
  // o_b is email only, o_c expired.
  EXPECT_THAT(Ids(c), ElementsAre("o_a", "o_promo"));
  EXPECT_STREQ(c.list[1].category, "books");  // the promoted item's category
  EXPECT_STREQ(c.list[1].item_id, "i2");
  EXPECT_DOUBLE_EQ(c.context[0], 1.5);
  EXPECT_DOUBLE_EQ(c.context[1], 3.0);  // x the web channel weight
  EXPECT_DOUBLE_EQ(c.values[1], 30);
  EXPECT_EQ(c.offer_index[1], 3);
  EXPECT_EQ(c.item_index[1], -1);

  CollectCandidates(*cat, home, Request("home", "email"), kNow, &c);
  EXPECT_THAT(Ids(c), ElementsAre("o_a", "o_b", "o_promo"));
  EXPECT_DOUBLE_EQ(c.context[2], 1.5);  // no email weight
}

TEST(CandidatesStage, ItemsHonourTheCategoryFilterAndTheCap) {
  auto cat = MakeCatalog();
  PlacementConfig recs;
  recs.kind = PlacementConfig::Kind::kItems;
  Candidates c;
  DecideRequest req = Request("recs");
  req.context = {{"category", "toys"}};
  CollectCandidates(*cat, recs, req, kNow, &c);
  EXPECT_THAT(Ids(c), ElementsAre("i1", "i3"));
  EXPECT_DOUBLE_EQ(c.values[1], 25);
  EXPECT_EQ(c.item_index[1], 2);

  recs.max_candidates = 2;
  CollectCandidates(*cat, recs, Request("recs"), kNow, &c);
  EXPECT_THAT(Ids(c), ElementsAre("i1", "i2"));
}

// Scores as if plugins had scored: one plugin, weight 1, these scores
// (NaN-free; TAILOR_SCORE_ABSTAIN allowed).
PluginScores OnePlugin(const std::vector<float>& scores) {
  PluginScores s;
  s.n = scores.size();
  s.names = {"p"};
  s.ok = {true};
  s.weights = {1.0};
  s.scores = scores;
  s.weighted_sum.assign(s.n, 0);
  s.weight_sum.assign(s.n, 0);
  s.weight_total = 1;
  s.reasons.assign(s.n * kReasonCap, '\0');
  for (size_t i = 0; i < s.n; ++i) {
    if (scores[i] == TAILOR_SCORE_ABSTAIN) continue;
    s.weighted_sum[i] = scores[i];
    s.weight_sum[i] = 1;
  }
  return s;
}

struct JudgeFixture {
  std::shared_ptr<Catalog> cat = MakeCatalog();
  PlacementConfig home;
  Candidates c;
  SensitiveGate gate{SensitiveConfig{}, cat->offers, cat->items};
  Customer customer;
  SensitiveCheck sensitive{gate, &customer, true};
  std::string id = "c1", channel = "web";

  JudgeFixture() { CollectCandidates(*cat, home, Request("home", "email"), kNow, &c); }
  JudgeContext Context(RuleRuntime* rules = nullptr) {
    JudgeContext ctx{home};
    ctx.fallback_propensity = 0.25;
    ctx.sensitive = &sensitive;
    ctx.rules = rules;
    ctx.customer = &id;
    ctx.channel = &channel;
    ctx.now_ms = kNow;
    return ctx;
  }
};

TEST(JudgeStage, PriorityIsPTimesCTimesVAndAbstainingFallsBack) {
  JudgeFixture f;  // o_a (10), o_b (40), o_promo (30)
  PluginScores scores = OnePlugin({0.8f, 0.2f, TAILOR_SCORE_ABSTAIN});
  Judgement j;
  Judge(f.Context(), f.c, scores, &j);
  EXPECT_DOUBLE_EQ(j.max_value, 40);
  EXPECT_DOUBLE_EQ(j.propensity[0], 0.8f);
  EXPECT_DOUBLE_EQ(j.propensity[2], 0.25);  // the fallback
  EXPECT_DOUBLE_EQ(j.priority[0], 0.8f * 1.0 * (10.0 / 40));
  EXPECT_DOUBLE_EQ(j.priority[1], 0.2f * 1.0 * 1.0);
  EXPECT_DOUBLE_EQ(j.priority[2], 0.25 * 1.0 * (30.0 / 40));
  EXPECT_THAT(j.eligible, ElementsAre(0, 1, 2));

  f.home.value_exponent = 0;  // V = 1 for all
  Judge(f.Context(), f.c, scores, &j);
  EXPECT_DOUBLE_EQ(j.priority[0], 0.8f);
}

TEST(JudgeStage, RulesVetoWithTheirReasonAndLeversScale) {
  JudgeFixture f;
  std::vector<std::string> errors;
  auto rules = RuleSet::FromSources({{"rules/t.lua", R"(
rule { name = "no_books",
       eligible = function(offer, customer, ctx)
         if offer.category == "books" and offer.id == "o_b" then return false, "no books" end
         return true end }
rule { name = "boost_toys",
       score = function(offer, p, customer, ctx)
         if offer.category == "toys" then return 2.0, "toys lover" end
         return 1.0 end }
)"}},
                                    {}, &errors);
  ASSERT_TRUE(rules) << (errors.empty() ? "" : errors[0]);
  RuleRuntime rt(rules, f.cat);
  ASSERT_TRUE(rt.ok());
  PluginScores scores = OnePlugin({0.5f, 0.5f, 0.5f});
  RuleRequest rr;
  rr.customer_id = "c1";
  rr.channel = "email";
  rr.placement = "home";
  rr.now_ms = kNow;
  rr.plugin_names = &scores.names;
  rr.plugin_scores = scores.scores.data();
  rr.plugin_ok = &scores.ok;
  rr.n_candidates = f.c.size();
  rt.Begin(rr);
  Judgement j;
  Judge(f.Context(&rt), f.c, scores, &j);
  rt.End();
  EXPECT_TRUE(j.vetoed[1]);
  EXPECT_DOUBLE_EQ(j.priority[1], 0.5);  // a vetoed candidate keeps its priority for the trace
  EXPECT_THAT(j.notes[1], ElementsAre(HasSubstr("no books")));
  EXPECT_DOUBLE_EQ(j.levers[0], 2.0);
  EXPECT_DOUBLE_EQ(j.priority[0], 0.5 * (10.0 / 40) * 2.0);
  EXPECT_THAT(j.notes[0], ElementsAre(HasSubstr("toys lover")));
  EXPECT_THAT(j.eligible, ElementsAre(0, 2));
}

TEST(JudgeStage, TheSensitiveGateVetoesBeforeRulesAndFailsClosed) {
  JudgeFixture f;
  f.cat->offers[0].tags["sensitive"] = "pregnancy";
  SensitiveGate gate(SensitiveConfig{}, f.cat->offers, f.cat->items);
  SensitiveCheck anonymous(gate, nullptr, false);
  JudgeContext ctx = f.Context();
  ctx.sensitive = &anonymous;
  Judgement j;
  Judge(ctx, f.c, OnePlugin({0.9f, 0.1f, 0.1f}), &j);
  EXPECT_TRUE(j.vetoed[0]);
  EXPECT_DOUBLE_EQ(j.priority[0], 0);
  ASSERT_FALSE(j.notes[0].empty());
  EXPECT_THAT(j.notes[0][0], HasSubstr("sensitive"));
  EXPECT_THAT(j.eligible, ElementsAre(1, 2));
}

TEST(JudgeStage, LargePlacementsJudgeOnlyTheBestAndShowNothingElse) {
  auto cat = MakeCatalog();
  PlacementConfig recs;
  recs.kind = PlacementConfig::Kind::kItems;
  recs.rules_candidates = 2;
  recs.value_exponent = 0;
  Candidates c;
  CollectCandidates(*cat, recs, Request("recs"), kNow, &c);
  std::vector<std::string> errors;
  auto rules = RuleSet::FromSources(
      {{"rules/t.lua", "rule { name = 'all', eligible = function(o, c, x) return true end }"}}, {},
      &errors);
  ASSERT_TRUE(rules);
  RuleRuntime rt(rules, cat);
  PluginScores scores = OnePlugin({0.1f, 0.9f, 0.5f});
  RuleRequest rr;
  rr.plugin_names = &scores.names;
  rr.plugin_scores = scores.scores.data();
  rr.plugin_ok = &scores.ok;
  rr.n_candidates = c.size();
  rt.Begin(rr);
  SensitiveGate gate(SensitiveConfig{}, cat->offers, cat->items);
  SensitiveCheck check(gate, nullptr, false);
  std::string id, channel = "web";
  JudgeContext ctx{recs};
  ctx.sensitive = &check;
  ctx.rules = &rt;
  ctx.customer = &id;
  ctx.channel = &channel;
  Judgement j;
  Judge(ctx, c, scores, &j);
  rt.End();
  EXPECT_THAT(j.evaluate, ElementsAre(0, 1, 1));
  EXPECT_THAT(j.eligible, ElementsAre(1, 2));
  EXPECT_DOUBLE_EQ(j.priority[0], 0.1f);  // ranked for the trace, never shown
}

TEST(ArbitrateStage, RanksByPriorityThenIdAndKeepsTheBest) {
  auto cat = MakeCatalog();
  PlacementConfig recs;
  recs.kind = PlacementConfig::Kind::kItems;
  Candidates c;
  CollectCandidates(*cat, recs, Request("recs"), kNow, &c);
  Judgement j;
  j.priority = {0.5, 0.5, 0.9};
  j.eligible = {0, 1, 2};
  std::vector<Ranked> ranked = Arbitrate(c, &j, 2);
  ASSERT_EQ(ranked.size(), 2u);
  EXPECT_EQ(ranked[0].id, "i3");
  EXPECT_EQ(ranked[1].id, "i1");  // the tie goes to the smaller id
  EXPECT_EQ(ranked[1].category, "toys");
  EXPECT_DOUBLE_EQ(ranked[0].priority, 0.9);
  EXPECT_EQ(Arbitrate(c, &j, 10).size(), 3u);  // never more than the eligible
}

struct PolicyFixture {
  std::shared_ptr<Catalog> cat = MakeCatalog();
  PlacementConfig home;
  Candidates c;
  Judgement j;
  Responses none;
  learning::PolicyScratch scratch;
  PolicyFixture() {
    CollectCandidates(*cat, home, Request("home", "email"), kNow, &c);  // o_a, o_b, o_promo
    j.max_value = 40;
    j.propensity = {0.5, 0.5, 0.5};
    j.levers = {1, 1, 1};
    j.priority = {0.125, 0.5, 0.375};
    j.vetoed = {0, 0, 0};
    j.eligible = {0, 1, 2};
  }
  std::vector<Ranked> Ranking() { return Arbitrate(c, &j, 3); }  // o_b, o_promo, o_a
  PolicyInput Input(uint64_t seed) { return PolicyInput{home, c, j, none, nullptr, seed}; }
};

TEST(PolicyStage, GreedyShowsTheRankedOrderWithCertainty) {
  PolicyFixture f;
  std::vector<Ranked> ranked = f.Ranking();
  PolicyPicks picks;
  ApplyPolicy(f.Input(1), 2, &ranked, &f.scratch, &picks);
  EXPECT_EQ(ranked[0].id, "o_b");
  EXPECT_EQ(ranked[1].id, "o_promo");
  EXPECT_THAT(picks.propensity, ElementsAre(1.0, 1.0));
  EXPECT_THAT(picks.explore, ElementsAre(0, 0));
  ApplyPolicy(f.Input(1), 10, &ranked, &f.scratch, &picks);
  EXPECT_EQ(picks.propensity.size(), 3u);
}

TEST(PolicyStage, UniformExplorationMovesItsPicksFirstWithExactPropensities) {
  PolicyFixture f;
  f.home.policy.kind = learning::PolicyConfig::Kind::kEpsilon;
  f.home.policy.exploration = 1.0;
  std::map<std::string, int> first;
  for (uint64_t seed = 1; seed <= 600; ++seed) {
    std::vector<Ranked> ranked = f.Ranking();
    PolicyPicks picks;
    ApplyPolicy(f.Input(seed), 2, &ranked, &f.scratch, &picks);
    ASSERT_EQ(ranked.size(), 3u);  // nothing lost: the rest follow the picks
    EXPECT_DOUBLE_EQ(picks.propensity[0], 1.0 / 3);
    EXPECT_DOUBLE_EQ(picks.propensity[1], 1.0 / 2);
    EXPECT_EQ(picks.explore[0] != 0, ranked[0].id != "o_b");
    ++first[ranked[0].id];
  }
  for (const char* id : {"o_a", "o_b", "o_promo"}) EXPECT_GT(first[id], 150) << id;
}

TEST(PriceStage, PricesOnlyShownOffersWithARangeOnAPricingPlacement) {
  PolicyFixture f;
  // o_a declares levels 0, 0.1, 0.2; o_b and o_promo declare none.
  f.cat->offers[0].discount = std::make_pair(0.0, 0.2);
  f.cat->offers[0].discount_step = 0.1;
  f.home.pricing = true;
  PricingConfig config;
  config.configured = true;
  pricing::Pricer pricer;
  pricer.Configure(config);
  const std::vector<Ranked> ranked = f.Ranking();  // o_b, o_promo, o_a
  const nlohmann::json facts = nlohmann::json::object();
  const std::string id = "d1";
  std::vector<pricing::Choice> prices;
  PriceShown({f.home, config, *f.cat, f.c, ranked, 3, nullptr, facts, id}, &pricer, &prices);
  ASSERT_EQ(prices.size(), 3u);
  EXPECT_FALSE(prices[0].priced);
  EXPECT_FALSE(prices[1].priced);
  ASSERT_TRUE(prices[2].priced);
  EXPECT_TRUE(prices[2].discount == 0 || prices[2].discount == 0.1 || prices[2].discount == 0.2);
  nlohmann::json offers =
      nlohmann::json::array({{{"offer", "o_b"}, {"why", nlohmann::json::object()}},
                             {{"offer", "o_promo"}, {"why", nlohmann::json::object()}},
                             {{"offer", "o_a"}, {"why", nlohmann::json::object()}}});
  ApplyPrices(prices, &offers);
  EXPECT_FALSE(offers[0].contains("discount"));
  EXPECT_FALSE(offers[1].contains("discount"));
  EXPECT_EQ(offers[2]["discount"], prices[2].discount);
  EXPECT_EQ(offers[2]["why"]["discount"]["level"], prices[2].discount);
  // Only the first shown position: o_a is not shown, nothing is priced.
  PriceShown({f.home, config, *f.cat, f.c, ranked, 1, nullptr, facts, id}, &pricer, &prices);
  EXPECT_FALSE(prices[0].priced);
  // A placement without pricing prices nothing.
  f.home.pricing = false;
  PriceShown({f.home, config, *f.cat, f.c, ranked, 3, nullptr, facts, id}, &pricer, &prices);
  for (const pricing::Choice& c : prices) EXPECT_FALSE(c.priced);
}

TEST(FinalizeStage, KeepsTheBestAndLetsFinalizeHooksTrim) {
  auto cat = MakeCatalog();
  std::vector<std::string> errors;
  auto rules = RuleSet::FromSources({{"rules/f.lua", R"(
rule { name = "first_two",
       finalize = function(offers, customer, ctx) return { offers[2], offers[1] } end }
)"}},
                                    {}, &errors);
  ASSERT_TRUE(rules) << (errors.empty() ? "" : errors[0]);
  RuleRuntime rt(rules, cat);
  RuleRequest rr;
  rt.Begin(rr);
  std::vector<Ranked> ranked = {
      {0, "o_a", 0.9, "toys"}, {1, "o_b", 0.5, "books"}, {3, "o_promo", 0.4, "books"}};
  std::vector<std::string> notes;
  FinalizeRanked(&rt, 3, &ranked, &notes);
  ASSERT_EQ(ranked.size(), 2u);
  EXPECT_EQ(ranked[0].id, "o_b");
  EXPECT_EQ(ranked[1].id, "o_a");
  EXPECT_THAT(notes, ElementsAre(HasSubstr("first_two")));

  std::vector<Ranked> plain = {{0, "o_a", 0.9, ""}, {1, "o_b", 0.5, ""}};
  FinalizeRanked(nullptr, 1, &plain, &notes);
  EXPECT_EQ(plain.size(), 1u);
}

TEST(ExplainStage, WhyCarriesEveryFactorAndTheTraceEveryCandidate) {
  JudgeFixture f;
  PluginScores scores = OnePlugin({0.8f, 0.2f, TAILOR_SCORE_ABSTAIN});
  std::snprintf(scores.reasons.data(), kReasonCap, "%s", "liked toys");
  Judgement j;
  Judge(f.Context(), f.c, scores, &j);
  j.vetoed[1] = 1;  // as if a rule had vetoed o_b
  j.notes[1] = {"r: no"};
  j.eligible = {0, 2};
  std::vector<Ranked> ranked = Arbitrate(f.c, &j, 2);
  const nlohmann::json dropped = {{"cf", "not loaded: missing"}};
  const nlohmann::json facts = {{"customer", {{"dna", {{"x", "high"}}}}}};
  std::vector<Diversified> diversified = {{2, 0, 0.1, 0.7}};
  ExplainInput in{f.home, f.c, scores, j, ranked, diversified, dropped, facts};

  nlohmann::json why = WhyOf(in, 0);
  EXPECT_DOUBLE_EQ(why["priority"].get<double>(), j.priority[0]);
  EXPECT_DOUBLE_EQ(why["propensity"].get<double>(), j.propensity[0]);
  EXPECT_DOUBLE_EQ(why["value"].get<double>(), 0.25);
  EXPECT_DOUBLE_EQ(why["business_value"].get<double>(), 10);
  EXPECT_EQ(why["dropped"], dropped);
  EXPECT_FALSE(why.contains("fallback"));
  EXPECT_THAT(WhyOf(in, 2)["fallback"].get<std::string>(), HasSubstr("every plugin abstained"));
  EXPECT_EQ(WhyOf(in, 2)["diversity"]["similar_to"], "o_a");

  nlohmann::json shown = ShownOffers(in, 1);
  ASSERT_EQ(shown.size(), 1u);
  EXPECT_EQ(shown[0]["offer"], "o_a");
  EXPECT_EQ(shown[0]["rank"], 1);
  EXPECT_EQ(shown[0]["why"]["facts"], facts);

  nlohmann::json trace = DecisionTrace(in, 1, 7, {"note"});
  EXPECT_EQ(trace["snapshot"], 7);
  EXPECT_EQ(trace["suppressed"], 1);
  ASSERT_EQ(trace["entries"].size(), 3u);
  EXPECT_EQ(trace["entries"][0]["status"], "suppressed");
  EXPECT_EQ(trace["entries"][0]["offer"], "o_b");
  EXPECT_EQ(trace["entries"][1]["status"], "shown");
  EXPECT_EQ(trace["entries"][2]["status"], "not chosen");
  EXPECT_EQ(trace["finalize"][0], "note");
  // Stored as a compact record and rendered when read: the same text.
  const std::string record = EncodeTrace(in, 1, 7, {"note"});
  EXPECT_TRUE(IsEncodedTrace(record));
  EXPECT_EQ(RenderTrace(record),
            trace.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  // A damaged record is refused, never read past its end; JSON passes as is.
  EXPECT_FALSE(RenderTrace(record.substr(0, record.size() / 2)).has_value());
  EXPECT_EQ(RenderTrace(R"({"entries":[]})"), R"({"entries":[]})");
}

TEST(ExplainStage, TheTraceRecordKeepsTheDecisionsTotalsWithoutEveryCandidate) {
  // 400 candidates: 300 vetoed (the trace keeps 200), 100 eligible of which
  // 60 are ranked; one diversity note.
  const size_t n = 400;
  std::vector<std::string> ids;
  for (size_t i = 0; i < n; ++i) ids.push_back("o" + std::to_string(i));
  Candidates c;
  Judgement j;
  std::vector<float> raw;
  for (size_t i = 0; i < n; ++i) {
    c.list.push_back({ids[i].c_str(), nullptr, "cat"});
    c.context.push_back(1.0);
    c.values.push_back(10.0 + static_cast<double>(i));
    raw.push_back(static_cast<float>(i % 7) / 7.0f);
    const bool vetoed = i % 4 != 3;
    j.propensity.push_back(0.5);
    j.levers.push_back(1.0);
    j.priority.push_back(vetoed ? 0.0 : static_cast<double>(i));
    j.vetoed.push_back(vetoed);
    j.evaluate.push_back(1);
    j.notes.push_back(vetoed ? std::vector<std::string>{"r: no " + ids[i]}
                             : std::vector<std::string>{});
    if (!vetoed) j.eligible.push_back(i);
  }
  j.max_value = 10.0 + n;
  c.excluded_total = 2;
  PluginScores scores = OnePlugin(raw);
  for (size_t i = 0; i < n; ++i)
    std::snprintf(scores.reasons.data() + i * kReasonCap, kReasonCap, "reason %zu", i);
  std::vector<Ranked> ranked = Arbitrate(c, &j, 60);
  ASSERT_EQ(ranked.size(), 60u);
  std::vector<Diversified> diversified = {{ranked[2].candidate, ranked[0].candidate, 0.2, 0.9}};
  PlacementConfig placement;
  const nlohmann::json dropped = nlohmann::json::object(), facts = nlohmann::json::object();
  ExplainInput in{placement, c, scores, j, ranked, diversified, dropped, facts};
  const nlohmann::json trace = DecisionTrace(in, 3, 9, {});
  EXPECT_EQ(trace["candidates"], n);
  EXPECT_EQ(trace["suppressed"], 302);
  EXPECT_EQ(trace["entries"].size(), 260u);
  const std::string record = EncodeTrace(in, 3, 9, {});
  EXPECT_EQ(RenderTrace(record),
            trace.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  // The record holds the 260 named candidates, not all 400, and no JSON.
  EXPECT_LT(record.size(), trace.dump().size() / 2);
}

}  // namespace
}  // namespace tailor
