// Response models (engine/src/learning/): features and segment keys, decayed
// Beta posteriors, the calibrated online logistic model, calibration metrics.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "learning/calibration.h"
#include "learning/features.h"
#include "learning/response_model.h"
#include "learning/response_stats.h"
#include "tailor/plugin.h"

namespace tailor::learning {
namespace {

constexpr int64_t kDay = 86400000;

Impression Shown(const std::string& offer, const std::string& category, const std::string& segment,
                 int64_t ts, const std::string& decision = "") {
  Impression i;
  i.decision_id = decision.empty() ? "d" + std::to_string(ts) + offer : decision;
  i.placement = "home";
  i.channel = "web";
  i.offer_id = offer;
  i.category = category;
  i.segment = segment;
  i.ts_ms = ts;
  return i;
}

Outcome Response(const Impression& imp, Outcome::Kind kind, double value = 0) {
  Outcome o;
  o.kind = kind;
  o.impression = imp;
  o.value = value;
  o.ts_ms = imp.ts_ms + 1000;
  return o;
}

// ---------------------------------------------------------------- stats

TEST(ResponseStats, DecayHalvesCountsAfterOneHalfLife) {
  ResponseStats stats(ResponseOptions{.half_life_days = 14, .prior_strength = 20});
  const int64_t t0 = 1000 * kDay;
  for (int i = 0; i < 8; ++i) {
    Impression imp = Shown("o1", "toys", "home|web", t0);
    stats.Observe(imp);
    if (i < 4) stats.Observe(Response(imp, Outcome::Kind::kClick));
  }
  ResponseCounts now = stats.Counts("o1", "home|web", t0);
  EXPECT_DOUBLE_EQ(now.impressions, 8);
  EXPECT_DOUBLE_EQ(now.clicks, 4);
  ResponseCounts later = stats.Counts("o1", "home|web", t0 + 14 * kDay);
  EXPECT_NEAR(later.impressions, 4, 1e-9);
  EXPECT_NEAR(later.clicks, 2, 1e-9);
  ResponseCounts two = stats.Counts("o1", "home|web", t0 + 28 * kDay);
  EXPECT_NEAR(two.impressions, 2, 1e-9);
  // A new impression a half-life later lands on the halved counts.
  stats.Observe(Shown("o1", "toys", "home|web", t0 + 14 * kDay));
  EXPECT_NEAR(stats.Counts("o1", "home|web", t0 + 14 * kDay).impressions, 5, 1e-9);
}

TEST(ResponseStats, OrderOfArrivalDoesNotMatter) {
  ResponseStats a, b;
  std::vector<Impression> imps;
  for (int i = 0; i < 20; ++i) imps.push_back(Shown("o1", "toys", "s", i * kDay / 3));
  for (const auto& i : imps) a.Observe(i);
  for (auto it = imps.rbegin(); it != imps.rend(); ++it) b.Observe(*it);
  const int64_t now = 30 * kDay;
  EXPECT_NEAR(a.Counts("o1", "s", now).impressions, b.Counts("o1", "s", now).impressions, 1e-9);
  EXPECT_NEAR(a.Counts("cat:toys", "s", now).impressions,
              b.Counts("cat:toys", "s", now).impressions, 1e-9);
}

TEST(ResponseStats, PosteriorMovesFromPriorToObservedRate) {
  ResponseStats stats(ResponseOptions{.half_life_days = 1e6, .prior_strength = 20});
  const double prior = 0.02, truth = 0.2;
  ResponseEstimate e0 = stats.Estimate("o1", "", "s", prior, 10, 0);
  EXPECT_DOUBLE_EQ(e0.p_click, prior);
  EXPECT_EQ(e0.source, ResponseEstimate::Source::kModelPrior);
  double last_gap = std::fabs(e0.p_click - truth);
  for (int batch = 0; batch < 4; ++batch) {
    for (int i = 0; i < 100 * (batch + 1); ++i) {
      Impression imp =
          Shown("o1", "", "s", 0, "b" + std::to_string(batch) + "_" + std::to_string(i));
      stats.Observe(imp);
      if (i % 5 == 0) stats.Observe(Response(imp, Outcome::Kind::kClick));  // 20%
    }
    ResponseEstimate e = stats.Estimate("o1", "", "s", prior, 10, 0);
    EXPECT_EQ(e.source, ResponseEstimate::Source::kPosterior);
    double gap = std::fabs(e.p_click - truth);
    EXPECT_LT(gap, last_gap) << "after batch " << batch;
    last_gap = gap;
    // The Beta's mean is the posterior mean it reports.
    EXPECT_NEAR(e.p_click, e.alpha / (e.alpha + e.beta), 1e-12);
  }
  // 1000 impressions, 200 clicks, m = 20: (0.4 + 200) / 1020.
  EXPECT_NEAR(stats.Estimate("o1", "", "s", prior, 10, 0).p_click, 200.4 / 1020, 1e-9);
}

TEST(ResponseStats, NewOfferStartsFromItsCategoryInTheSameSegment) {
  ResponseStats stats(ResponseOptions{.half_life_days = 1e6, .prior_strength = 20});
  // An old toys offer earned 30% in this segment; nothing elsewhere.
  for (int i = 0; i < 400; ++i) {
    Impression imp =
        Shown("o_old", "toys", "home|web|deal_seeker=high", 0, "d" + std::to_string(i));
    stats.Observe(imp);
    if (i % 10 < 3) stats.Observe(Response(imp, Outcome::Kind::kClick));
  }
  const double model_p = 0.05;
  ResponseEstimate fresh =
      stats.Estimate("o_new", "toys", "home|web|deal_seeker=high", model_p, 1, 0);
  EXPECT_EQ(fresh.source, ResponseEstimate::Source::kCategoryPrior);
  EXPECT_EQ(fresh.impressions, 0);
  // (20 x 0.05 + 120) / (20 + 400) = 0.288
  EXPECT_NEAR(fresh.p_click, 121.0 / 420, 1e-9);
  // Another segment knows nothing of toys: the model's P.
  ResponseEstimate elsewhere = stats.Estimate("o_new", "toys", "home|app", model_p, 1, 0);
  EXPECT_EQ(elsewhere.source, ResponseEstimate::Source::kModelPrior);
  EXPECT_DOUBLE_EQ(elsewhere.p_click, model_p);
  // Another category in the same segment: the model's P too.
  EXPECT_DOUBLE_EQ(
      stats.Estimate("o_b", "books", "home|web|deal_seeker=high", model_p, 1, 0).p_click, model_p);
}

TEST(ResponseStats, ConversionGivenClickAndValuePerConversion) {
  ResponseStats stats(
      ResponseOptions{.half_life_days = 1e6, .prior_strength = 10, .conversion_prior = 0.1});
  for (int i = 0; i < 100; ++i) {
    Impression imp = Shown("o1", "", "s", 0, "d" + std::to_string(i));
    stats.Observe(imp);
    if (i < 40) stats.Observe(Response(imp, Outcome::Kind::kClick));
    if (i < 20) stats.Observe(Response(imp, Outcome::Kind::kConversion, 50));
    if (i >= 90) stats.Observe(Response(imp, Outcome::Kind::kDismiss));
  }
  ResponseEstimate e = stats.Estimate("o1", "", "s", 0.1, 30, 0);
  // (10 x 0.1 + 20) / (10 + 40)
  EXPECT_NEAR(e.p_convert, 21.0 / 50, 1e-9);
  // (30 + 20 x 50) / (1 + 20)
  EXPECT_NEAR(e.value_per_conversion, 1030.0 / 21, 1e-9);
  EXPECT_DOUBLE_EQ(e.dismissals, 10);
  EXPECT_DOUBLE_EQ(e.clicks, 40);
}

TEST(ResponseStats, ClicksWithoutImpressionsNeverMakeBetaNegative) {
  ResponseStats stats;
  Impression imp = Shown("o1", "", "s", 0);
  stats.Observe(imp);
  for (int i = 0; i < 5; ++i) stats.Observe(Response(imp, Outcome::Kind::kClick));
  ResponseEstimate e = stats.Estimate("o1", "", "s", 0.1, 1, 0);
  EXPECT_GT(e.beta, 0);
  EXPECT_LE(e.p_click, 1.0);
}

TEST(ResponseStats, PruneDropsFadedCells) {
  ResponseStats stats(ResponseOptions{.half_life_days = 1});
  stats.Observe(Shown("o_old", "toys", "s", 0));
  stats.Observe(Shown("o_new", "", "s", 30 * kDay));
  EXPECT_EQ(stats.cells(), 3u);
  EXPECT_EQ(stats.Prune(30 * kDay), 2u);  // o_old and cat:toys: 2^-30 left
  EXPECT_EQ(stats.cells(), 1u);
  EXPECT_DOUBLE_EQ(stats.Counts("o_new", "s", 30 * kDay).impressions, 1);
}

TEST(ResponseStats, ReplayRebuildsTheSameState) {
  std::vector<Impression> imps;
  std::vector<Outcome> outs;
  for (int i = 0; i < 50; ++i) {
    imps.push_back(Shown(i % 2 ? "o1" : "o2", "toys", "s", i * 3600000LL));
    if (i % 7 == 0) outs.push_back(Response(imps.back(), Outcome::Kind::kClick));
  }
  ResponseStats live, replayed;
  for (size_t i = 0, j = 0; i < imps.size(); ++i) {
    live.Observe(imps[i]);
    while (j < outs.size() && outs[j].impression.decision_id == imps[i].decision_id)
      live.Observe(outs[j++]);
  }
  replayed.ObserveAll(imps, outs);
  const int64_t now = 5 * kDay;
  for (const char* key : {"o1", "o2", "cat:toys"}) {
    EXPECT_NEAR(live.Counts(key, "s", now).impressions, replayed.Counts(key, "s", now).impressions,
                1e-9);
    EXPECT_NEAR(live.Counts(key, "s", now).clicks, replayed.Counts(key, "s", now).clicks, 1e-9);
  }
  EXPECT_GT(replayed.ReplayHorizonMs(), 0);
}

TEST(ResponseStats, TwoObserversAndAReader) {
  ResponseStats stats(ResponseOptions{.half_life_days = 1e6});
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  auto writer = [&](int id) {
    for (int i = 0; i < 5000; ++i) {
      Impression imp = Shown("o1", "toys", "s", kDay, std::to_string(id) + "_" + std::to_string(i));
      stats.Observe(imp);
      if (i % 5 == 0) stats.Observe(Response(imp, Outcome::Kind::kClick));
      // Other keys too, so the shards see concurrent inserts.
      stats.Observe(Shown("k" + std::to_string(i % 97), "c" + std::to_string(id), "s", kDay));
    }
  };
  std::thread reader([&] {
    double last = 0;
    while (!stop.load()) {
      ResponseEstimate e = stats.Estimate("o1", "toys", "s", 0.1, 1, kDay);
      if (!(e.p_click >= 0 && e.p_click <= 1) || e.impressions < last) bad.fetch_add(1);
      last = e.impressions;
    }
  });
  std::thread a(writer, 1), b(writer, 2);
  a.join();
  b.join();
  stop.store(true);
  reader.join();
  EXPECT_EQ(bad.load(), 0);
  ResponseCounts c = stats.Counts("o1", "s", kDay);
  EXPECT_DOUBLE_EQ(c.impressions, 10000);
  EXPECT_DOUBLE_EQ(c.clicks, 2000);
  EXPECT_DOUBLE_EQ(stats.Counts("cat:toys", "s", kDay).impressions, 10000);
}

TEST(ResponseWhy, NamesItsSourceCountsAndSegment) {
  ResponseStats stats(ResponseOptions{.half_life_days = 1e6, .prior_strength = 20});
  for (int i = 0; i < 30; ++i) {
    Impression imp = Shown("o1", "toys", "home|web", 0, "d" + std::to_string(i));
    stats.Observe(imp);
    if (i < 3) stats.Observe(Response(imp, Outcome::Kind::kClick));
  }
  nlohmann::json w = ResponseWhy(stats.Estimate("o1", "toys", "home|web", 0.05, 1, 0), "home|web");
  EXPECT_EQ(w["source"], "posterior");
  EXPECT_EQ(w["n"], 30);
  EXPECT_EQ(w["clicks"], 3);
  EXPECT_EQ(w["segment"], "home|web");
  EXPECT_NEAR(w["p_click"].get<double>(), 4.0 / 50, 1e-4);
  EXPECT_TRUE(w.contains("p_convert"));
  nlohmann::json cold = ResponseWhy(stats.Estimate("o2", "books", "home|web", 0.05, 1, 0), "x");
  EXPECT_EQ(cold["source"], "model prior");
  nlohmann::json cat = ResponseWhy(stats.Estimate("o2", "toys", "home|web", 0.05, 1, 0), "x");
  EXPECT_EQ(cat["source"], "category prior");
}

// ---------------------------------------------------------------- features

TEST(ResponseFeatures, SegmentKeys) {
  nlohmann::json dna = {{"night_owl", "low"}, {"deal_seeker", "high"}};
  EXPECT_EQ(SegmentKey("home", "web", &dna), "home|web|deal_seeker=high|night_owl=low");
  EXPECT_EQ(SegmentKey("home", "web", nullptr), "home|web");
  EXPECT_EQ(SegmentKey("email", "", nullptr), "email|-");
  EXPECT_EQ(SegmentKey("home", "app", &dna, {"night_owl", "big_spender"}),
            "home|app|night_owl=low|big_spender=none");
  nlohmann::json not_object = "high";
  EXPECT_EQ(SegmentKey("home", "app", &not_object), "home|app");
}

TEST(ResponseFeatures, ShippedDnaTraitsLandInDistinctSlots) {
  std::set<size_t> slots;
  for (const char* t :
       {"deal_seeker", "night_owl", "big_spender", "gift_buyer", "churn_risk", "brand_passionate"})
    slots.insert(FeatureLayout::DnaSlot(t));
  EXPECT_EQ(slots.size(), 6u);
}

Catalog TwoCategoryCatalog() {
  Catalog c;
  auto add = [&](const std::string& id, const std::string& cat) {
    Item it;
    it.id = id;
    it.category = cat;
    c.item_index[id] = c.items.size();
    c.items.push_back(it);
  };
  add("t1", "toys");
  add("t2", "toys");
  add("l1", "laptops");
  return c;
}

TEST(ResponseFeatures, CategoryAffinityFromPurchasesAndRecentEvents) {
  Catalog catalog = TwoCategoryCatalog();
  Profile p;
  EventHistory::Builder b;
  b.Add("purchase", "", "t1", 1);
  b.Add("purchase", "", "t2", 2);
  b.Add("purchase", "", "t2", 3);  // the same item again: counted once
  b.Add("purchase", "", "l1", 3);
  b.Add("view", "", "l1", 4);  // history views are not read: recent ones are
  p.history = b.Build(0);
  auto event = [](const std::string& type, const std::string& item) {
    Event e;
    e.type = type;
    e.item_id = item;
    return e;
  };
  // Recent: two laptop views, an unknown item, and a purchase already in the
  // history (not counted twice).
  p.recent = {event("view", "l1"), event("view", "l1"), event("click", "gone"),
              event("purchase", "t1")};
  DecisionFeatures d = BuildDecisionFeatures(&p, catalog, "app", 23, 6, nullptr);
  EXPECT_DOUBLE_EQ(d.CategoryWeight("toys"), 6.0);     // 2 items bought x 3
  EXPECT_DOUBLE_EQ(d.CategoryWeight("laptops"), 3.5);  // 1 bought, 2 views x 0.25
  EXPECT_DOUBLE_EQ(d.total_weight, 9.5);

  FeatureLayout layout({"cf", "dna"});
  std::vector<float> x(layout.size());
  CandidateFeatures(layout, d, CandidateInput{.category = "toys", .blend = 0.3}, x.data());
  EXPECT_FLOAT_EQ(x[FeatureLayout::kBias], 1);
  EXPECT_FLOAT_EQ(x[FeatureLayout::kBlend], 0.3f);
  EXPECT_NEAR(x[FeatureLayout::kAffinityShare], 6.0 / 9.5, 1e-6);
  EXPECT_NEAR(x[FeatureLayout::kAffinityLog], std::log1p(6.0), 1e-6);
  EXPECT_FLOAT_EQ(x[FeatureLayout::kAffinityNone], 0);
  EXPECT_FLOAT_EQ(x[FeatureLayout::kChannel + 1], 1);  // app
  EXPECT_FLOAT_EQ(x[FeatureLayout::kHour + 3], 1);     // evening
  EXPECT_FLOAT_EQ(x[FeatureLayout::kWeekend], 1);      // Saturday
  CandidateFeatures(layout, d, CandidateInput{.category = "beauty"}, x.data());
  EXPECT_FLOAT_EQ(x[FeatureLayout::kAffinityShare], 0);

  // Anonymous: no events at all.
  DecisionFeatures anon = BuildDecisionFeatures(nullptr, catalog, "web", 3, 2, nullptr);
  CandidateFeatures(layout, anon, CandidateInput{.category = "toys"}, x.data());
  EXPECT_FLOAT_EQ(x[FeatureLayout::kAffinityNone], 1);
  EXPECT_FLOAT_EQ(x[FeatureLayout::kChannel + 0], 1);
  EXPECT_FLOAT_EQ(x[FeatureLayout::kHour + 0], 1);
  EXPECT_FLOAT_EQ(x[FeatureLayout::kWeekend], 0);
}

TEST(ResponseFeatures, PluginScoresAbstentionsAndFailures) {
  FeatureLayout layout({"cf", "content", "dna"});
  ASSERT_EQ(layout.size(), FeatureLayout::kPlugins + 6);
  ASSERT_EQ(layout.Names().size(), layout.size());
  EXPECT_EQ(layout.Names()[layout.plugin_abstain(1)], "content_abstained");
  // Engine layout: plugin k's scores for 2 candidates at [k * 2 + i].
  const float scores[] = {0.7f, TAILOR_SCORE_ABSTAIN, 0.2f, 0.4f, 0.9f, 0.9f};
  std::vector<bool> ok = {true, true, false};
  DecisionFeatures d;
  nlohmann::json dna = {{"deal_seeker", "high"}, {"night_owl", "medium"}};
  d = BuildDecisionFeatures(nullptr, Catalog{}, "email", 12, 3, &dna);
  std::vector<float> x(layout.size());
  CandidateFeatures(layout, d,
                    CandidateInput{.plugin_scores = scores + 1, .stride = 2, .plugin_ok = &ok},
                    x.data());
  EXPECT_FLOAT_EQ(x[layout.plugin_score(0)], 0);  // abstained
  EXPECT_FLOAT_EQ(x[layout.plugin_abstain(0)], 1);
  EXPECT_FLOAT_EQ(x[layout.plugin_score(1)], 0.4f);
  EXPECT_FLOAT_EQ(x[layout.plugin_abstain(1)], 0);
  EXPECT_FLOAT_EQ(x[layout.plugin_score(2)], 0);  // failed this request
  EXPECT_FLOAT_EQ(x[layout.plugin_abstain(2)], 1);
  EXPECT_FLOAT_EQ(x[FeatureLayout::kDna + FeatureLayout::DnaSlot("deal_seeker")], 1.0f);
  EXPECT_FLOAT_EQ(x[FeatureLayout::kDna + FeatureLayout::DnaSlot("night_owl")], 0.5f);
  EXPECT_FLOAT_EQ(x[FeatureLayout::kChannel + 2], 1);  // email
  EXPECT_FLOAT_EQ(x[FeatureLayout::kHour + 2], 1);     // afternoon
}

TEST(ResponseFeatures, OfferCategoryFromItsItem) {
  Catalog catalog = TwoCategoryCatalog();
  Offer by_cat;
  by_cat.category = "books";
  Offer by_item;
  by_item.item = "l1";
  Offer content;
  content.content = "x";
  EXPECT_EQ(OfferCategory(by_cat, catalog), "books");
  EXPECT_EQ(OfferCategory(by_item, catalog), "laptops");
  EXPECT_EQ(OfferCategory(content, catalog), "");
}

// ---------------------------------------------------------------- model

// Features with a planted logistic relation over blend, affinity, channel
// and weekend; the rest of the layout random noise the truth ignores.
struct Planted {
  FeatureLayout layout{{"cf", "content"}};
  std::mt19937_64 rng{7};
  double Truth(const std::vector<float>& x) const {
    double z = -3.0 + 2.5 * x[FeatureLayout::kBlend] + 2.0 * x[FeatureLayout::kAffinityShare] +
               1.0 * x[FeatureLayout::kChannel + 1] - 0.8 * x[FeatureLayout::kWeekend];
    return 1 / (1 + std::exp(-z));
  }
  Example Draw() {
    std::uniform_real_distribution<double> u(0, 1);
    Example e;
    e.x.assign(layout.size(), 0.0f);
    e.x[FeatureLayout::kBias] = 1;
    e.x[FeatureLayout::kBlend] = static_cast<float>(u(rng));
    e.x[FeatureLayout::kAffinityShare] = static_cast<float>(u(rng) < 0.5 ? 0 : u(rng));
    e.x[FeatureLayout::kChannel + (u(rng) < 0.4 ? 1 : 0)] = 1;
    e.x[FeatureLayout::kWeekend] = u(rng) < 2.0 / 7 ? 1 : 0;
    e.x[FeatureLayout::kDna + 3] = static_cast<float>(u(rng) < 0.5 ? 1 : 0);
    e.x[layout.plugin_score(0)] = static_cast<float>(u(rng));
    e.clicked = u(rng) < Truth(e.x);
    return e;
  }
};

TEST(ResponseModel, StartsAtTheDocumentedPrior) {
  FeatureLayout layout({"cf"});
  ResponseModel model(layout.size());
  std::vector<float> x(layout.size(), 0.0f);
  x[FeatureLayout::kBias] = 1;
  for (double blend : {0.0, 0.3, 1.0}) {
    x[FeatureLayout::kBlend] = static_cast<float>(blend);
    x[FeatureLayout::kAffinityShare] = 0.9f;  // untrained: carries no weight yet
    EXPECT_NEAR(model.Predict(x.data()), PriorClickProbability(blend), 1e-6);
  }
  EXPECT_LT(PriorClickProbability(0.1), PriorClickProbability(0.5));
  EXPECT_EQ(model.weights()->examples, 0);
}

TEST(ResponseModel, LearnsAPlantedRelationAndIsCalibrated) {
  Planted world;
  ResponseModel model(world.layout.size());
  std::vector<Example> train;
  for (int i = 0; i < 60000; ++i) train.push_back(world.Draw());
  model.Train(train);
  auto w = model.weights();
  EXPECT_EQ(w->examples, 60000);
  std::vector<std::pair<double, bool>> held, constant;
  double max_err = 0, mean_err = 0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    Example e = world.Draw();
    double p = PredictClick(*w, e.x.data(), e.x.size());
    held.emplace_back(p, e.clicked);
    constant.emplace_back(0.6, e.clicked);  // twice the base rate
    double err = std::fabs(p - world.Truth(e.x));
    mean_err += err / n;
    max_err = std::max(max_err, err);
  }
  CalibrationReport good = Calibration(held);
  CalibrationReport bad = Calibration(constant);
  EXPECT_LT(good.ece, 0.03) << CalibrationJson(good).dump();
  EXPECT_GT(bad.ece, 0.2) << CalibrationJson(bad).dump();
  EXPECT_LT(mean_err, 0.03);
  // The planted signs are learned: affinity and app raise P, weekend lowers it.
  EXPECT_GT(w->w[FeatureLayout::kAffinityShare], 1.0f);
  EXPECT_GT(w->w[FeatureLayout::kChannel + 1], w->w[FeatureLayout::kChannel]);
  EXPECT_LT(w->w[FeatureLayout::kWeekend], -0.3f);
}

TEST(ResponseModel, TrainingIsDeterministic) {
  Planted a, b;
  ResponseModel ma(a.layout.size()), mb(b.layout.size());
  std::vector<Example> ea, eb;
  for (int i = 0; i < 2000; ++i) {
    ea.push_back(a.Draw());
    eb.push_back(b.Draw());
  }
  ma.Train(ea);
  mb.Train(eb);
  EXPECT_EQ(ma.weights()->w, mb.weights()->w);
}

TEST(ResponseModel, ClicksTrainAtOnceAndSilenceAfterTheWindow) {
  FeatureLayout layout({"cf"});
  ResponseModel model(layout.size(), ModelOptions{.label_window_ms = kDay});
  std::vector<float> x(layout.size(), 0.0f);
  x[FeatureLayout::kBias] = 1;
  x[FeatureLayout::kAffinityShare] = 1;
  const double before = model.Predict(x.data());
  Impression clicked = Shown("o1", "toys", "s", 0, "d1");
  clicked.features = x;
  Impression ignored = Shown("o1", "toys", "s", 0, "d2");
  ignored.features = x;
  model.Observe(clicked);
  model.Observe(ignored);
  model.Observe(clicked);  // the same impression again: held once
  EXPECT_EQ(model.pending(), 2u);
  model.Observe(Response(clicked, Outcome::Kind::kClick));
  EXPECT_EQ(model.pending(), 1u);
  EXPECT_EQ(model.weights()->positives, 1);
  EXPECT_GT(model.Predict(x.data()), before);
  EXPECT_EQ(model.Flush(kDay / 2), 0u);  // still inside its window
  EXPECT_EQ(model.Flush(kDay), 1u);
  EXPECT_EQ(model.pending(), 0u);
  EXPECT_EQ(model.weights()->examples, 2);
  // A click after the window changes nothing.
  model.Observe(Response(ignored, Outcome::Kind::kClick));
  EXPECT_EQ(model.weights()->positives, 1);
}

// ---------------------------------------------------------------- calibration

TEST(ResponseCalibration, ReliabilityTableAndEce) {
  std::vector<std::pair<double, bool>> pairs;
  // Bin 1 (0.1..0.2): predicted 0.15, observed 1/4. Bin 8: predicted 0.85,
  // observed 3/4. p = 1 lands in the last bin; NaN is skipped.
  for (int i = 0; i < 4; ++i) pairs.emplace_back(0.15, i == 0);
  for (int i = 0; i < 4; ++i) pairs.emplace_back(0.85, i != 0);
  pairs.emplace_back(1.0, true);
  pairs.emplace_back(std::nan(""), true);
  CalibrationReport r = Calibration(pairs);
  EXPECT_EQ(r.count, 9u);
  EXPECT_EQ(r.bins[1].count, 4u);
  EXPECT_NEAR(r.bins[1].mean_predicted, 0.15, 1e-12);
  EXPECT_NEAR(r.bins[1].observed_rate, 0.25, 1e-12);
  EXPECT_EQ(r.bins[8].count, 4u);
  EXPECT_EQ(r.bins[9].count, 1u);
  EXPECT_EQ(r.bins[0].count, 0u);
  EXPECT_NEAR(r.ece, (4 * 0.1 + 4 * 0.1 + 0) / 9.0, 1e-12);
  nlohmann::json j = CalibrationJson(r);
  EXPECT_EQ(j["bins"].size(), 10u);
  EXPECT_EQ(j["count"], 9);
  EXPECT_TRUE(Calibration({}).count == 0 && Calibration({}).ece == 0);
}

}  // namespace
}  // namespace tailor::learning
