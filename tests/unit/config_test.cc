#include "config/config.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/utf8.h"
#include "support/temp_dir.h"

namespace tailor {
namespace {

using testing::TempDir;
using testing::WriteFile;

std::string Join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += x + "\n";
  return s;
}

TEST(Config, ShippedConfigLoads) {
  std::vector<std::string> errors;
  auto cfg =
      LoadConfig(std::string(TAILOR_SOURCE_DIR) + "/config/tailor.yaml", "/plugins", &errors);
  ASSERT_TRUE(cfg.has_value()) << Join(errors);
  EXPECT_GE(cfg->offers.size(), 10u);
  ASSERT_EQ(cfg->plugins.size(), 5u);
  EXPECT_EQ(cfg->plugins[0].path, "/plugins/tailor_popularity.so");
  EXPECT_EQ(cfg->plugins[1].path, "/plugins/tailor_cf.so");
  // ${config_dir} in a plugin's config is the folder of tailor.yaml.
  EXPECT_EQ(nlohmann::json::parse(cfg->plugins[3].config_json)["traits"],
            std::string(TAILOR_SOURCE_DIR) + "/config/dna.yaml");
  EXPECT_EQ(nlohmann::json::parse(cfg->plugins[0].config_json)["half_life_days"], 14);
  EXPECT_EQ(cfg->placements.at("recs").kind, PlacementConfig::Kind::kItems);
  EXPECT_GT(cfg->placements.at("recs").diversity, 0);
  EXPECT_EQ(cfg->placements.at("recs").diversity_by, "cf");
  EXPECT_EQ(cfg->placements.at("home").diversity, 0);  // off unless asked for
}

TEST(Utf8, FindsTheFirstByteThatIsNotUtf8) {
  EXPECT_EQ(InvalidUtf8At("plain ascii"), std::string::npos);
  EXPECT_EQ(InvalidUtf8At("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"), std::string::npos);
  EXPECT_EQ(InvalidUtf8At("ab\xFF"), 2u);            // never valid
  EXPECT_EQ(InvalidUtf8At("a\xC3"), 1u);             // cut short
  EXPECT_EQ(InvalidUtf8At("a\xC0\xAF"), 1u);         // overlong '/'
  EXPECT_EQ(InvalidUtf8At("\xED\xA0\x80"), 0u);      // a surrogate
  EXPECT_EQ(InvalidUtf8At("\xF4\x90\x80\x80"), 0u);  // past U+10FFFF
  EXPECT_EQ(InvalidUtf8At("\xE2\x28\xA1"), 0u);      // bad continuation
}

TEST(Config, YamlThatIsNotUtf8IsRefusedAtItsLineAndColumn) {
  TempDir dir;
  WriteFile(dir.file("tailor.yaml"), "store:\n  path: \"t\xFF.db\"\n");
  std::vector<std::string> errors;
  EXPECT_FALSE(LoadConfig(dir.file("tailor.yaml"), "/plugins", &errors).has_value());
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0], dir.file("tailor.yaml") + ":2:11: not valid UTF-8 (byte 0xFF)");
}

TEST(Config, RuleLimitsIncludeARequestBudget) {
  TempDir dir;
  WriteFile(dir.file("t.yaml"),
            "placements:\n  home: {kind: offers}\n"
            "rule_limits:\n  time_us: 2000\n  request_time_us: 7000\n");
  std::vector<std::string> errors;
  auto cfg = LoadConfig(dir.file("t.yaml"), "", &errors);
  ASSERT_TRUE(cfg.has_value()) << Join(errors);
  EXPECT_EQ(cfg->rule_limits.time_us, 2000);
  EXPECT_EQ(cfg->rule_limits.request_time_us, 7000);
  WriteFile(dir.file("bad.yaml"),
            "placements:\n  home: {kind: offers}\n"
            "rule_limits:\n  request_time_us: 5\n");
  errors.clear();
  EXPECT_FALSE(LoadConfig(dir.file("bad.yaml"), "", &errors).has_value());
  EXPECT_NE(Join(errors).find(dir.file("bad.yaml") + ":4:20: rule_limits.request_time_us"),
            std::string::npos)
      << Join(errors);
}

TEST(Config, PlacementDiversity) {
  TempDir dir;
  WriteFile(dir.file("t.yaml"),
            "plugins:\n"
            "  - {name: cf}\n"
            "placements:\n"
            "  recs:\n"
            "    kind: items\n"
            "    diversity: {lambda: 0.1, pool: 40, by: cf}\n");
  std::vector<std::string> errors;
  auto cfg = LoadConfig(dir.file("t.yaml"), "", &errors);
  ASSERT_TRUE(cfg.has_value()) << Join(errors);
  EXPECT_EQ(cfg->placements.at("recs").diversity, 0.1);
  EXPECT_EQ(cfg->placements.at("recs").diversity_pool, 40u);
  EXPECT_EQ(cfg->placements.at("recs").diversity_by, "cf");

  // A number alone is the lambda.
  WriteFile(dir.file("short.yaml"), "placements:\n  recs: {kind: items, diversity: 0.2}\n");
  cfg = LoadConfig(dir.file("short.yaml"), "", &errors);
  ASSERT_TRUE(cfg.has_value()) << Join(errors);
  EXPECT_EQ(cfg->placements.at("recs").diversity, 0.2);
  EXPECT_EQ(cfg->placements.at("recs").diversity_pool, 60u);
  EXPECT_EQ(cfg->placements.at("recs").diversity_by, "");

  WriteFile(dir.file("bad.yaml"),
            "plugins:\n"
            "  - {name: cf}\n"
            "placements:\n"
            "  recs:\n"
            "    kind: items\n"
            "    diversity: {lambda: -1, pool: 1, by: cff, depth: 3}\n");
  errors.clear();
  EXPECT_FALSE(LoadConfig(dir.file("bad.yaml"), "", &errors).has_value());
  const std::string all = Join(errors), b = dir.file("bad.yaml");
  EXPECT_NE(all.find(b + ":6:25: placements.recs.diversity.lambda: must be between 0"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("placements.recs.diversity.pool: must be between 2"), std::string::npos)
      << all;
  EXPECT_NE(all.find("placements.recs.diversity.by: no plugin 'cff' is configured"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("placements.recs.diversity.depth: unknown key"), std::string::npos) << all;
}

TEST(Config, PlacementPluginWeights) {
  TempDir dir;
  WriteFile(dir.file("t.yaml"),
            "plugins:\n"
            "  - {name: popularity, weight: 0.1}\n"
            "  - {name: cf}\n"
            "placements:\n"
            "  pop:\n"
            "    kind: offers\n"
            "    plugin_weights: {popularity: 1.0, cf: 0}\n"
            "  home: {kind: offers}\n");
  std::vector<std::string> errors;
  auto cfg = LoadConfig(dir.file("t.yaml"), "", &errors);
  ASSERT_TRUE(cfg.has_value()) << Join(errors);
  const auto& w = cfg->placements.at("pop").plugin_weights;
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w.at("popularity"), 1.0);
  EXPECT_EQ(w.at("cf"), 0.0);
  EXPECT_TRUE(cfg->placements.at("home").plugin_weights.empty());  // the plugins' own weights

  // An unknown plugin names the configured ones; a bad weight is a range error;
  // both with file:line:col and the key path.
  WriteFile(dir.file("bad.yaml"),
            "plugins:\n"
            "  - {name: popularity}\n"
            "  - {name: cf}\n"
            "placements:\n"
            "  pop:\n"
            "    plugin_weights: {popularty: 1, cf: -2}\n"
            "  list:\n"
            "    plugin_weights: [popularity]\n");
  errors.clear();
  EXPECT_FALSE(LoadConfig(dir.file("bad.yaml"), "", &errors).has_value());
  const std::string all = Join(errors), b = dir.file("bad.yaml");
  EXPECT_NE(all.find(b + ":6:22: placements.pop.plugin_weights.popularty: no plugin 'popularty' is "
                         "configured (known: popularity, cf)"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find(b + ":6:40: placements.pop.plugin_weights.cf: must be between 0 and 1000"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find(b + ":8:21: placements.list.plugin_weights: expected a mapping"),
            std::string::npos)
      << all;
  EXPECT_EQ(all.find("unknown key"), std::string::npos) << all;  // reported once, not twice
}

TEST(Config, PlacementFeedbackContract) {
  TempDir dir;
  WriteFile(dir.file("t.yaml"),
            "placements:\n"
            "  home: {kind: offers}\n"
            "  app:\n"
            "    impressions: explicit\n"
            "    attribution_hours: 2.5\n"
            "  web: {impressions: on_decide, attribution_hours: 0}\n");
  std::vector<std::string> errors;
  auto cfg = LoadConfig(dir.file("t.yaml"), "", &errors);
  ASSERT_TRUE(cfg.has_value()) << Join(errors);
  using Imp = PlacementConfig::Impressions;
  EXPECT_EQ(cfg->placements.at("home").impressions, Imp::kOnDecide);  // the default
  EXPECT_EQ(cfg->placements.at("home").attribution_hours, 24.0);
  EXPECT_EQ(cfg->placements.at("app").impressions, Imp::kExplicit);
  EXPECT_EQ(cfg->placements.at("app").attribution_hours, 2.5);
  EXPECT_EQ(cfg->placements.at("web").impressions, Imp::kOnDecide);
  EXPECT_EQ(cfg->placements.at("web").attribution_hours, 0.0);

  WriteFile(dir.file("bad.yaml"),
            "placements:\n"
            "  app:\n"
            "    impressions: rendered\n"
            "    attribution_hours: -1\n"
            "  web: {attribution_hours: soon}\n");
  errors.clear();
  EXPECT_FALSE(LoadConfig(dir.file("bad.yaml"), "", &errors).has_value());
  const std::string all = Join(errors), b = dir.file("bad.yaml");
  EXPECT_NE(all.find(b + ":3:18: placements.app.impressions: expected on_decide or explicit, got "
                         "'rendered'"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find(b + ":4:24: placements.app.attribution_hours: must be between 0 and 8760"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find(b + ":5:28: placements.web.attribution_hours: expected a number"),
            std::string::npos)
      << all;
}

TEST(Config, PlacementResponse) {
  TempDir dir;
  WriteFile(dir.file("t.yaml"),
            "placements:\n"
            "  home:\n"
            "    response: {learn: true, half_life_days: 7, prior_strength: 50,\n"
            "               segment_traits: [deal_seeker]}\n"
            "  email: {kind: offers}\n");
  std::vector<std::string> errors;
  auto cfg = LoadConfig(dir.file("t.yaml"), "", &errors);
  ASSERT_TRUE(cfg.has_value()) << Join(errors);
  EXPECT_TRUE(cfg->placements.at("home").response.learn);
  EXPECT_FALSE(cfg->placements.at("email").response.learn);  // the blend unless asked
  EXPECT_EQ(cfg->placements.at("home").response.half_life_days, 7);
  EXPECT_EQ(cfg->placements.at("home").response.prior_strength, 50);
  EXPECT_EQ(cfg->placements.at("home").response.segment_traits,
            std::vector<std::string>{"deal_seeker"});
  // Defaults: 14 days, 20 pseudo-impressions, every trait.
  EXPECT_EQ(cfg->placements.at("email").response.half_life_days, 14);
  EXPECT_EQ(cfg->placements.at("email").response.prior_strength, 20);
  EXPECT_TRUE(cfg->placements.at("email").response.segment_traits.empty());

  WriteFile(dir.file("bad.yaml"),
            "placements:\n"
            "  home:\n"
            "    response: {half_life_days: 0, prior_strength: -1, decay: 3}\n");
  errors.clear();
  EXPECT_FALSE(LoadConfig(dir.file("bad.yaml"), "", &errors).has_value());
  const std::string all = Join(errors), b = dir.file("bad.yaml");
  EXPECT_NE(all.find(b + ":3:32: placements.home.response.half_life_days: must be between 0.01"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find(b + ":3:51: placements.home.response.prior_strength: must be between 0"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("placements.home.response.decay: unknown key"), std::string::npos) << all;
}

TEST(Config, PlacementPolicy) {
  using Kind = learning::PolicyConfig::Kind;
  TempDir dir;
  WriteFile(dir.file("t.yaml"),
            "placements:\n"
            "  home: {kind: offers, policy: {kind: thompson, exploration: 0.2, samples: 100}}\n"
            "  hero: {kind: offers, policy: epsilon}\n"
            "  recs: {kind: items}\n");
  std::vector<std::string> errors;
  auto cfg = LoadConfig(dir.file("t.yaml"), "", &errors);
  ASSERT_TRUE(cfg.has_value()) << Join(errors);
  const learning::PolicyConfig& home = cfg->placements.at("home").policy;
  EXPECT_EQ(home.kind, Kind::kThompson);
  EXPECT_EQ(home.exploration, 0.2);
  EXPECT_EQ(home.samples, 100u);
  // The kind alone keeps the defaults; no policy is greedy.
  const learning::PolicyConfig& hero = cfg->placements.at("hero").policy;
  EXPECT_EQ(hero.kind, Kind::kEpsilon);
  EXPECT_EQ(hero.exploration, 0.1);
  EXPECT_EQ(hero.samples, 64u);
  EXPECT_EQ(cfg->placements.at("recs").policy.kind, Kind::kGreedy);

  WriteFile(dir.file("bad.yaml"),
            "placements:\n"
            "  home:\n"
            "    policy: {kind: ucb, exploration: 1.5, samples: 0, temperature: 2}\n"
            "  hero: {policy: bandit}\n");
  errors.clear();
  EXPECT_FALSE(LoadConfig(dir.file("bad.yaml"), "", &errors).has_value());
  const std::string all = Join(errors), b = dir.file("bad.yaml");
  EXPECT_NE(all.find(b + ":3:20: placements.home.policy.kind: expected greedy, thompson, "
                         "linear_ts or epsilon, got 'ucb'"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("placements.home.policy.exploration: must be between 0 and 1"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("placements.home.policy.samples: must be between 1 and 4096"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("placements.home.policy.temperature: unknown key"), std::string::npos) << all;
  EXPECT_NE(all.find(b + ":4:18: placements.hero.policy: expected greedy, thompson, linear_ts "
                         "or epsilon, got 'bandit'"),
            std::string::npos)
      << all;
}

TEST(Config, CollectsEveryErrorWithFileLineColAndKeyPath) {
  TempDir dir;
  WriteFile(dir.file("t.yaml"),
            "service:\n"
            "  workers: 0\n"
            "  colour: blue\n"
            "store:\n"
            "  synchronous: sometimes\n"
            "placements:\n"
            "  home: {kind: offers}\n"
            "offers: offers.yaml\n");
  WriteFile(dir.file("offers.yaml"),
            "offers:\n"
            "  - id: a\n"
            "    value: -3\n"
            "  - id: a\n"
            "  - name: no id\n"
            "    promotes: {item: i1, category: c}\n"
            "  - id: b\n"
            "    placements: [nowhere]\n"
            "    valid: {from: 2026-02-01, until: 2026-01-01}\n");
  std::vector<std::string> errors;
  EXPECT_FALSE(LoadConfig(dir.file("t.yaml"), "", &errors).has_value());
  std::string all = Join(errors);
  std::string t = dir.file("t.yaml"), o = dir.file("offers.yaml");
  EXPECT_NE(all.find(t + ":2:12: service.workers: must be between 1 and 256"), std::string::npos)
      << all;
  EXPECT_NE(all.find(t + ":3:3: service.colour: unknown key (valid: requests, events"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find(t + ":5:16: store.synchronous: expected full or normal"), std::string::npos)
      << all;
  EXPECT_NE(all.find(o + ":3:12: offers[0].value: must be between 0"), std::string::npos) << all;
  EXPECT_NE(all.find("offers[1].id: offer 'a' is already defined at " + o + ":2"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("offers[2].id: required key is missing"), std::string::npos) << all;
  EXPECT_NE(all.find("offers[2].promotes: set exactly one of item, category, content"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("offers[3].valid.until: ends before it starts"), std::string::npos) << all;
}

TEST(Config, YamlSyntaxErrorHasPosition) {
  TempDir dir;
  WriteFile(dir.file("t.yaml"), "placements:\n  home: {kind: offers\n");
  std::vector<std::string> errors;
  EXPECT_FALSE(LoadConfig(dir.file("t.yaml"), "", &errors).has_value());
  ASSERT_FALSE(errors.empty());
  EXPECT_EQ(errors[0].rfind(dir.file("t.yaml") + ":", 0), 0u) << errors[0];
}

TEST(Config, SuppressionPolicies) {
  TempDir dir;
  WriteFile(dir.file("t.yaml"),
            "placements:\n  home: {kind: offers}\n  recs: {kind: items}\n"
            "suppression:\n"
            "  - name: rejects\n"
            "    offers: [o_a, o_b]\n"
            "    dismissals: 3\n"
            "    within_days: 7\n"
            "    suppress_days: 5\n"
            "  - name: fatigue\n"
            "    placements: recs\n"
            "    categories: [toys]\n"
            "    impressions_without_click: 6\n"
            "    within_days: 14\n"
            "    suppress_days: 2\n");
  std::vector<std::string> errors;
  auto cfg = LoadConfig(dir.file("t.yaml"), "", &errors);
  ASSERT_TRUE(cfg.has_value()) << Join(errors);
  ASSERT_EQ(cfg->suppression.size(), 2u);
  const SuppressionPolicy& r = cfg->suppression[0];
  EXPECT_EQ(r.name, "rejects");
  EXPECT_EQ(r.offers, (std::vector<std::string>{"o_a", "o_b"}));
  EXPECT_EQ(r.trigger, SuppressionPolicy::Trigger::kDismissals);
  EXPECT_EQ(r.threshold, 3);
  EXPECT_EQ(r.within_days, 7);
  EXPECT_EQ(r.suppress_days, 5);
  EXPECT_EQ(r.offers_where, dir.file("t.yaml") + ":6:13");
  const SuppressionPolicy& f = cfg->suppression[1];
  EXPECT_EQ(f.trigger, SuppressionPolicy::Trigger::kImpressionsWithoutClick);
  EXPECT_EQ(f.threshold, 6);
  EXPECT_EQ(f.placements, (std::vector<std::string>{"recs"}));
  EXPECT_EQ(f.categories, (std::vector<std::string>{"toys"}));
}

TEST(Config, SuppressionErrorsHavePositions) {
  TempDir dir;
  const std::string file = dir.file("bad.yaml");
  WriteFile(file,
            "store: {history_days: 10}\n"                                       // 1
            "placements:\n  home: {kind: offers}\n"                             // 2-3
            "suppression:\n"                                                    // 4
            "  - {name: a, dismissals: 3, within_days: 7, suppress_days: 5}\n"  // 5: 12 > 10
            "  - {name: b, within_days: 1, suppress_days: 1}\n"                 // 6: no trigger
            "  - {name: c, dismissals: 1, impressions_without_click: 2, within_days: 1, "
            "suppress_days: 1}\n"  // 7: both
            "  - {name: d, placements: [hmoe], dismissals: 1, within_days: 1, "
            "suppress_days: 1}\n"                                                        // 8
            "  - {name: d, dismissals: 0, within_days: 1, suppress_days: 1, oops: 1}\n"  // 9
            "  - {name: e, dismissals: 1, within_days: 1}\n");                           // 10
  std::vector<std::string> errors;
  EXPECT_FALSE(LoadConfig(file, "", &errors).has_value());
  const std::string all = Join(errors);
  for (const std::string& want :
       {file + ":5:43: suppression[0].within_days: within_days + suppress_days (12) exceed "
               "store.history_days (10)",
        file + ":6:5: suppression[1]: set one of dismissals, impressions_without_click",
        file + ":7:57: suppression[2].impressions_without_click: set one of dismissals, "
               "impressions_without_click, not both",
        file + ":8:27: suppression[3].placements: unknown placement 'hmoe' (known: home)",
        file + ":9:27: suppression[4].dismissals: must be between 1 and 1000000, got 0",
        file + ":9:64: suppression[4].oops: unknown key",
        file + ":9:12: suppression[4].name: policy 'd' is already defined at " + file + ":8:5",
        file + ":10:5: suppression[5].suppress_days: required key is missing"})
    EXPECT_NE(all.find(want), std::string::npos) << "want: " << want << "\n" << all;
  WriteFile(dir.file("notalist.yaml"),
            "placements:\n  home: {kind: offers}\nsuppression: {name: a}\n");
  errors.clear();
  EXPECT_FALSE(LoadConfig(dir.file("notalist.yaml"), "", &errors).has_value());
  EXPECT_NE(Join(errors).find(":3:14: suppression: expected a list of policies"), std::string::npos)
      << Join(errors);
}

TEST(Config, UnknownOfferPlacementListsKnownOnes) {
  TempDir dir;
  WriteFile(dir.file("t.yaml"), "placements:\n  home: {}\n  side: {}\noffers: o.yaml\n");
  WriteFile(dir.file("o.yaml"), "offers:\n  - id: x\n    placements: [hmoe]\n");
  std::vector<std::string> errors;
  EXPECT_FALSE(LoadConfig(dir.file("t.yaml"), "", &errors).has_value());
  EXPECT_NE(Join(errors).find("unknown placement 'hmoe' (known: home, side)"), std::string::npos)
      << Join(errors);
}

}  // namespace
}  // namespace tailor
