// Dynamic discounts and their guardrails (pricing/pricing.h), and the
// `pricing:` config that sets them (fail closed, file:line:col).
#include "pricing/pricing.h"

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>

#include "config/config.h"
#include "learning/random.h"
#include "support/temp_dir.h"

namespace tailor {
namespace {

using nlohmann::json;
using testing::TempDir;
using testing::WriteFile;

std::string Join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += x + "\n";
  return s;
}

Offer Priced(double lo, double hi, double step, double price, double cost = 0) {
  Offer o;
  o.id = "o1";
  o.value = price;
  o.price = price;
  o.cost = cost;
  o.discount = std::make_pair(lo, hi);
  o.discount_step = step;
  return o;
}

PricingConfig Guardrails() {
  PricingConfig c;
  c.configured = true;
  c.protected_attrs = {"age_band", "gender"};
  c.features = {"deal_seeker"};
  return c;
}

// Plays n choices for one segment against a true conversion curve.
double Play(pricing::Pricer& pricer, const Offer& o, const std::string& segment,
            const std::map<double, double>& truth, int n, uint64_t seed,
            std::map<double, int>* counts = nullptr) {
  learning::Rng rng(seed);
  double margin = 0;
  for (int i = 0; i < n; ++i) {
    const std::string id = "d" + std::to_string(seed) + "-" + std::to_string(i);
    pricing::Choice c = pricer.Choose(o, segment, "g", id, seed * 1000003 + i);
    Impression m;
    m.decision_id = id;
    m.offer_id = o.id;
    pricer.Observe(m);
    if (counts) ++(*counts)[c.discount];
    if (rng.Uniform() < truth.at(c.discount)) {
      Outcome out;
      out.kind = Outcome::Kind::kConversion;
      out.impression = m;
      pricer.Observe(out);
      margin += pricing::MarginAt(o, c.discount);
    }
  }
  return margin;
}

TEST(Pricing, LevelsSpanTheRangeByStep) {
  EXPECT_EQ(pricing::Levels(Priced(0.1, 0.3, 0.05, 10)),
            (std::vector<double>{0.1, 0.15, 0.2, 0.25, 0.3}));
  // A step that does not divide the range still ends at max.
  EXPECT_EQ(pricing::Levels(Priced(0.05, 0.15, 0.04, 10)),
            (std::vector<double>{0.05, 0.09, 0.13, 0.15}));
  Offer none;
  EXPECT_TRUE(pricing::Levels(none).empty());
}

TEST(Pricing, BanditLearnsTheMarginMaximisingLevelPerSegment) {
  pricing::Pricer pricer;
  pricer.Configure(Guardrails());
  const Offer o = Priced(0.0, 0.3, 0.1, 100);
  // Deal seekers: conversion rises steeply with the discount (0.3 earns
  // 70 x 0.2 = 14 against 100 x 0.05 = 5 at none); others do not move (0 best).
  const std::map<double, double> seekers{{0.0, 0.05}, {0.1, 0.09}, {0.2, 0.14}, {0.3, 0.20}};
  const std::map<double, double> others{{0.0, 0.10}, {0.1, 0.10}, {0.2, 0.10}, {0.3, 0.10}};
  std::map<double, int> seek_counts, other_counts;
  Play(pricer, o, "deal_seeker=high", seekers, 4000, 1);
  Play(pricer, o, "deal_seeker=low", others, 4000, 2);
  Play(pricer, o, "deal_seeker=high", seekers, 500, 3, &seek_counts);
  Play(pricer, o, "deal_seeker=low", others, 500, 4, &other_counts);
  EXPECT_GT(seek_counts[0.3], 400) << "deal seekers should mostly get the deepest discount";
  EXPECT_GT(other_counts[0.0], 300) << "others should mostly get no discount";
  // The counts are per (offer, level, segment).
  EXPECT_GT(pricer.Counts("o1", 0.3, "deal_seeker=high").first, 0);
}

TEST(Pricing, ALevelsLiftIsPooledOverOffers) {
  // Deal seekers convert far better at 0.3 on offer o1; offer o2 has never
  // been priced, yet starts from o1's lesson (its prior is centred on its own
  // rate times the level's pooled lift), while a fresh pricer is indifferent.
  pricing::Pricer taught, fresh;
  taught.Configure(Guardrails());
  fresh.Configure(Guardrails());
  const Offer o1 = Priced(0.0, 0.3, 0.1, 100);
  Offer o2 = o1;
  o2.id = "o2";
  const std::map<double, double> seekers{{0.0, 0.02}, {0.1, 0.04}, {0.2, 0.08}, {0.3, 0.16}};
  Play(taught, o1, "deal_seeker=high", seekers, 3000, 5);
  int deep_taught = 0, deep_fresh = 0;
  for (int i = 0; i < 400; ++i) {
    deep_taught += taught.Choose(o2, "deal_seeker=high", "g", "", 77 + i).discount == 0.3;
    deep_fresh += fresh.Choose(o2, "deal_seeker=high", "g", "", 77 + i).discount == 0.3;
  }
  EXPECT_GT(deep_taught, 300);
  EXPECT_LT(deep_fresh, 250);
  EXPECT_EQ(taught.Counts("o2", 0.3, "deal_seeker=high").first, 0);
  // Another segment learns nothing from it.
  int deep_other = 0;
  for (int i = 0; i < 400; ++i)
    deep_other += taught.Choose(o2, "deal_seeker=low", "g", "", 77 + i).discount == 0.3;
  EXPECT_LT(deep_other, 250);
}

TEST(Pricing, WhyNamesLevelMarginAndAlternatives) {
  pricing::Pricer pricer;
  pricer.Configure(Guardrails());
  const pricing::Choice c = pricer.Choose(Priced(0.1, 0.3, 0.1, 50), "s", "g", "d1", 7);
  ASSERT_TRUE(c.priced);
  const json why = c.Why();
  EXPECT_EQ(why["level"], c.discount);
  EXPECT_EQ(why["alternatives"].size(), 3u);
  EXPECT_TRUE(why["guardrail"].is_null());
  EXPECT_NEAR(why["expected_margin"].get<double>(), c.p_convert * 50 * (1 - c.discount), 1e-9);
}

TEST(Pricing, NeverChoosesALevelBelowTheMarginFloor) {
  PricingConfig cfg = Guardrails();
  cfg.min_margin = 0.2;  // price 100, cost 60: margin share 0.4 - d
  pricing::Pricer pricer;
  pricer.Configure(cfg);
  const Offer o = Priced(0.0, 0.4, 0.05, 100, 60);
  // Even when the deepest discounts convert best, nothing above 0.2 is chosen.
  std::map<double, double> truth;
  for (double d : pricing::Levels(o)) truth[d] = 0.02 + d;
  std::map<double, int> counts;
  Play(pricer, o, "s", truth, 2000, 9, &counts);
  for (const auto& [d, n] : counts) EXPECT_LE(d, 0.2 + 1e-9) << n << " choices at " << d;
  EXPECT_GT(counts[0.2], 0);
  const pricing::Choice c = pricer.Choose(o, "s", "g", "x", 1);
  EXPECT_NE(c.guardrail.find("min_margin"), std::string::npos) << c.guardrail;
  EXPECT_EQ(c.alternatives.size(), 5u);  // 0 .. 0.2
}

TEST(Pricing, ProtectedAttributesNeverReachTheSegment) {
  PricingConfig cfg = Guardrails();
  // Even a config that slipped a protected attribute into the features.
  cfg.features = {"deal_seeker", "gender", "age", "city"};
  const json facts = {{"customer", {{"dna", {{"deal_seeker", "high"}}}}}};
  const json a = {{"gender", "f"}, {"age", 22}, {"city", "Lyon"}};
  const json b = {{"gender", "m"}, {"age", 61}, {"city", "Lyon"}};
  const std::string sa = pricing::PricingSegment(cfg, a, facts);
  EXPECT_EQ(sa, pricing::PricingSegment(cfg, b, facts));
  EXPECT_EQ(sa, "deal_seeker=high|city=Lyon");
  // So the chosen discount's distribution cannot change with them: the same
  // seeds give the same choices for both customers.
  pricing::Pricer p1, p2;
  p1.Configure(cfg);
  p2.Configure(cfg);
  const Offer o = Priced(0.1, 0.3, 0.05, 40);
  for (int i = 0; i < 200; ++i) {
    const std::string ga = pricing::GroupOf(a, "gender"), gb = pricing::GroupOf(b, "gender");
    EXPECT_EQ(p1.Choose(o, pricing::PricingSegment(cfg, a, facts), ga, "", i).discount,
              p2.Choose(o, pricing::PricingSegment(cfg, b, facts), gb, "", i).discount);
  }
}

TEST(Pricing, AgeBands) {
  EXPECT_EQ(pricing::AgeBand(json(19)), "<25");
  EXPECT_EQ(pricing::AgeBand(json(25)), "25-34");
  EXPECT_EQ(pricing::AgeBand(json(49)), "35-49");
  EXPECT_EQ(pricing::AgeBand(json(50)), "50+");
  EXPECT_EQ(pricing::AgeBand(json("x")), "unknown");
  EXPECT_EQ(pricing::GroupOf(json{{"age", 30}}, "age_band"), "25-34");
  EXPECT_TRUE(pricing::IsProtected({"age_band"}, "age"));
  EXPECT_FALSE(pricing::IsProtected({"gender"}, "city"));
}

TEST(Pricing, DisparityBreachShrinksTowardsTheMeanUntilUnderTheCap) {
  PricingConfig cfg = Guardrails();
  cfg.group_by = "gender";
  cfg.max_disparity = 1.25;
  cfg.window = 400;
  cfg.min_group = 20;
  pricing::Pricer pricer;
  pricer.Configure(cfg);
  const Offer o = Priced(0.1, 0.3, 0.05, 100);
  // Group f is all deal seekers, group m none: the bandit wants 0.3 for f
  // and 0.1 for m, a ratio of 3.
  const std::map<double, double> seekers{
      {0.1, 0.01}, {0.15, 0.02}, {0.2, 0.05}, {0.25, 0.1}, {0.3, 0.3}};
  const std::map<double, double> others{
      {0.1, 0.3}, {0.15, 0.2}, {0.2, 0.1}, {0.25, 0.05}, {0.3, 0.01}};
  // Teach it first without the cap.
  PricingConfig uncapped = cfg;
  uncapped.max_disparity = 0;
  pricer.Configure(uncapped);
  Play(pricer, o, "seek", seekers, 3000, 11);
  Play(pricer, o, "other", others, 3000, 12);
  // Alternate the groups without the cap: the breach shows in the window.
  auto round = [&](int n, int salt) {
    int shrunk = 0;
    for (int i = 0; i < n; ++i) {
      const bool f = i % 2 == 0;
      const pricing::Choice c =
          pricer.Choose(o, f ? "seek" : "other", f ? "f" : "m", "", 1000 * salt + i);
      shrunk += !c.guardrail.empty();
    }
    return shrunk;
  };
  round(400, 1);
  const double breached = pricer.Ratio();
  ASSERT_GT(breached, 1.25) << "the test needs a breach to start from";
  // Now the cap: choices shrink and the ratio comes back under it.
  pricer.Configure(cfg);
  const int shrunk = round(1200, 2);
  EXPECT_GT(shrunk, 0);
  EXPECT_LE(pricer.Ratio(), 1.25) << "breached at " << breached;
  const json stats = pricer.StatsJson();
  EXPECT_GT(stats["shrunk"].get<int>(), 0);
}

// --- Config ---------------------------------------------------------------------

const char* kOffers =
    "offers:\n"
    "  - id: o1\n"
    "    promotes: {category: audio}\n"
    "    value: 40\n"
    "    price: 100\n"
    "    cost: 50\n"
    "    discount: {min: 0.1, max: 0.3, step: 0.1}\n";

std::vector<std::string> LoadErrors(const std::string& pricing, const std::string& offers = kOffers,
                                    const std::string& placement = "pricing: on") {
  TempDir dir;
  WriteFile(dir.file("offers.yaml"), offers);
  WriteFile(dir.file("t.yaml"),
            "offers: offers.yaml\nplacements:\n  home:\n    kind: offers\n    " + placement + "\n" +
                pricing);
  std::vector<std::string> errors;
  auto cfg = LoadConfig(dir.file("t.yaml"), "", &errors);
  for (auto& e : errors) {
    // Paths differ per run: keep the file name only.
    auto at = e.find(dir.path());
    if (at != std::string::npos) e.erase(at, dir.path().size() + 1);
  }
  if (cfg) {
    EXPECT_TRUE(errors.empty());
  }
  return errors;
}

TEST(PricingConfig, ParsesGuardrailsAndOfferPricing) {
  TempDir dir;
  WriteFile(dir.file("offers.yaml"), kOffers);
  WriteFile(dir.file("t.yaml"),
            "offers: offers.yaml\nplacements:\n  home: {kind: offers, pricing: on}\n"
            "pricing:\n  min_margin: 0.1\n  protected: [age_band, gender]\n"
            "  features: [deal_seeker]\n  max_disparity: 1.25\n  group_by: gender\n");
  std::vector<std::string> errors;
  auto cfg = LoadConfig(dir.file("t.yaml"), "", &errors);
  ASSERT_TRUE(cfg) << Join(errors);
  EXPECT_TRUE(cfg->placements.at("home").pricing);
  EXPECT_DOUBLE_EQ(cfg->pricing.max_disparity, 1.25);
  EXPECT_EQ(cfg->pricing.protected_attrs, (std::vector<std::string>{"age_band", "gender"}));
  ASSERT_EQ(cfg->offers.size(), 1u);
  EXPECT_DOUBLE_EQ(cfg->offers[0].discount_step, 0.1);
  EXPECT_DOUBLE_EQ(*cfg->offers[0].price, 100);
  EXPECT_DOUBLE_EQ(cfg->offers[0].cost, 50);
}

TEST(PricingConfig, MisconfiguredGuardrailsAreErrorsWithTheirPlace) {
  const std::string ok = "pricing:\n  protected: [gender]\n";
  EXPECT_TRUE(LoadErrors(ok).empty());
  // A protected attribute as a feature.
  EXPECT_EQ(Join(LoadErrors("pricing:\n  protected: [age_band]\n  features: [deal_seeker, age]\n")),
            "t.yaml:8:27: pricing.features[1]: 'age' is protected: the pricing model may never "
            "use it\n");
  // A ratio below 1.
  EXPECT_NE(Join(LoadErrors("pricing:\n  protected: [gender]\n  max_disparity: 0.8\n  group_by: "
                            "gender\n"))
                .find("t.yaml:8:18: pricing.max_disparity: a ratio"),
            std::string::npos);
  // A cap without groups, and groups that are not protected.
  EXPECT_NE(Join(LoadErrors("pricing:\n  protected: [gender]\n  max_disparity: 1.2\n"))
                .find("pricing.group_by: required with max_disparity"),
            std::string::npos);
  EXPECT_NE(Join(LoadErrors("pricing:\n  protected: [gender]\n  max_disparity: 1.2\n  group_by: "
                            "city\n"))
                .find("t.yaml:9:13: pricing.group_by: 'city' is not in protected"),
            std::string::npos);
  // Unknown keys list the valid ones.
  EXPECT_NE(Join(LoadErrors("pricing:\n  min_marign: 0.1\n")).find("t.yaml:7:3: pricing"),
            std::string::npos);
  // pricing: on without the guardrails block.
  EXPECT_EQ(Join(LoadErrors("")),
            "t.yaml:5:14: placements.home.pricing: needs the top-level `pricing:` block (its "
            "guardrails)\n");
  // An offer whose smallest discount already breaks the margin floor: price
  // 100, cost 50, min 0.1 leaves 0.4 of the price.
  EXPECT_EQ(Join(LoadErrors("pricing:\n  min_margin: 0.45\n")),
            "offers.yaml:7:15: offer 'o1'.discount: even the smallest discount leaves less than "
            "pricing.min_margin of the price as margin\n");
  // The step is validated where it is.
  EXPECT_NE(Join(LoadErrors(ok,
                            "offers:\n  - id: o1\n    value: 4\n"
                            "    discount: {min: 0.1, max: 0.3, step: 0}\n"))
                .find("offers.yaml:4:42: offers[0].discount.step: must be between 0.01 and 1"),
            std::string::npos);
  // A cost at or above the price.
  EXPECT_NE(Join(LoadErrors(ok, "offers:\n  - id: o1\n    value: 4\n    cost: 5\n"))
                .find("offers.yaml:4:11: offers[0].cost: must be below the price"),
            std::string::npos);
}

}  // namespace
}  // namespace tailor
