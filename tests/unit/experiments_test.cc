#include "experiments/experiments.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "common/time.h"

namespace tailor::experiments {
namespace {

std::string Join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += x + "\n";
  return s;
}

EngineConfig TestConfig() {
  EngineConfig cfg;
  for (const char* name : {"home", "checkout", "email"}) {
    PlacementConfig p;
    p.name = name;
    cfg.placements[name] = p;
  }
  PlacementConfig recs;
  recs.name = "recs";
  recs.kind = PlacementConfig::Kind::kItems;
  cfg.placements["recs"] = recs;
  PluginSpec pop;
  pop.name = "popularity";
  cfg.plugins.push_back(pop);
  return cfg;
}

std::shared_ptr<const ExperimentSet> ParseOk(const std::string& yaml, const EngineConfig& cfg) {
  std::vector<std::string> errors;
  std::set<std::string> offers = {"o1", "o2", "o3"};
  auto set = ExperimentSet::Parse(yaml, "/cfg/experiments.yaml", {cfg, &offers}, &errors);
  EXPECT_TRUE(set) << Join(errors);
  return set;
}

std::vector<std::string> ParseErrors(const std::string& yaml) {
  EngineConfig cfg = TestConfig();
  std::vector<std::string> errors;
  std::set<std::string> offers = {"o1", "o2", "o3"};
  auto set = ExperimentSet::Parse(yaml, "/cfg/experiments.yaml", {cfg, &offers}, &errors);
  EXPECT_FALSE(set);
  return errors;
}

std::string Id(int i) { return "c" + std::to_string(i); }

// The arm name per customer of 20k ids.
std::vector<std::string> Arms(const ExperimentSet& set, const std::string& placement,
                              int n = 20000) {
  std::vector<std::string> out;
  out.reserve(n);
  for (int i = 0; i < n; ++i)
    out.emplace_back(set.Assign(Id(i), placement, 1'800'000'000'000).arm_name());
  return out;
}

const char* kTwoArms = R"(
experiments:
  - name: hero
    placements: [home]
    arms:
      - {name: control, share: 0.5, control: popularity}
      - {name: tailor, share: 0.5, policy: thompson}
)";

TEST(Experiments, ParsesArmsAndOverrides) {
  EngineConfig cfg = TestConfig();
  auto set = ParseOk(R"(
holdout: {share: 0.05, salt: h1}
experiments:
  - name: hero
    salt: s1
    layer: top
    placements: [home, checkout]
    start: 2026-01-01
    end: 2027-01-01T00:00:00Z
    arms:
      - {name: a, share: 0.3, policy: {kind: epsilon, exploration: 0.2}, plugin_weights: {popularity: 3}}
      - {name: b, share: 0.3, offers: [o2, o1], mode: shadow}
      - {name: c, share: 0.2, control: random}
)",
                     cfg);
  ASSERT_TRUE(set);
  EXPECT_DOUBLE_EQ(set->holdout().share, 0.05);
  ASSERT_EQ(set->experiments().size(), 1u);
  const Experiment& e = set->experiments()[0];
  EXPECT_EQ(e.salt, "s1");
  EXPECT_EQ(e.layer, "top");
  EXPECT_DOUBLE_EQ(e.traffic, 1.0);
  EXPECT_EQ(e.start_ms, *parse_iso8601_ms("2026-01-01"));
  const PlacementConfig& a_home = e.arms[0].placements.at("home");
  EXPECT_EQ(a_home.policy.kind, learning::PolicyConfig::Kind::kEpsilon);
  EXPECT_DOUBLE_EQ(a_home.policy.exploration, 0.2);
  EXPECT_DOUBLE_EQ(a_home.plugin_weights.at("popularity"), 3);
  EXPECT_EQ(e.arms[1].offers, (std::vector<std::string>{"o1", "o2"}));
  EXPECT_TRUE(e.arms[1].AllowsOffer("o2"));
  EXPECT_FALSE(e.arms[1].AllowsOffer("o3"));
  EXPECT_EQ(e.arms[1].placements.at("home").mode, PlacementConfig::Mode::kShadow);
  EXPECT_EQ(e.arms[2].placements.at("checkout").policy.kind,
            learning::PolicyConfig::Kind::kEpsilon);
  EXPECT_DOUBLE_EQ(e.arms[2].placements.at("checkout").policy.exploration, 1.0);
  EXPECT_TRUE(e.arms[2].non_personal());
  // Defaults: salt = name, layer = default.
  auto d = ParseOk(kTwoArms, cfg);
  EXPECT_EQ(d->experiments()[0].salt, "hero");
  EXPECT_EQ(d->experiments()[0].layer, "default");
  EXPECT_EQ(d->experiments()[0].arms[0].placements.at("home").policy.kind,
            learning::PolicyConfig::Kind::kGreedy);
}

TEST(Experiments, EmptyFileRunsNothing) {
  auto set = ParseOk("# nothing yet\n", TestConfig());
  ASSERT_TRUE(set);
  EXPECT_FALSE(set->Assign("c1", "home", 0).any());
}

TEST(Experiments, ErrorsCarryFileLineColumnAndKeyPath) {
  auto errors = ParseErrors(R"(experiments:
  - name: hero
    placements: [home, nowhere]
    arms:
      - {name: a, share: 0.7, policy: greedyish}
      - {name: a, share: 0.6, offers: [o9], colour: red}
)");
  const std::string all = Join(errors);
  EXPECT_NE(all.find("/cfg/experiments.yaml:3:17: experiments[0].placements: unknown placement "
                     "'nowhere' (known: checkout, email, home, recs)"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("/cfg/experiments.yaml:5:"), std::string::npos) << all;
  EXPECT_NE(all.find("experiments[0].arms[0].policy: expected greedy, thompson"), std::string::npos)
      << all;
  EXPECT_NE(all.find("arm 'a' is listed twice"), std::string::npos) << all;
  EXPECT_NE(all.find("unknown offer 'o9'"), std::string::npos) << all;
  EXPECT_NE(all.find("experiments[0].arms[1].colour: unknown key (valid: "), std::string::npos)
      << all;
}

TEST(Experiments, SyntaxErrorNamesLineAndColumn) {
  auto errors = ParseErrors("experiments:\n  - name: [unclosed\n");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].rfind("/cfg/experiments.yaml:", 0), 0u) << errors[0];
  EXPECT_NE(errors[0].find(":3:"), std::string::npos) << errors[0];
}

TEST(Experiments, RefusesBadTimesControlsAndMissingKeys) {
  const std::string all = Join(ParseErrors(R"(holdout: {share: 0.9}
experiments:
  - name: x
    placements: [recs]
    start: 2027-01-01
    end: 2026-01-01
    arms:
      - {name: a, share: 0.5, control: magic}
      - {name: b, share: 0.5, offers: [o1]}
  - name: y
    arms: []
)"));
  EXPECT_NE(all.find("/cfg/experiments.yaml:1:18: holdout.share"), std::string::npos) << all;
  EXPECT_NE(all.find("experiments[0].end: ends before it starts"), std::string::npos) << all;
  EXPECT_NE(all.find("expected random, popularity or app, got 'magic'"), std::string::npos) << all;
  EXPECT_NE(all.find("placement 'recs' shows items"), std::string::npos) << all;
  EXPECT_NE(all.find("experiments[1].placements: required key is missing"), std::string::npos)
      << all;
  EXPECT_NE(all.find("experiments[1].arms: expected a list of arms"), std::string::npos) << all;
}

TEST(Experiments, DifferentLayersMayNotShareAPlacementAtOnce) {
  const std::string all = Join(ParseErrors(R"(experiments:
  - {name: a, layer: l1, placements: [home], arms: [{name: x, share: 1}]}
  - {name: b, layer: l2, placements: [home], arms: [{name: y, share: 1}]}
)"));
  EXPECT_NE(all.find("/cfg/experiments.yaml:3:5: experiments[1].placements: 'home' is also in "
                     "experiment 'a'"),
            std::string::npos)
      << all;
}

TEST(Experiments, AssignmentIsStableAndSharesHold) {
  EngineConfig cfg = TestConfig();
  auto set = ParseOk(R"(
experiments:
  - name: hero
    placements: [home]
    traffic: 0.9
    arms:
      - {name: a, share: 2}
      - {name: b, share: 3}
      - {name: c, share: 4}
)",
                     cfg);
  const auto first = Arms(*set, "home");
  EXPECT_EQ(first, Arms(*set, "home"));  // same customer, same arm
  std::map<std::string, int> count;
  for (const auto& a : first) ++count[a];
  const double n = static_cast<double>(first.size());
  // 20k draws: the standard error of a share is at most 0.0036; 4 sigma.
  EXPECT_NEAR(count["a"] / n, 0.2, 0.015);
  EXPECT_NEAR(count["b"] / n, 0.3, 0.015);
  EXPECT_NEAR(count["c"] / n, 0.4, 0.015);
  EXPECT_NEAR(count[""] / n, 0.1, 0.015);  // traffic 0.9: the rest in no experiment
  // Not on other placements, not before the start or after the end.
  EXPECT_FALSE(set->Assign("c1", "checkout", 1'800'000'000'000).any());
}

TEST(Experiments, RaisingOneShareOnlyMovesCustomersIntoThatArm) {
  EngineConfig cfg = TestConfig();
  auto before = ParseOk(R"(
experiments:
  - {name: hero, placements: [home], arms: [{name: a, share: 0.2}, {name: b, share: 0.3}, {name: c, share: 0.3}]}
)",
                        cfg);
  auto after = ParseOk(R"(
experiments:
  - {name: hero, placements: [home], arms: [{name: a, share: 0.4}, {name: b, share: 0.3}, {name: c, share: 0.3}]}
)",
                       cfg);
  const auto x = Arms(*before, "home"), y = Arms(*after, "home");
  int moved = 0, into_a = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    if (x[i] == y[i]) continue;
    ++moved;
    into_a += y[i] == "a";
    EXPECT_EQ(y[i], "a") << Id(static_cast<int>(i)) << " moved from '" << x[i] << "'";
  }
  // a's share of the customers grew from 0.2/0.8 to 0.4/1.0: 15% moved, all into a.
  EXPECT_EQ(moved, into_a);
  EXPECT_NEAR(moved / 20000.0, 0.15, 0.015);
  // Adding an arm takes customers only into the new arm.
  auto added = ParseOk(R"(
experiments:
  - {name: hero, placements: [home], arms: [{name: a, share: 0.2}, {name: b, share: 0.3}, {name: c, share: 0.3}, {name: d, share: 0.1}]}
)",
                       cfg);
  const auto z = Arms(*added, "home");
  // Raising the traffic only brings customers in; those in keep their arm.
  auto partial = ParseOk(R"(
experiments:
  - {name: hero, traffic: 0.5, placements: [home], arms: [{name: a, share: 0.2}, {name: b, share: 0.3}, {name: c, share: 0.3}]}
)",
                         cfg);
  const auto w = Arms(*partial, "home");
  int in = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    if (w[i].empty()) continue;
    ++in;
    EXPECT_EQ(w[i], x[i]) << Id(static_cast<int>(i));
  }
  EXPECT_NEAR(in / 20000.0, 0.5, 0.015);
  for (size_t i = 0; i < x.size(); ++i)
    if (x[i] != z[i]) {
      EXPECT_EQ(z[i], "d") << Id(static_cast<int>(i));
    }
}

TEST(Experiments, ASaltReshufflesTheSplit) {
  EngineConfig cfg = TestConfig();
  auto a = ParseOk(kTwoArms, cfg);
  std::string salted = kTwoArms;
  salted.replace(salted.find("placements"), 0, "salt: fresh\n    ");
  auto b = ParseOk(salted, cfg);
  const auto x = Arms(*a, "home"), y = Arms(*b, "home");
  int same = 0;
  for (size_t i = 0; i < x.size(); ++i) same += x[i] == y[i];
  EXPECT_NEAR(same / 20000.0, 0.5, 0.02);  // independent halves agree half the time
}

TEST(Experiments, LayersAreExclusiveWithinAndIndependentAcross) {
  EngineConfig cfg = TestConfig();
  auto set = ParseOk(R"(
experiments:
  - {name: e1, placements: [home], arms: [{name: a, share: 0.5}, {name: b, share: 0.5}]}
  - {name: e2, placements: [checkout], arms: [{name: a, share: 0.5}, {name: b, share: 0.5}]}
  - {name: e3, layer: mail, placements: [email], arms: [{name: a, share: 0.5}, {name: b, share: 0.5}]}
)",
                     cfg);
  int in_e1 = 0, in_e2 = 0, both = 0;
  int e1a_e3a = 0, e1a = 0, e3a = 0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    const auto h = set->Assign(Id(i), "home", 0);
    const auto c = set->Assign(Id(i), "checkout", 0);
    const auto m = set->Assign(Id(i), "email", 0);
    in_e1 += h.any();
    in_e2 += c.any();
    both += h.any() && c.any();
    ASSERT_TRUE(m.any());  // alone in its layer: everyone
    EXPECT_EQ(m.layer(), "mail");
    e3a += m.arm_name() == "a";
    if (h.any() && h.arm_name() == "a") {
      ++e1a;
      e1a_e3a += m.arm_name() == "a";
    }
  }
  EXPECT_EQ(both, 0);  // one layer: never in both
  EXPECT_NEAR(in_e1 / double(n), 0.5, 0.015);
  EXPECT_NEAR(in_e2 / double(n), 0.5, 0.015);
  // Across layers the arms are independent: P(e3 a | e1 a) = P(e3 a).
  EXPECT_NEAR(e1a_e3a / double(e1a), e3a / double(n), 0.025);
}

TEST(Experiments, AnEndedExperimentHoldsNoneOfItsLayer) {
  EngineConfig cfg = TestConfig();
  // e_old ended at 2026-02-01; e_new runs after it in the same layer.
  auto set = ParseOk(R"(
experiments:
  - {name: e_old, placements: [home], start: 2026-01-01, end: 2026-02-01,
     arms: [{name: a, share: 1}]}
  - {name: e_new, placements: [checkout], start: 2026-01-15,
     arms: [{name: a, share: 0.5}, {name: b, share: 0.5}]}
)",
                     cfg);
  const int64_t during = *parse_iso8601_ms("2026-01-20T00:00:00Z");
  const int64_t after = *parse_iso8601_ms("2026-03-01T00:00:00Z");
  int new_during = 0, new_after = 0, moved_out = 0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    const bool d = set->Assign(Id(i), "checkout", during).any();
    const bool a = set->Assign(Id(i), "checkout", after).any();
    new_during += d;
    new_after += a;
    moved_out += d && !a;
  }
  EXPECT_NEAR(new_during / double(n), 0.5, 0.015);  // both running: half each
  EXPECT_EQ(new_after, n);                          // the ended one holds none
  EXPECT_EQ(moved_out, 0);                          // its ending only brings customers in
}

TEST(Experiments, HoldoutTakesItsShareEverywhereAndNeverAnArm) {
  EngineConfig cfg = TestConfig();
  std::string yaml = std::string("holdout: {share: 0.05}\n") + kTwoArms;
  auto set = ParseOk(yaml, cfg);
  int held = 0;
  for (int i = 0; i < 20000; ++i) {
    const auto h = set->Assign(Id(i), "home", 0);
    const auto e = set->Assign(Id(i), "email", 0);
    EXPECT_EQ(h.holdout, e.holdout);  // the holdout is global
    if (h.holdout) {
      ++held;
      EXPECT_EQ(h.experiment_name(), "holdout");
      EXPECT_EQ(h.arm_name(), "holdout");
      EXPECT_EQ(h.arm, nullptr);
      // The baseline never explores.
      EXPECT_EQ(set->PlacementOf(h, cfg.placements.at("home")).policy.kind,
                learning::PolicyConfig::Kind::kGreedy);
    }
  }
  EXPECT_NEAR(held / 20000.0, 0.05, 0.006);
  // Raising the holdout only moves customers into it.
  auto bigger = ParseOk(std::string("holdout: {share: 0.1}\n") + kTwoArms, cfg);
  for (int i = 0; i < 20000; ++i)
    if (set->Assign(Id(i), "home", 0).holdout) {
      EXPECT_TRUE(bigger->Assign(Id(i), "home", 0).holdout);
    }
  EXPECT_FALSE(set->Assign("", "home", 0).any());  // anonymous: never assigned
}

TEST(Experiments, TimeWindowIsHalfOpen) {
  EngineConfig cfg = TestConfig();
  auto set = ParseOk(R"(
experiments:
  - {name: e, placements: [home], start: 2026-01-01, end: 2026-02-01, arms: [{name: a, share: 1}]}
)",
                     cfg);
  const int64_t start = *parse_iso8601_ms("2026-01-01"), end = *parse_iso8601_ms("2026-02-01");
  EXPECT_FALSE(set->Assign("c1", "home", start - 1).any());
  EXPECT_TRUE(set->Assign("c1", "home", start).any());
  EXPECT_TRUE(set->Assign("c1", "home", end - 1).any());
  EXPECT_FALSE(set->Assign("c1", "home", end).any());
}

TEST(Experiments, ShippedExampleParses) {
  std::vector<std::string> errors;
  auto cfg =
      LoadConfig(std::string(TAILOR_SOURCE_DIR) + "/config/tailor.yaml", "/plugins", &errors);
  ASSERT_TRUE(cfg) << Join(errors);
  ASSERT_EQ(cfg->experiments_file, std::string(TAILOR_SOURCE_DIR) + "/config/experiments.yaml");
  auto set = ExperimentSet::Load(cfg->experiments_file, {*cfg, nullptr}, &errors);
  ASSERT_TRUE(set) << Join(errors);
  EXPECT_FALSE(set->experiments().empty());
}

}  // namespace
}  // namespace tailor::experiments
