// The popularity plugin, loaded through the host like the engine loads it,
// trained from a real store.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "plugins/plugin_test_util.h"

namespace tailor {
namespace {

using testing::CategoryCandidate;
using ::testing::HasSubstr;
using testing::ItemCandidate;
using testing::kDayMs;
using testing::kNowMs;
using testing::MakeEvent;
using testing::MakeItem;
using testing::OfferCandidate;
using testing::ScoreAll;
using ::testing::StartsWith;
using testing::TempDir;

// n events of one type on one item (or offer), all at ts_ms.
void Repeat(std::vector<Event>& out, int n, const std::string& type, const std::string& item,
            int64_t ts_ms, const std::string& offer = "") {
  for (int i = 0; i < n; ++i)
    out.push_back(MakeEvent("c" + std::to_string(i), type, item, ts_ms, offer));
}

class PopularityTest : public ::testing::Test {
 protected:
  // Loads the plugin over a store holding items and events; does not train.
  std::unique_ptr<LoadedPlugin> Load(const std::vector<Item>& items,
                                     const std::vector<Event>& events,
                                     const std::string& config = "{}", std::string* err = nullptr) {
    // Each store lives as long as the test: a plugin keeps its Store*.
    store_dirs_.push_back(std::make_unique<TempDir>());
    stores_.push_back(testing::MakeStore(*store_dirs_.back(), items, events));
    store_ = stores_.back().get();
    if (!store_) return nullptr;
    return LoadWithStore(store_, config, err);
  }

  std::unique_ptr<LoadedPlugin> LoadWithStore(Store* store, const std::string& config = "{}",
                                              std::string* err = nullptr) {
    PluginSpec spec;
    spec.name = "popularity";
    spec.path = testing::BuiltinPluginPath("popularity");
    spec.config_json = config;
    std::string e;
    auto p = LoadedPlugin::Load(spec, store, data_dir_.path(), &e);
    if (err) *err = e;
    return p;
  }

  std::unique_ptr<LoadedPlugin> LoadTrained(const std::vector<Item>& items,
                                            const std::vector<Event>& events,
                                            const std::string& config = "{}") {
    std::string err;
    auto p = Load(items, events, config, &err);
    EXPECT_NE(p, nullptr) << err;
    if (!p) return nullptr;
    Status s = p->Train();
    EXPECT_TRUE(s.ok()) << s.message();
    return p;
  }

  TempDir data_dir_;
  std::vector<std::unique_ptr<TempDir>> store_dirs_;  // outlive the stores in them
  std::vector<std::unique_ptr<Store>> stores_;
  Store* store_ = nullptr;  // the latest of stores_
};

const std::vector<Item> kCatalog = {MakeItem("a", "shoes"), MakeItem("b", "shoes"),
                                    MakeItem("c", "hats")};

TEST_F(PopularityTest, MostPurchasedItemRanksFirst) {
  std::vector<Event> ev;
  Repeat(ev, 5, "view", "a", kNowMs - kDayMs);      // 5
  Repeat(ev, 3, "purchase", "b", kNowMs - kDayMs);  // 24
  Repeat(ev, 4, "click", "c", kNowMs - kDayMs);     // 8
  auto p = LoadTrained(kCatalog, ev);
  ASSERT_NE(p, nullptr);

  auto r = ScoreAll(*p, {ItemCandidate("a"), ItemCandidate("b"), ItemCandidate("c")});
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_GT(r.scores[1], r.scores[2]);
  EXPECT_GT(r.scores[2], r.scores[0]);
  EXPECT_EQ(r.reasons[1], "popular: rank 1 of 3 items (14-day half-life)");
  EXPECT_EQ(r.reasons[2], "popular: rank 2 of 3 items (14-day half-life)");
  EXPECT_EQ(r.reasons[0], "popular: rank 3 of 3 items (14-day half-life)");
  // score / (score + median): the median item is exactly one half.
  EXPECT_FLOAT_EQ(r.scores[2], 0.5f);
  EXPECT_FLOAT_EQ(r.scores[1], 24.0f / (24 + 8));
}

TEST_F(PopularityTest, UnknownThingsScoreZeroWithoutAReason) {
  std::vector<Event> ev;
  Repeat(ev, 2, "purchase", "a", kNowMs);
  auto p = LoadTrained(kCatalog, ev);
  ASSERT_NE(p, nullptr);
  auto r = ScoreAll(*p, {ItemCandidate("nope"),
                         ItemCandidate("b"),
                         OfferCandidate("o9"),
                         CategoryCandidate("o9", "gloves"),
                         {nullptr, nullptr, nullptr}});
  ASSERT_TRUE(r.status.ok());
  for (size_t i = 0; i < r.scores.size(); ++i) {
    EXPECT_EQ(r.scores[i], 0.0f) << i;
    EXPECT_EQ(r.reasons[i], "") << i;
  }
}

TEST_F(PopularityTest, RecencyBeatsAnOldBurst) {
  std::vector<Event> ev;
  Repeat(ev, 10, "purchase", "a", kNowMs - 60 * kDayMs);  // 80 * 2^(-60/14) ~ 4.1
  Repeat(ev, 2, "purchase", "b", kNowMs - 1 * kDayMs);    // 16 * 2^(-1/14) ~ 15
  auto p = LoadTrained(kCatalog, ev);
  ASSERT_NE(p, nullptr);
  auto r = ScoreAll(*p, {ItemCandidate("a"), ItemCandidate("b")});
  ASSERT_TRUE(r.status.ok());
  EXPECT_GT(r.scores[1], r.scores[0]);
  EXPECT_THAT(r.reasons[1], StartsWith("popular: rank 1 of 2 items"));

  // With a ten-year half-life the burst is still the bigger thing.
  auto slow = LoadTrained(kCatalog, ev, R"({"half_life_days": 3650})");
  ASSERT_NE(slow, nullptr);
  r = ScoreAll(*slow, {ItemCandidate("a"), ItemCandidate("b")});
  ASSERT_TRUE(r.status.ok());
  EXPECT_GT(r.scores[0], r.scores[1]);
  EXPECT_EQ(r.reasons[0], "popular: rank 1 of 2 items (3650-day half-life)");
}

TEST_F(PopularityTest, ObserveMovesAnItemUpImmediately) {
  std::vector<Event> ev;
  Repeat(ev, 3, "purchase", "a", kNowMs - 2 * kDayMs);
  Repeat(ev, 2, "purchase", "b", kNowMs - 2 * kDayMs);
  Repeat(ev, 1, "view", "c", kNowMs - 2 * kDayMs);
  auto p = LoadTrained(kCatalog, ev);
  ASSERT_NE(p, nullptr);
  const std::vector<tailor_candidate> cands = {ItemCandidate("a"), ItemCandidate("b"),
                                               ItemCandidate("c")};
  auto before = ScoreAll(*p, cands);
  ASSERT_TRUE(before.status.ok());
  EXPECT_EQ(before.reasons[2], "popular: rank 3 of 3 items (14-day half-life)");

  for (int i = 0; i < 4; ++i) {
    Status s = p->Observe(testing::ViewOf(MakeEvent("z", "purchase", "c", kNowMs)));
    ASSERT_TRUE(s.ok()) << s.message();
  }
  auto after = ScoreAll(*p, cands);
  ASSERT_TRUE(after.status.ok());
  EXPECT_GT(after.scores[2], before.scores[2]);
  EXPECT_EQ(after.reasons[2], "popular: rank 1 of 3 items (14-day half-life)");
  EXPECT_EQ(after.reasons[0], "popular: rank 2 of 3 items (14-day half-life)");
  EXPECT_EQ(p->counters().observe_calls.load(), 4u);

  // A brand-new item enters the ranking too.
  ASSERT_TRUE(p->Observe(testing::ViewOf(MakeEvent("z", "view", "new", kNowMs))).ok());
  auto fresh = ScoreAll(*p, {ItemCandidate("new")});
  EXPECT_GT(fresh.scores[0], 0.0f);
  EXPECT_EQ(fresh.reasons[0], "popular: rank 4 of 4 items (14-day half-life)");
}

TEST_F(PopularityTest, ObserveAgreesWithTrain) {
  // Events spread over 300 days with a 1-day half-life: the forward-decay
  // reference is rebased several times along the way.
  std::vector<Event> ev;
  const char* types[] = {"view", "click", "add_to_cart", "purchase"};
  for (int i = 0; i < 600; ++i) {
    const std::string item = std::string(1, static_cast<char>('a' + (i * 7) % 3));
    ev.push_back(MakeEvent("c", types[(i * 5) % 4], item, kNowMs - 300 * kDayMs + i * kDayMs / 2));
  }
  const std::string config = R"({"half_life_days": 1})";
  auto trained = LoadTrained(kCatalog, ev, config);
  ASSERT_NE(trained, nullptr);

  // The same catalog, no events in the store: everything arrives via Observe.
  auto online = LoadTrained(kCatalog, {}, config);
  ASSERT_NE(online, nullptr);
  for (const Event& e : ev) ASSERT_TRUE(online->Observe(testing::ViewOf(e)).ok());

  const std::vector<tailor_candidate> cands = {ItemCandidate("a"), ItemCandidate("b"),
                                               ItemCandidate("c"), CategoryCandidate("o", "shoes"),
                                               CategoryCandidate("o", "hats")};
  auto x = ScoreAll(*trained, cands);
  auto y = ScoreAll(*online, cands);
  ASSERT_TRUE(x.status.ok() && y.status.ok());
  for (size_t i = 0; i < cands.size(); ++i) {
    EXPECT_TRUE(std::isfinite(x.scores[i]) && x.scores[i] > 0) << i;
    EXPECT_NEAR(x.scores[i], y.scores[i], 1e-5) << i;
  }
  EXPECT_EQ(x.reasons, y.reasons);
}

TEST_F(PopularityTest, CategoryAndOfferCandidates) {
  std::vector<Event> ev;
  Repeat(ev, 2, "purchase", "a", kNowMs);  // shoes: a + b
  Repeat(ev, 1, "purchase", "b", kNowMs);
  Repeat(ev, 1, "purchase", "c", kNowMs);               // hats: c
  Repeat(ev, 50, "impression", "", kNowMs, "o_shown");  // impressions count 0
  Repeat(ev, 3, "offer_click", "", kNowMs, "o_clicked");
  Repeat(ev, 2, "convert", "", kNowMs, "o_converted");
  auto p = LoadTrained(kCatalog, ev);
  ASSERT_NE(p, nullptr);

  auto r = ScoreAll(*p, {
                            CategoryCandidate("o1", "shoes"),
                            CategoryCandidate("o2", "hats"),
                            OfferCandidate("o_converted"),
                            OfferCandidate("o_clicked"),
                            OfferCandidate("o_shown"),
                            {"o3", "a", "hats"},  // an item wins over its category
                            ItemCandidate("a"),
                        });
  ASSERT_TRUE(r.status.ok());
  EXPECT_GT(r.scores[0], r.scores[1]);
  EXPECT_EQ(r.reasons[0], "popular: rank 1 of 2 categories (14-day half-life)");
  EXPECT_GT(r.scores[2], r.scores[3]);  // 2 converts (16) > 3 clicks (6)
  EXPECT_EQ(r.reasons[2], "popular: rank 1 of 2 offers (14-day half-life)");
  EXPECT_EQ(r.scores[4], 0.0f);
  EXPECT_EQ(r.reasons[4], "");
  EXPECT_EQ(r.scores[5], r.scores[6]);
  EXPECT_EQ(r.reasons[5], r.reasons[6]);

  // Weights are configurable; impressions count once given a weight.
  auto q = LoadTrained(kCatalog, ev, R"({"offer_weights": {"impression": 1}})");
  ASSERT_NE(q, nullptr);
  r = ScoreAll(*q, {OfferCandidate("o_shown")});
  EXPECT_EQ(r.reasons[0], "popular: rank 1 of 3 offers (14-day half-life)");
}

TEST_F(PopularityTest, SaveLoadRoundTripsIdenticalScores) {
  std::vector<Event> ev;
  Repeat(ev, 3, "purchase", "a", kNowMs - 5 * kDayMs);
  Repeat(ev, 7, "view", "b", kNowMs - kDayMs);
  Repeat(ev, 1, "add_to_cart", "c", kNowMs);
  Repeat(ev, 2, "convert", "a", kNowMs, "o1");
  Repeat(ev, 1, "view", "odd id with spaces\nand a newline", kNowMs);
  auto p = LoadTrained(kCatalog, ev);
  ASSERT_NE(p, nullptr);
  const std::string model = data_dir_.file("popularity.model");
  Status s = p->Save(model);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_THAT(testing::ReadFile(model), StartsWith("tailor-popularity-model\nversion 1\n"));

  // A fresh instance over an empty store: everything comes from the file,
  // except the catalog, which Load reads for crediting categories.
  auto q = LoadWithStore(store_);
  ASSERT_NE(q, nullptr);
  s = q->LoadModel(model);
  ASSERT_TRUE(s.ok()) << s.message();
  const std::vector<tailor_candidate> cands = {ItemCandidate("a"),
                                               ItemCandidate("b"),
                                               ItemCandidate("c"),
                                               ItemCandidate("odd id with spaces\nand a newline"),
                                               CategoryCandidate("x", "shoes"),
                                               CategoryCandidate("x", "hats"),
                                               OfferCandidate("o1")};
  auto x = ScoreAll(*p, cands);
  auto y = ScoreAll(*q, cands);
  EXPECT_EQ(x.scores, y.scores);
  EXPECT_EQ(x.reasons, y.reasons);

  // Both keep learning the same way.
  const Event next = MakeEvent("z", "purchase", "c", kNowMs + kDayMs);
  ASSERT_TRUE(p->Observe(testing::ViewOf(next)).ok());
  ASSERT_TRUE(q->Observe(testing::ViewOf(next)).ok());
  EXPECT_EQ(ScoreAll(*p, cands).scores, ScoreAll(*q, cands).scores);
}

TEST_F(PopularityTest, BadConfigFailsCreateNamingTheKey) {
  struct Case {
    const char* config;
    std::vector<const char*> expect;
  };
  const Case cases[] = {
      {R"({"half_lfe_days": 7})",
       {"unknown key 'half_lfe_days'", "known: half_life_days, weights, offer_weights"}},
      {R"({"half_life_days": -1})", {"half_life_days", "-1"}},
      {R"({"half_life_days": "two weeks"})", {"half_life_days", "two weeks"}},
      {R"({"weights": {"purchase": -8}})", {"weights.purchase"}},
      {R"({"weights": [1, 2]})", {"weights: expected an object"}},
      {R"({"offer_weights": {"convert": "lots"}})", {"offer_weights.convert"}},
      // All problems at once, not just the first.
      {R"({"bogus": 1, "weights": {"view": null}})", {"'bogus'", "weights.view"}},
      {R"({"half_life_days": )", {"not valid JSON"}},
      {R"([1, 2])", {"expected a JSON object"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.config);
    std::string err;
    auto p = Load(kCatalog, {}, c.config, &err);
    EXPECT_EQ(p, nullptr);
    EXPECT_THAT(err, HasSubstr("create failed: popularity config: "));
    for (const char* want : c.expect) EXPECT_THAT(err, HasSubstr(want));
  }
}

TEST_F(PopularityTest, LoadRejectsForeignAndMismatchedFiles) {
  std::vector<Event> ev;
  Repeat(ev, 2, "purchase", "a", kNowMs);
  auto p = LoadTrained(kCatalog, ev);
  ASSERT_NE(p, nullptr);
  const auto before = ScoreAll(*p, {ItemCandidate("a")});

  const std::string wrong = data_dir_.file("wrong_magic.model");
  testing::WriteFile(wrong, "some-other-model\nversion 1\n");
  Status s = p->LoadModel(wrong);
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("not a popularity model file"));
  EXPECT_THAT(s.message(), HasSubstr(wrong));

  const std::string future = data_dir_.file("future.model");
  testing::WriteFile(future, "tailor-popularity-model\nversion 9\n");
  s = p->LoadModel(future);
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("version 9 is not supported"));

  s = p->LoadModel(data_dir_.file("missing.model"));
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("cannot open model file"));

  // A model saved with another half-life does not silently mix time scales.
  auto other = LoadTrained(kCatalog, ev, R"({"half_life_days": 7})");
  ASSERT_NE(other, nullptr);
  const std::string seven = data_dir_.file("seven.model");
  ASSERT_TRUE(other->Save(seven).ok());
  s = p->LoadModel(seven);
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("retrain"));

  // Truncated: names the line.
  const std::string good = data_dir_.file("good.model");
  ASSERT_TRUE(p->Save(good).ok());
  std::string text = testing::ReadFile(good);
  testing::WriteFile(good, text.substr(0, text.size() - 5));
  s = p->LoadModel(good);
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("corrupt model file"));

  // None of the failures disturbed the model being served.
  EXPECT_EQ(ScoreAll(*p, {ItemCandidate("a")}).scores, before.scores);
}

}  // namespace
}  // namespace tailor
