// The plugin-facing decision stages (decision/stages.h) with real plugins
// loaded by dlopen: score, annotate, the second explain call and diversify.
// A failing plugin drops out of the one decision and is named in `dropped`.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "decision/stages.h"
#include "metrics/metrics.h"
#include "plugin_test_util.h"

namespace tailor {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::unique_ptr<LoadedPlugin> LoadFixture(const std::string& name, double weight,
                                          const std::string& config = "{}") {
  PluginSpec spec;
  spec.name = name;
  spec.path = testing::FixturePath(name);
  spec.weight = weight;
  spec.config_json = config;
  std::string err;
  auto p = LoadedPlugin::Load(spec, nullptr, "", &err);
  EXPECT_NE(p, nullptr) << err;
  return p;
}

// Item candidates i<N> for the given numbers.
struct ItemCandidates {
  std::vector<std::string> ids;
  Candidates c;
  explicit ItemCandidates(const std::vector<int>& numbers) {
    for (int n : numbers) ids.push_back("i" + std::to_string(n));
    for (const auto& id : ids) {
      c.list.push_back(tailor_candidate{nullptr, id.c_str(), nullptr});
      c.offer_index.push_back(-1);
      c.item_index.push_back(static_cast<int>(c.item_index.size()));
      c.values.push_back(1);
      c.context.push_back(1);
    }
  }
};

TEST(ScoreStage, BlendsWeightedScoresSkipsAbstentionsAndDropsAFailingPlugin) {
  PluginList plugins;
  plugins.push_back(LoadFixture("similar", 1.0));
  plugins.push_back(LoadFixture("abstains", 3.0));
  plugins.push_back(LoadFixture("score_error", 5.0));
  ASSERT_TRUE(plugins[0] && plugins[1] && plugins[2]);
  ItemCandidates items({40, 20, 10});
  tailor_request_view view = testing::MakeRequest();
  Metrics metrics;
  nlohmann::json dropped = nlohmann::json::object();
  PluginScores s;
  ScoreCandidates(PluginCall{plugins, view, &metrics, &dropped}, items.c, false, {}, &s);
  EXPECT_THAT(s.ok, ElementsAre(true, true, false));
  EXPECT_THAT(dropped["score_error"].get<std::string>(), HasSubstr("model not ready"));
  EXPECT_EQ(metrics.counters.Get("plugin_errors.score_error"), 1);
  EXPECT_DOUBLE_EQ(s.weight_total, 4.0);
  // i40: similar 0.4 (w 1) and abstains 0.75 (w 3); i20: abstains abstained.
  EXPECT_NEAR(s.Blend(0, 0.5), (0.4 + 3 * 0.75) / 4, 1e-6);
  EXPECT_NEAR(s.Blend(1, 0.5), 0.2, 1e-6);
  // The host clamps abstains' out-of-range -2.5 to 0.
  EXPECT_NEAR(s.Blend(2, 0.5), (0.1 + 3 * 0) / 4, 1e-6);
  EXPECT_STREQ(s.reason(0, 0), "number 40");
  EXPECT_FLOAT_EQ(s.score(1, 1), TAILOR_SCORE_ABSTAIN);

  // A placement's plugin_weights override the plugins' own weights.
  ScoreCandidates(PluginCall{plugins, view, &metrics, &dropped}, items.c, false,
                  {{"abstains", 0.0}, {"similar", 2.0}}, &s);
  EXPECT_THAT(s.weights, ElementsAre(2.0, 0.0, 5.0));
  EXPECT_NEAR(s.Blend(0, 0.5), 0.4, 1e-6);
  EXPECT_DOUBLE_EQ(s.weight_total, 2.0);
}

TEST(ScoreStage, LargePlacementsExplainOnlyTheNamedCandidatesInASecondCall) {
  PluginList plugins;
  plugins.push_back(LoadFixture("similar", 1.0));
  ASSERT_TRUE(plugins[0]);
  std::vector<int> numbers;
  for (int n = 1; n <= 300; ++n) numbers.push_back(n);
  ItemCandidates items(numbers);
  ASSERT_TRUE(ExplainAfter(items.c.size(), 3));
  ASSERT_FALSE(ExplainAfter(12, 3));
  // "mute": the plugin fails any score call that asks for reasons, so the
  // first call must not ask.
  nlohmann::json context = {{"mute", true}};
  const std::string context_text = context.dump();
  tailor_request_view view = testing::MakeRequest();
  view.context_json = context_text.c_str();
  Metrics metrics;
  nlohmann::json dropped = nlohmann::json::object();
  const PluginCall call{plugins, view, &metrics, &dropped};
  PluginScores s;
  ScoreCandidates(call, items.c, true, {}, &s);
  EXPECT_TRUE(s.ok[0]);
  EXPECT_TRUE(dropped.empty());
  EXPECT_STREQ(s.reason(0, 41), "");  // nothing explained yet

  Judgement j;
  j.vetoed.assign(items.c.size(), 0);
  j.vetoed[7] = 1;
  std::vector<Ranked> ranked = {{41, "i42", 0.42, ""}, {99, "i100", 0.9, ""}};
  view.context_json = "{}";
  ExplainNamed(call, items.c, ranked, j, &s);
  EXPECT_STREQ(s.reason(0, 41), "number 42");
  EXPECT_STREQ(s.reason(0, 99), "number 100");
  EXPECT_STREQ(s.reason(0, 7), "number 8");  // the suppressed are named too
  EXPECT_STREQ(s.reason(0, 5), "");          // the rest are not
  EXPECT_EQ(s.explained.size(), 3u);
}

TEST(AnnotateStage, MergesFactsWithTheRequestContextWinning) {
  PluginList plugins;
  plugins.push_back(LoadFixture("facts", 1.0));
  ASSERT_TRUE(plugins[0]);
  tailor_request_view view = testing::MakeRequest();
  view.customer_id = "c1";
  view.known_customer = 1;
  view.context_json = R"({"message":"I want to cancel"})";
  Metrics metrics;
  nlohmann::json dropped = nlohmann::json::object();
  const PluginCall call{plugins, view, &metrics, &dropped};
  nlohmann::json facts = AnnotateFacts(call, nlohmann::json::object());
  EXPECT_EQ(facts["customer"]["dna"]["deal_seeker"], "high");
  EXPECT_EQ(facts["context"]["intent"], "cancel");
  // The application's own intent wins over the plugin's.
  facts = AnnotateFacts(call, {{"intent", "upgrade"}});
  EXPECT_FALSE(facts["context"].contains("intent"));
  EXPECT_EQ(facts["context"]["intent_confidence"], 0.9);

  view.context_json = R"({"message":"boom"})";
  facts = AnnotateFacts(call, nlohmann::json::object());
  EXPECT_TRUE(dropped.contains("facts.facts"));
  EXPECT_FALSE(facts.contains("context"));
}

TEST(DiversifyStage, MovesAlikeItemsDownAndSaysWhyWhenItCannot) {
  PluginList plugins;
  plugins.push_back(LoadFixture("similar", 1.0));
  ASSERT_TRUE(plugins[0]);
  ItemCandidates items({29, 28, 15});
  tailor_request_view view = testing::MakeRequest();
  Metrics metrics;
  nlohmann::json dropped = nlohmann::json::object();
  const PluginCall call{plugins, view, &metrics, &dropped};
  PlacementConfig recs;
  recs.kind = PlacementConfig::Kind::kItems;
  recs.diversity = 0.5;
  std::vector<Ranked> ranked = {{0, "i29", 0.29, ""}, {1, "i28", 0.28, ""}, {2, "i15", 0.15, ""}};
  DiversityScratch scratch;
  std::vector<Diversified> moved = DiversifyRanked(recs, 3, call, items.c, &scratch, &ranked);
  ASSERT_EQ(ranked.size(), 3u);
  EXPECT_EQ(ranked[0].id, "i29");
  EXPECT_EQ(ranked[1].id, "i15");  // i28 is just like i29
  ASSERT_EQ(moved.size(), 1u);
  EXPECT_EQ(moved[0].candidate, 1u);
  EXPECT_EQ(moved[0].similar_to, 0u);
  EXPECT_EQ(metrics.counters.Get("diversity.applied"), 1);

  recs.diversity_by = "cf";  // not loaded
  ranked = {{0, "i29", 0.29, ""}, {1, "i28", 0.28, ""}};
  EXPECT_TRUE(DiversifyRanked(recs, 2, call, items.c, &scratch, &ranked).empty());
  EXPECT_EQ(ranked[1].id, "i28");
  EXPECT_THAT(dropped["diversity"].get<std::string>(), HasSubstr("'cf' is not loaded"));
}

}  // namespace
}  // namespace tailor
