// Experiments and shadow mode through a real tailord (issue 14.1-2): the arm
// is in why.experiment, explain and the store; an arm's overrides take
// effect; a broken experiments.yaml on reload keeps the old one serving;
// shadow mode serves the application's choice unchanged, logs Tailor's picks
// and joins the responses to what was served.
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <set>
#include <string>

#include "experiments/shadow_estimate.h"
#include "store/store.h"
#include "support/tailord.h"
#include "support/temp_dir.h"
#include "support/world.h"

namespace tailor::testing {
namespace {

using nlohmann::json;

const char* kArms = R"(holdout: {share: 0}
experiments:
  - name: hero
    placements: [home]
    arms:
      - {name: narrow, share: 0.5, offers: [o_audio_week]}
      - {name: explore, share: 0.5, policy: {kind: epsilon, exploration: 1}}
)";

class Experiments : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = dir_.file("tailor.db");
    MakeSmallWorld(store_);
    config_ = dir_.file("tailor.yaml");
    experiments_ = dir_.file("experiments.yaml");
    WriteFile(experiments_, kArms);
    WriteFile(config_, std::string("plugins:\n") + ShippedPluginYaml("popularity") +
                           "placements:\n"
                           "  home: {kind: offers}\n"
                           "  shadowed: {kind: offers, mode: shadow}\n"
                           "  checkout: {kind: offers}\n"
                           "  email: {kind: offers}\n"
                           "experiments: experiments.yaml\n"
                           "offers: " +
                           TAILOR_SOURCE_DIR + "/config/offers.yaml\n");
  }
  std::unique_ptr<Tailord> Start() {
    auto d = std::make_unique<Tailord>(Tailord::Options{config_, store_, {}});
    EXPECT_TRUE(d->running()) << d->Log();
    return d;
  }
  json Decide(Client& c, const std::string& customer, const std::string& placement,
              json shadow = nullptr) {
    json req = {{"v", 1},           {"type", "decide"},       {"id", "r"}, {"customer", customer},
                {"channel", "web"}, {"placement", placement}, {"limit", 3}};
    if (!shadow.is_null()) req["shadow"] = shadow;
    return c.Call(req);
  }
  std::unique_ptr<Store> ReadStore() { return testing::ReadStore(store_); }
  json Explain(Client& c, const std::string& decision) {
    json ex = c.Call({{"v", 1}, {"type", "explain"}, {"id", "x"}, {"decision", decision}});
    EXPECT_TRUE(ex.contains("explain")) << ex.dump();
    return ex["explain"];
  }

  TempDir dir_;
  std::string store_, config_, experiments_;
};

TEST_F(Experiments, ArmIsInWhyExplainAndStoreAndItsOverridesTakeEffect) {
  auto d = Start();
  Client c(d->requests());
  std::set<std::string> arms;
  std::map<std::string, std::string> decision_arm;
  for (int i = 1; i <= 19; ++i) {
    const std::string customer = "c" + std::to_string(i);
    json r = Decide(c, customer, "home");
    ASSERT_FALSE(r.contains("error")) << r.dump();
    ASSERT_FALSE(r["offers"].empty()) << r.dump();
    const json& exp = r["offers"][0]["why"]["experiment"];
    EXPECT_EQ(exp["name"], "hero") << r.dump();
    EXPECT_EQ(exp["layer"], "default");
    const std::string arm = exp["arm"];
    arms.insert(arm);
    decision_arm[r["decision"]] = arm;
    // The same customer stays in the same arm.
    EXPECT_EQ(Decide(c, customer, "home")["offers"][0]["why"]["experiment"]["arm"], arm);
    for (const json& o : r["offers"]) {
      EXPECT_EQ(o["why"]["experiment"]["arm"], arm);
      if (arm == "narrow") {
        EXPECT_EQ(o["offer"], "o_audio_week") << r.dump();  // the arm's offer set
      } else {
        EXPECT_EQ(o["why"]["policy"]["kind"], "epsilon") << o.dump();  // the arm's policy
      }
    }
    if (arm == "explore") {
      EXPECT_GE(r["offers"].size(), 2u);
    }
    // Explain reads the arm back from the decision log.
    json ex = Explain(c, r["decision"]);
    EXPECT_EQ(ex["experiment"]["arm"], arm) << ex.dump();
    EXPECT_EQ(ex["offers"][0]["why"]["experiment"]["arm"], arm);
  }
  EXPECT_EQ(arms, (std::set<std::string>{"narrow", "explore"}));
  // Counted per arm (two decisions per customer).
  json stats = c.Call({{"v", 1}, {"type", "stats"}, {"id", "s"}});
  const json& counters = stats["stats"]["counters"];
  EXPECT_EQ(
      counters.value("experiments.hero.narrow", 0) + counters.value("experiments.hero.explore", 0),
      38)
      << stats.dump();
  // Not on placements outside the experiment.
  json other = Decide(c, "c1", "checkout");
  EXPECT_FALSE(other["offers"][0]["why"].contains("experiment")) << other.dump();

  auto store = ReadStore();
  for (const auto& [decision, arm] : decision_arm) {
    auto rec = store->GetDecision(decision);
    ASSERT_TRUE(rec);
    EXPECT_EQ(rec->experiment, "hero");
    EXPECT_EQ(rec->arm, arm);
    EXPECT_EQ(rec->mode, "live");
    auto impressions = store->ImpressionsOf(decision);
    ASSERT_FALSE(impressions.empty());
    for (const Impression& m : impressions) {
      EXPECT_EQ(m.experiment, "hero");
      EXPECT_EQ(m.arm, arm);
    }
  }
}

TEST_F(Experiments, HoldoutIsRecordedAndNeverPersonalised) {
  WriteFile(experiments_, "holdout: {share: 0.5, salt: h}\n");
  auto d = Start();
  Client c(d->requests());
  int held = 0;
  for (int i = 1; i <= 19; ++i) {
    json r = Decide(c, "c" + std::to_string(i), "home");
    ASSERT_FALSE(r["offers"].empty()) << r.dump();
    const json& why = r["offers"][0]["why"];
    if (!why.contains("experiment")) {
      EXPECT_TRUE(r["personalised"].get<bool>());
      continue;
    }
    ++held;
    EXPECT_EQ(why["experiment"]["name"], "holdout");
    EXPECT_EQ(why["experiment"]["arm"], "holdout");
    EXPECT_FALSE(r["personalised"].get<bool>()) << r.dump();
    // Still recorded, so responses to the baseline are measured (explain
    // waits for the decision log's writes).
    EXPECT_EQ(Explain(c, r["decision"])["experiment"]["arm"], "holdout");
    EXPECT_EQ(ReadStore()->ImpressionsOf(r["decision"]).size(), r["offers"].size());
  }
  EXPECT_GT(held, 2);
  EXPECT_LT(held, 17);
}

TEST_F(Experiments, BrokenFileOnReloadKeepsTheOldExperimentsServing) {
  auto d = Start();
  Client c(d->requests());
  const json before = Decide(c, "c1", "home")["offers"][0]["why"]["experiment"];
  ASSERT_EQ(before["name"], "hero");

  WriteFile(experiments_, std::string(kArms) + "  - name: second\n    placements: [nowhere]\n");
  json r = c.Call({{"v", 1}, {"type", "rules.reload"}, {"id", "rl"}});
  ASSERT_TRUE(r.contains("error")) << r.dump();
  std::string errors;
  for (const json& e : r["error"]["errors"]) errors += e.get<std::string>() + "\n";
  EXPECT_NE(errors.find(experiments_ + ":9:17: experiments[1].placements: unknown placement "
                                       "'nowhere'"),
            std::string::npos)
      << errors;
  EXPECT_EQ(Decide(c, "c1", "home")["offers"][0]["why"]["experiment"], before);

  // A good file is taken: the experiment ends (no experiments left).
  WriteFile(experiments_, "experiments: []\n");
  r = c.Call({{"v", 1}, {"type", "rules.reload"}, {"id", "rl2"}});
  ASSERT_TRUE(r.value("reloaded", false)) << r.dump();
  EXPECT_FALSE(Decide(c, "c1", "home")["offers"][0]["why"].contains("experiment"));
}

TEST_F(Experiments, ShadowServesTheAppsChoiceLogsTailorsAndJoinsClicks) {
  auto d = Start();
  Client c(d->requests());
  const json choice = {{"offers", {"o_books_club", "o_audio_week"}}};
  json r = Decide(c, "c3", "shadowed", choice);
  ASSERT_FALSE(r.contains("error")) << r.dump();
  EXPECT_EQ(r["mode"], "shadow");
  ASSERT_EQ(r["offers"].size(), 2u) << r.dump();
  EXPECT_EQ(r["offers"][0]["offer"], "o_books_club");
  EXPECT_EQ(r["offers"][1]["offer"], "o_audio_week");
  EXPECT_EQ(r["offers"][0]["rank"], 1);
  EXPECT_EQ(r["offers"][0]["why"]["shadow"]["served_by"], "app");
  const std::string decision = r["decision"];

  // A click on the served offer joins the served impression.
  json ack = c.Call({{"v", 1},
                     {"type", "event"},
                     {"id", "e"},
                     {"customer", "c3"},
                     {"event", "offer_click"},
                     {"offer", "o_audio_week"},
                     {"decision", decision}});
  ASSERT_TRUE(ack.value("ok", false)) << ack.dump();
  json ex = Explain(c, decision);
  EXPECT_EQ(ex["mode"], "shadow");
  ASSERT_EQ(ex["outcomes"].size(), 1u) << ex.dump();
  EXPECT_EQ(ex["outcomes"][0]["offer"], "o_audio_week");
  EXPECT_EQ(ex["outcomes"][0]["position"], 2);

  auto store = ReadStore();
  auto rec = store->GetDecision(decision);
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->mode, "shadow");
  auto served = store->ImpressionsOf(decision);
  ASSERT_EQ(served.size(), 2u);
  EXPECT_EQ(served[0].offer_id, "o_books_club");
  EXPECT_DOUBLE_EQ(served[0].propensity, 1.0);
  // Tailor's own choice with its propensities and P.
  auto picks = store->ShadowPicksOf(decision);
  ASSERT_EQ(picks.size(), 3u);
  for (size_t i = 0; i < picks.size(); ++i) {
    EXPECT_EQ(picks[i].position, static_cast<int>(i + 1));
    EXPECT_FALSE(picks[i].offer_id.empty());
    EXPECT_GT(picks[i].propensity, 0);
    EXPECT_GE(picks[i].p_click, 0);
  }
  json summary = experiments::ShadowSummary(*store, 0, 0);
  const json& s = summary["placements"]["shadowed"];
  EXPECT_EQ(s["decisions"], 1) << summary.dump();
  EXPECT_EQ(s["served"]["impressions"], 2);
  EXPECT_EQ(s["served"]["clicks"], 1);
  EXPECT_DOUBLE_EQ(s["served"]["ctr"].get<double>(), 0.5);
  EXPECT_EQ(s["tailor"]["picks"], 3);
  EXPECT_DOUBLE_EQ(s["agreement"].get<double>(), picks[0].offer_id == "o_books_club" ? 1.0 : 0.0);
}

TEST_F(Experiments, ShadowChoiceIsValidatedNamingTheField) {
  auto d = Start();
  Client c(d->requests());
  auto field = [&](json shadow) {
    json r = Decide(c, "c3", "shadowed", shadow);
    EXPECT_TRUE(r.contains("error")) << r.dump();
    return r["error"].value("field", std::string());
  };
  EXPECT_EQ(field(nullptr), "shadow");  // a shadow placement needs the app's choice
  EXPECT_EQ(field({{"offers", {"o_books_club", "o_nope"}}}), "shadow.offers[1]");
  EXPECT_EQ(field({{"offers", {"o_books_club", "o_books_club"}}}), "shadow.offers[1]");
  EXPECT_EQ(field({{"items", {"i1"}}}), "shadow.items");  // an offers placement
  EXPECT_EQ(field({{"offers", "o_books_club"}}), "shadow.offers");
  EXPECT_EQ(field({{"offers", {"a"}}, {"items", {"b"}}}), "shadow");
  EXPECT_EQ(field({{"offers", {"a"}}, {"colour", 1}}), "shadow.colour");
  json many = json::array();
  for (int i = 0; i < 101; ++i) many.push_back("o" + std::to_string(i));
  EXPECT_EQ(field({{"offers", many}}), "shadow.offers");
  EXPECT_EQ(field(json(3)), "shadow");
  // Elsewhere the choice is accepted and ignored: Tailor serves its own.
  json live = Decide(c, "c3", "checkout", {{"offers", {"o_books_club"}}});
  ASSERT_FALSE(live.contains("error")) << live.dump();
  EXPECT_FALSE(live.contains("mode"));
  EXPECT_GE(live["offers"].size(), 2u);
}

TEST_F(Experiments, AnAppControlArmServesTheAppsChoice) {
  WriteFile(experiments_, R"(experiments:
  - name: apprentice
    placements: [home]
    arms:
      - {name: app, share: 0.5, control: app}
      - {name: tailor, share: 0.5}
)");
  auto d = Start();
  Client c(d->requests());
  std::set<std::string> arms;
  for (int i = 1; i <= 19; ++i) {
    json r = Decide(c, "c" + std::to_string(i), "home", {{"offers", {"o_loyalty_app"}}});
    ASSERT_FALSE(r.contains("error")) << r.dump();
    const std::string arm = r["offers"][0]["why"]["experiment"]["arm"];
    arms.insert(arm);
    if (arm == "app") {
      EXPECT_EQ(r["mode"], "shadow");
      ASSERT_EQ(r["offers"].size(), 1u);
      EXPECT_EQ(r["offers"][0]["offer"], "o_loyalty_app");
    } else {
      EXPECT_FALSE(r.contains("mode"));
      EXPECT_GE(r["offers"].size(), 2u);
    }
  }
  EXPECT_EQ(arms, (std::set<std::string>{"app", "tailor"}));
  EXPECT_EQ(d->Terminate(), 0) << d->Log();
  // The report compares the two arms side by side with --mode all (the app
  // arm's decisions are shadow decisions); the live report has Tailor's only.
  auto report = [&](const std::string& mode) {
    const std::string out = dir_.file("r.json"), log = dir_.file("r.log");
    const int rc = std::system((TailorBin() + " report --store " + store_ +
                                " --experiment apprentice --mode " + mode + " --json " + out +
                                " >" + log + " 2>&1")
                                   .c_str());
    EXPECT_EQ(rc, 0) << ReadFile(log);
    return json::parse(ReadFile(out), nullptr, false);
  };
  std::map<std::string, int64_t> all, live;
  const json r_all = report("all"), r_live = report("live");
  for (const json& a : r_all["arms"]) all[a["arm"]] = a["decisions"];
  for (const json& a : r_live["arms"]) live[a["arm"]] = a["decisions"];
  ASSERT_EQ(all.size(), 2u) << ReadFile(dir_.file("r.log"));
  EXPECT_EQ(all["app"] + all["tailor"], 19);
  EXPECT_GT(all["app"], 0);
  EXPECT_EQ(live.size(), 1u);
  EXPECT_EQ(live["tailor"], all["tailor"]);
}

}  // namespace
}  // namespace tailor::testing
