// The cf plugin, loaded through the host like the engine loads it, trained
// from a real store holding a synthetic world with planted co-purchase groups.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <fstream>
#include <numeric>
#include <thread>

#include "plugins/plugin_test_util.h"

namespace tailor {
namespace {

using ::testing::HasSubstr;
using testing::ItemCandidate;
using testing::kDayMs;
using testing::kNowMs;
using testing::MakeEvent;
using testing::MakeItem;
using ::testing::StartsWith;
using testing::TempDir;

// Three groups of five items; every customer buys only inside one group.
// g0 (a*) is the most popular group, so popularity alone would rank it first.
std::vector<std::string> GroupItems(char g) {
  std::vector<std::string> out;
  for (int i = 0; i < 5; ++i) out.push_back(std::string(1, g) + std::to_string(i));
  return out;
}

std::vector<Item> Catalog() {
  std::vector<Item> items;
  for (char g : {'a', 'b', 'c'})
    for (const auto& id : GroupItems(g)) items.push_back(MakeItem(id, std::string("cat_") + g));
  items.push_back(MakeItem("lonely", "cat_z"));  // in the catalog, never bought
  return items;
}

std::vector<Event> World() {
  std::vector<Event> ev;
  int cust = 0;
  const std::pair<char, int> groups[] = {{'a', 30}, {'b', 20}, {'c', 20}};
  for (auto [g, customers] : groups) {
    const auto items = GroupItems(g);
    for (int k = 0; k < customers; ++k, ++cust) {
      // Each customer buys one of the ten 3-subsets of the group, in turn,
      // so that every pair inside a group is bought together equally often.
      int seen = 0;
      for (int x = 0; x < 5; ++x)
        for (int y = x + 1; y < 5; ++y)
          for (int z = y + 1; z < 5; ++z, ++seen) {
            if (seen != k % 10) continue;
            for (int j : {x, y, z})
              ev.push_back(MakeEvent("u" + std::to_string(cust), "purchase", items[j],
                                     kNowMs - (30 - j) * kDayMs));
          }
    }
  }
  return ev;
}

std::vector<tailor_candidate> Candidates(const std::vector<std::string>& ids) {
  std::vector<tailor_candidate> c;
  for (const auto& id : ids) c.push_back(ItemCandidate(id.c_str()));
  return c;
}

std::vector<std::string> AllItems() {
  std::vector<std::string> ids;
  for (char g : {'a', 'b', 'c'})
    for (const auto& id : GroupItems(g)) ids.push_back(id);
  ids.push_back("lonely");
  return ids;
}

// Scores with a request that carries a customer, recent events and context.
testing::Scored ScoreFor(LoadedPlugin& p, const std::vector<std::string>& ids, const char* customer,
                         const std::vector<Event>& recent, const char* context = "{}",
                         const char* placement = "recs") {
  std::vector<tailor_event_view> views;
  for (const Event& e : recent) views.push_back(testing::ViewOf(e));
  tailor_request_view req = testing::MakeRequest();
  req.customer_id = customer;
  req.known_customer = customer != nullptr;
  req.placement = placement;
  req.context_json = context;
  req.recent = views.data();
  req.n_recent = views.size();
  const auto cands = Candidates(ids);
  testing::Scored out;
  out.scores.assign(ids.size(), -1.0f);
  std::vector<char> reasons(ids.size() * 96, 0);
  out.status = p.Score(req, cands.data(), cands.size(), out.scores.data(), reasons.data(), 96);
  for (size_t i = 0; i < ids.size(); ++i)
    out.reasons.emplace_back(reasons.data() + i * 96, strnlen(reasons.data() + i * 96, 96));
  return out;
}

// The first n of v, sorted: a set to compare with (gmock's matchers are not linked).
std::vector<std::string> TopSet(const std::vector<std::string>& v, size_t n) {
  std::vector<std::string> out(v.begin(),
                               v.begin() + static_cast<ptrdiff_t>(std::min(n, v.size())));
  std::sort(out.begin(), out.end());
  return out;
}

// The ids ranked by score, best first (ties by id).
std::vector<std::string> Ranked(const std::vector<std::string>& ids, const std::vector<float>& s) {
  std::vector<size_t> order(ids.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return s[a] > s[b]; });
  std::vector<std::string> out;
  for (size_t i : order) out.push_back(ids[i]);
  return out;
}

class CfTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { store_ = testing::MakeStore(store_dir_, Catalog(), World()); }

  std::string Config(const std::string& extra = "") const {
    const std::string base =
        GetParam() == "als"
            ? R"("algorithm":"als","als_factors":8,"als_iterations":30,"als_cg_steps":8,"als_lambda":1)"
            : R"("algorithm":"ease","ease_lambda":5)";
    // The planted worlds test the item-item model alone: no trending prior
    // (in 15 items it would outweigh the tiny co-purchase scores).
    const std::string no_trend = R"(,"trend_weight":0)";
    return "{" + base + no_trend + (extra.empty() ? "" : "," + extra) + "}";
  }

  std::unique_ptr<LoadedPlugin> Load(const std::string& config, Store* store, std::string* err) {
    return testing::LoadBuiltin("cf", config, store, data_dir_.path(), err);
  }

  std::unique_ptr<LoadedPlugin> Trained(const std::string& extra = "") {
    return testing::LoadTrainedBuiltin("cf", Config(extra), store_.get(), data_dir_.path());
  }

  TempDir store_dir_, data_dir_;
  std::unique_ptr<Store> store_;
};

TEST_P(CfTest, RecoversPlantedCoPurchaseGroups) {
  auto p = Trained();
  ASSERT_NE(p, nullptr);
  // A new customer who bought two items of group b, seen only through the
  // request's recent events.
  const std::vector<Event> recent = {MakeEvent("new", "purchase", "b0", kNowMs - kDayMs),
                                     MakeEvent("new", "purchase", "b1", kNowMs - kDayMs)};
  const std::vector<std::string> ids = AllItems();
  auto r = ScoreFor(*p, ids, "new", recent);
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  std::vector<std::string> rest;  // the candidates the customer has not bought
  std::vector<float> rest_scores;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] == "lonely") {  // never bought: unknown to the model
      EXPECT_EQ(r.scores[i], TAILOR_SCORE_ABSTAIN);
      continue;
    }
    EXPECT_TRUE(std::isfinite(r.scores[i]) && r.scores[i] >= 0 && r.scores[i] <= 1) << ids[i];
    if (ids[i] == "b0" || ids[i] == "b1") continue;
    rest.push_back(ids[i]);
    rest_scores.push_back(r.scores[i]);
  }
  const auto ranked = Ranked(rest, rest_scores);
  EXPECT_EQ(TopSet(ranked, 3), (std::vector<std::string>{"b2", "b3", "b4"}));
  // r / (r + scale): in (0, 1).
  const float top = *std::max_element(rest_scores.begin(), rest_scores.end());
  EXPECT_GT(top, 0.0f);
  EXPECT_LT(top, 1.0f);
  // Items of other groups get (next to) nothing.
  const size_t a0 = static_cast<size_t>(std::find(ids.begin(), ids.end(), "a0") - ids.begin());
  EXPECT_LT(r.scores[a0], 0.2f * top);
  // The reason names the history item behind the score.
  const size_t b2 = static_cast<size_t>(std::find(ids.begin(), ids.end(), "b2") - ids.begin());
  EXPECT_THAT(r.reasons[b2], StartsWith("because you bought Item b"));
}

TEST_P(CfTest, FoldInChangesRecommendationsImmediately) {
  auto p = Trained();
  ASSERT_NE(p, nullptr);
  const std::vector<std::string> ids = AllItems();
  auto index_of = [&](const char* id) {
    return static_cast<size_t>(std::find(ids.begin(), ids.end(), id) - ids.begin());
  };
  // u0 is a trained group-a customer: an a item leads.
  auto before = ScoreFor(*p, ids, "u0", {});
  ASSERT_TRUE(before.status.ok());
  EXPECT_EQ(Ranked(ids, before.scores)[0][0], 'a');

  // Three new group-c purchases in the request's recent events: no retraining.
  const std::vector<Event> recent = {MakeEvent("u0", "purchase", "c0", kNowMs - 1000),
                                     MakeEvent("u0", "purchase", "c1", kNowMs - 900),
                                     MakeEvent("u0", "purchase", "c2", kNowMs - 800)};
  auto after = ScoreFor(*p, ids, "u0", recent);
  ASSERT_TRUE(after.status.ok());
  EXPECT_GT(after.scores[index_of("c3")], before.scores[index_of("c3")] + 0.2f);
  EXPECT_GT(after.scores[index_of("c4")], before.scores[index_of("c4")] + 0.2f);

  // The same through observe: the next request without recent events sees it.
  for (const Event& e : recent) ASSERT_TRUE(p->Observe(testing::ViewOf(e)).ok());
  auto observed = ScoreFor(*p, ids, "u0", {});
  ASSERT_TRUE(observed.status.ok());
  EXPECT_NEAR(observed.scores[index_of("c3")], after.scores[index_of("c3")], 1e-5);
  // Replaying the observed events as recent ones does not count them twice.
  auto both = ScoreFor(*p, ids, "u0", recent);
  EXPECT_NEAR(both.scores[index_of("c3")], after.scores[index_of("c3")], 1e-5);
}

TEST_P(CfTest, ColdStartAbstainsByDefault) {
  auto p = Trained();
  ASSERT_NE(p, nullptr);
  const std::vector<std::string> ids = {"a0", "b0", "lonely", "never-heard-of"};
  const std::vector<float> abstain(ids.size(), TAILOR_SCORE_ABSTAIN);
  auto r = ScoreFor(*p, ids, nullptr, {});  // anonymous, no history
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_EQ(r.scores, abstain);
  EXPECT_EQ(r.reasons, (std::vector<std::string>(ids.size(), "")));
  // A known customer: items unknown to the model abstain, the others score.
  auto known = ScoreFor(*p, ids, "u0", {});
  ASSERT_TRUE(known.status.ok());
  EXPECT_GE(known.scores[0], 0.0f);
  EXPECT_EQ(known.scores[2], TAILOR_SCORE_ABSTAIN);
  EXPECT_EQ(known.scores[3], TAILOR_SCORE_ABSTAIN);
  // A customer whose only events are on unknown items is cold too.
  auto unknown = ScoreFor(*p, ids, "x", {MakeEvent("x", "purchase", "never-heard-of", kNowMs - 1)});
  ASSERT_TRUE(unknown.status.ok());
  EXPECT_EQ(unknown.scores, abstain);
}

TEST_P(CfTest, ColdStartFallsBackToPopularityWhenConfigured) {
  auto p = Trained(R"("cold_popularity":true)");
  ASSERT_NE(p, nullptr);
  const std::vector<std::string> ids = {"a0", "b0", "lonely", "never-heard-of"};
  auto r = ScoreFor(*p, ids, nullptr, {});  // anonymous, no history
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  // Group a was bought by 30 customers, group b by 20.
  EXPECT_GT(r.scores[0], r.scores[1]);
  EXPECT_GT(r.scores[1], 0.0f);
  EXPECT_THAT(r.reasons[0], StartsWith("no history yet: popular, rank "));
  // Items the model never saw abstain without a reason (content covers them).
  EXPECT_EQ(r.scores[2], TAILOR_SCORE_ABSTAIN);
  EXPECT_EQ(r.scores[3], TAILOR_SCORE_ABSTAIN);
  EXPECT_EQ(r.reasons[3], "");
  // A customer whose only events are on unknown items is cold too.
  auto unknown = ScoreFor(*p, ids, "x", {MakeEvent("x", "purchase", "never-heard-of", kNowMs - 1)});
  ASSERT_TRUE(unknown.status.ok());
  EXPECT_EQ(unknown.scores, r.scores);
}

TEST_P(CfTest, UntrainedInstanceAbstainsWithoutError) {
  std::string err;
  auto p = Load(Config(), store_.get(), &err);
  ASSERT_NE(p, nullptr) << err;
  auto r = ScoreFor(*p, {"a0", "b1"}, "u0", {MakeEvent("u0", "purchase", "a1", kNowMs - 1)});
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_EQ(r.scores, (std::vector<float>{TAILOR_SCORE_ABSTAIN, TAILOR_SCORE_ABSTAIN}));
  EXPECT_EQ(r.reasons, (std::vector<std::string>{"", ""}));
  // Observe before any model is harmless too.
  EXPECT_TRUE(p->Observe(testing::ViewOf(MakeEvent("u0", "view", "a0", kNowMs))).ok());
  EXPECT_EQ(p->counters().score_errors.load(), 0u);
  // Saving nothing is an error, not an empty file.
  EXPECT_FALSE(p->Save(data_dir_.file("none.model")).ok());
}

TEST_P(CfTest, SimilarItemsFromContextOrPlacement) {
  auto p = Trained(R"("similar_placements":["pdp"])");
  ASSERT_NE(p, nullptr);
  const std::vector<std::string> ids = AllItems();
  auto r = ScoreFor(*p, ids, nullptr, {}, R"({"item":"c2"})");
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  const auto ranked = Ranked(ids, r.scores);
  // The anchor itself is not similar to itself; its group leads.
  EXPECT_EQ(TopSet(ranked, 4), (std::vector<std::string>{"c0", "c1", "c3", "c4"}));
  const size_t c3 = static_cast<size_t>(std::find(ids.begin(), ids.end(), "c3") - ids.begin());
  EXPECT_EQ(r.reasons[c3], "customers who bought Item c2 also bought this");

  // On the "pdp" placement the anchor is the newest item event.
  auto pdp = ScoreFor(*p, ids, "u0", {MakeEvent("u0", "view", "b4", kNowMs - 5)}, "{}", "pdp");
  ASSERT_TRUE(pdp.status.ok());
  const auto pdp_ranked = Ranked(ids, pdp.scores);
  EXPECT_EQ(TopSet(pdp_ranked, 4), (std::vector<std::string>{"b0", "b1", "b2", "b3"}));
}

TEST_P(CfTest, SaveLoadRoundTrip) {
  auto p = Trained();
  ASSERT_NE(p, nullptr);
  const std::string path = data_dir_.file("cf.model");
  ASSERT_TRUE(p->Save(path).ok());

  // A fresh instance over an empty store: everything comes from the file.
  TempDir empty_dir;
  auto empty = testing::MakeStore(empty_dir, {}, {});
  std::string err;
  auto q = Load(Config(), empty.get(), &err);
  ASSERT_NE(q, nullptr) << err;
  Status s = q->LoadModel(path);
  ASSERT_TRUE(s.ok()) << s.message();
  const std::vector<std::string> ids = AllItems();
  const std::vector<Event> recent = {MakeEvent("u3", "purchase", "c1", kNowMs - 10)};
  for (const char* who : {"u3", "u45", "nobody"}) {
    auto x = ScoreFor(*p, ids, who, recent);
    auto y = ScoreFor(*q, ids, who, recent);
    ASSERT_TRUE(x.status.ok() && y.status.ok());
    EXPECT_EQ(x.scores, y.scores) << who;
    EXPECT_EQ(x.reasons, y.reasons) << who;
  }

  // Another configuration refuses the file; a failed load keeps the model.
  auto other = Load(GetParam() == "als" ? R"({"algorithm":"als"})" : R"({"ease_lambda":7})",
                    empty.get(), &err);
  ASSERT_NE(other, nullptr) << err;
  s = other->LoadModel(path);
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("retrain"));
  // Truncated and missing files are errors, and q keeps serving.
  {
    std::ifstream in(path, std::ios::binary);
    std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream out(data_dir_.file("cut.model"), std::ios::binary);
    out << data.substr(0, data.size() / 2);
  }
  s = q->LoadModel(data_dir_.file("cut.model"));
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("corrupt cf model file"));
  EXPECT_FALSE(q->LoadModel(data_dir_.file("missing.model")).ok());
  EXPECT_TRUE(ScoreFor(*q, ids, "u3", {}).status.ok());
}

// Diversification's similarity: cosine over customers. In group a every
// item is bought by 18 of 30 customers and every pair by 9: 9 / 18 = 0.5.
TEST_P(CfTest, ItemSimilarityIsCoPurchaseCosine) {
  auto p = Trained();
  ASSERT_NE(p, nullptr);
  ASSERT_TRUE(p->can_similarity());
  const char* ids[] = {"a0", "a1", "a4", "b0", "lonely", "nobody"};
  const size_t n = 6;
  auto sim = [&](LoadedPlugin& q) {
    std::vector<float> s(n * n, -1.0f);
    Status st = q.Similarity(ids, n, s.data());
    EXPECT_TRUE(st.ok()) << st.message();
    return s;
  };
  const std::vector<float> s = sim(*p);
  EXPECT_NEAR(s[0 * n + 1], 0.5f, 1e-6);
  EXPECT_NEAR(s[1 * n + 2], 0.5f, 1e-6);
  EXPECT_EQ(s[0 * n + 1], s[1 * n + 0]);
  EXPECT_EQ(s[0 * n + 3], 0.0f);  // never bought by the same customer
  for (size_t i = 0; i < n; ++i) {
    EXPECT_EQ(s[4 * n + i], 0.0f);  // never bought
    EXPECT_EQ(s[5 * n + i], 0.0f);  // unknown
  }

  // An item asked about twice (two offers promoting it) is alike to itself
  // and has the same similarities as its first occurrence.
  const char* twice[] = {"a0", "a1", "a1"};
  std::vector<float> d(9, -1.0f);
  ASSERT_TRUE(p->Similarity(twice, 3, d.data()).ok());
  EXPECT_EQ(d[1 * 3 + 2], 1.0f);
  EXPECT_NEAR(d[0 * 3 + 2], 0.5f, 1e-6);
  EXPECT_NEAR(d[2 * 3 + 0], 0.5f, 1e-6);

  // The neighbours travel with the model file.
  const std::string path = data_dir_.file("cf.model");
  ASSERT_TRUE(p->Save(path).ok());
  std::string err;
  auto q = Load(Config(), store_.get(), &err);
  ASSERT_NE(q, nullptr) << err;
  ASSERT_TRUE(q->LoadModel(path).ok());
  EXPECT_EQ(sim(*q), s);

  // One neighbour per item (ties to the lowest index): a0 keeps a1, each of
  // a1..a4 keeps a0, so a1 and a4 are no longer related; the pair a0-a4 is
  // found from a4's side.
  auto one = Trained(R"("diversity_neighbours":1)");
  ASSERT_NE(one, nullptr);
  const std::vector<float> t = sim(*one);
  EXPECT_NEAR(t[0 * n + 1], 0.5f, 1e-6);
  EXPECT_NEAR(t[0 * n + 2], 0.5f, 1e-6);
  EXPECT_EQ(t[1 * n + 2], 0.0f);

  // Without neighbours the call fails and says why.
  auto none = Trained(R"("diversity_neighbours":0)");
  ASSERT_NE(none, nullptr);
  std::vector<float> u(n * n);
  Status st = none->Similarity(ids, n, u.data());
  EXPECT_FALSE(st.ok());
  EXPECT_THAT(st.message(), HasSubstr("diversity_neighbours"));
}

TEST_P(CfTest, LoadRejectsForeignAndFutureFiles) {
  auto p = Trained();
  ASSERT_NE(p, nullptr);
  const std::string path = data_dir_.file("cf.model");
  ASSERT_TRUE(p->Save(path).ok());
  std::string data;
  {
    std::ifstream in(path, std::ios::binary);
    data.assign((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
  ASSERT_THAT(data, StartsWith("tailor-cf-model\n"));
  const auto before = ScoreFor(*p, AllItems(), "u3", {});

  // Another file type.
  testing::WriteFile(data_dir_.file("foreign.model"), "tailor-popularity-model\nversion 1\n");
  Status s = p->LoadModel(data_dir_.file("foreign.model"));
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("not a cf model file"));

  // A newer format version: the u32 right after the magic line.
  std::string future = data;
  const uint32_t v9 = 9;
  std::memcpy(future.data() + 16, &v9, sizeof v9);
  testing::WriteFile(data_dir_.file("future.model"), future);
  s = p->LoadModel(data_dir_.file("future.model"));
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("format version 9 is not supported"));

  // A flipped end marker and trailing bytes are caught too.
  std::string tail = data + "x";
  testing::WriteFile(data_dir_.file("tail.model"), tail);
  s = p->LoadModel(data_dir_.file("tail.model"));
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("trailing bytes"));

  // None of it disturbed the served model.
  const auto after = ScoreFor(*p, AllItems(), "u3", {});
  EXPECT_EQ(before.scores, after.scores);
}

TEST_P(CfTest, ReloadSwapsTheModelWhileScoring) {
  auto p = Trained();
  ASSERT_NE(p, nullptr);
  const std::string path = data_dir_.file("cf.model");
  ASSERT_TRUE(p->Save(path).ok());
  const auto expect = ScoreFor(*p, AllItems(), "u3", {});
  ASSERT_TRUE(expect.status.ok());
  // Score on four threads while the model is reloaded over and over; every
  // answer is the old or the (identical) new model's, never a torn one.
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      while (!stop.load()) {
        auto r = ScoreFor(*p, AllItems(), "u3", {});
        if (!r.status.ok() || r.scores != expect.scores) ++bad;
      }
    });
  }
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(p->LoadModel(path).ok());
  stop = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(bad.load(), 0);
}

INSTANTIATE_TEST_SUITE_P(Algorithms, CfTest, ::testing::Values("ease", "als"),
                         [](const auto& info) { return info.param; });

// EASE keeps the max_items items with the most customers; "auto" switches
// to ALS when the catalog is larger than that.
TEST(CfCapTest, EaseCapsItemsAndAutoSwitchesToAls) {
  TempDir store_dir, data_dir;
  auto store = testing::MakeStore(store_dir, Catalog(), World());
  ASSERT_NE(store, nullptr);
  auto load = [&](const std::string& config) {
    return testing::LoadTrainedBuiltin("cf", config, store.get(), data_dir.path());
  };
  auto algorithm_of = [&](LoadedPlugin& p) {
    const std::string path = data_dir.file("m.model");
    EXPECT_TRUE(p.Save(path).ok());
    std::ifstream in(path, std::ios::binary);
    std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    uint32_t algo = 0;
    std::memcpy(&algo, data.data() + 20, sizeof algo);  // after magic and version
    return algo;
  };
  // Group a has 30 customers, b and c 20 each: a cap of 5 keeps group a only.
  auto capped = load(R"({"algorithm":"ease","max_items":5,"ease_lambda":5})");
  ASSERT_NE(capped, nullptr);
  EXPECT_EQ(algorithm_of(*capped), 1u);
  auto r = ScoreFor(*capped, {"a3", "b3"}, "new", {MakeEvent("new", "purchase", "a0", kNowMs - 1)});
  ASSERT_TRUE(r.status.ok());
  EXPECT_GT(r.scores[0], 0.0f);
  EXPECT_EQ(r.scores[1], TAILOR_SCORE_ABSTAIN);  // outside the cap: unknown to the model

  auto automatic = load(R"({"max_items":5,"als_factors":4})");
  ASSERT_NE(automatic, nullptr);
  EXPECT_EQ(algorithm_of(*automatic), 2u);
  r = ScoreFor(*automatic, {"a3", "b3"}, "new", {MakeEvent("new", "purchase", "b0", kNowMs - 1)});
  ASSERT_TRUE(r.status.ok());
  EXPECT_GT(r.scores[1], r.scores[0]);  // ALS covers every item

  auto small = load(R"({"ease_lambda":5})");
  ASSERT_NE(small, nullptr);
  EXPECT_EQ(algorithm_of(*small), 1u);  // 15 items: EASE
}

// The next-basket model is directed: s1 always follows s0 in a later basket,
// while t0 and t1 are always bought in one basket. EASE alone sees both pairs
// alike; with the next-basket model, s0 predicts s1 more than t0 predicts t1,
// and more than s1 predicts s0.
TEST(CfNextBasketTest, LearnsWhatFollowsInLaterBaskets) {
  std::vector<Item> catalog;
  for (const char* id : {"s0", "s1", "t0", "t1"}) catalog.push_back(MakeItem(id, "cat_s"));
  std::vector<Event> ev;
  auto buy = [&](const std::string& who, const std::string& item, int64_t ts) {
    ev.push_back(MakeEvent(who, "purchase", item, ts));
  };
  for (int k = 0; k < 30; ++k) {
    const std::string s = "s" + std::to_string(k), t = "t" + std::to_string(k);
    buy(s, "s0", kNowMs - 20 * kDayMs);
    buy(s, "s1", kNowMs - 10 * kDayMs);
    buy(t, "t0", kNowMs - 15 * kDayMs);
    buy(t, "t1", kNowMs - 15 * kDayMs);
  }
  for (int k = 0; k < 10; ++k) {  // single items, so that s0 has s1 still to come
    const std::string id = std::to_string(k);
    buy("x" + id, "s0", kNowMs - 5 * kDayMs);
    buy("y" + id, "s1", kNowMs - 5 * kDayMs);
    buy("z" + id, "t0", kNowMs - 5 * kDayMs);
    buy("w" + id, "t1", kNowMs - 5 * kDayMs);
  }
  TempDir store_dir, data_dir;
  auto store = testing::MakeStore(store_dir, catalog, ev);
  ASSERT_NE(store, nullptr);
  // No decay anywhere, so that EASE sees the two pairs exactly alike.
  auto config = [](const std::string& extra) {
    return R"({"algorithm":"ease","ease_lambda":5,"trend_weight":0,"pop_beta":0,)"
           R"("half_life_days":0,"history_half_life_days":0,)" +
           extra + "}";
  };
  auto load = [&](const std::string& extra, std::string* err) {
    return testing::LoadBuiltin("cf", config(extra), store.get(), data_dir.path(), err);
  };
  auto trained = [&](const std::string& extra) {
    return testing::LoadTrainedBuiltin("cf", config(extra), store.get(), data_dir.path());
  };
  // Score of `target` for a new customer who bought `had`.
  auto score = [](LoadedPlugin& p, const char* had, const char* target) {
    auto r = ScoreFor(p, {target}, "new", {MakeEvent("new", "purchase", had, kNowMs - 1)});
    EXPECT_TRUE(r.status.ok()) << r.status.message();
    return r.scores[0];
  };
  auto off = trained(R"("next_basket_weight":0)");
  auto on = trained(R"("next_basket_weight":1,"next_basket_lambda":1)");
  ASSERT_TRUE(off && on);
  EXPECT_GT(score(*off, "s0", "s1"), 0.0f);
  EXPECT_FLOAT_EQ(score(*off, "s0", "s1"), score(*off, "t0", "t1"));
  EXPECT_FLOAT_EQ(score(*off, "s0", "s1"), score(*off, "s1", "s0"));
  EXPECT_GT(score(*on, "s0", "s1"), score(*on, "t0", "t1") + 0.05f);
  EXPECT_GT(score(*on, "s0", "s1"), score(*on, "s1", "s0") + 0.05f);

  // The keys are part of the model: a file trained with another weight is refused.
  const std::string path = data_dir.file("nb.model");
  ASSERT_TRUE(on->Save(path).ok());
  Status s = off->LoadModel(path);
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("retrain"));
  // Bad values are reported by key.
  std::string err;
  EXPECT_EQ(load(R"("next_basket_weight":-1)", &err), nullptr);
  EXPECT_THAT(err, HasSubstr("next_basket_weight: expected a number in [0"));
  EXPECT_EQ(load(R"("next_basket_lambda":0)", &err), nullptr);
  EXPECT_THAT(err, HasSubstr("next_basket_lambda: expected a number"));
}

TEST(CfConfigTest, BadConfigNamesEveryProblem) {
  PluginSpec spec;
  spec.name = "cf";
  spec.path = testing::BuiltinPluginPath("cf");
  spec.config_json = R"({"algorithm":"svd","ease_lamda":3,"weights":{"purchase":-1}})";
  TempDir dir;
  std::string err;
  auto p = LoadedPlugin::Load(spec, nullptr, dir.path(), &err);
  EXPECT_EQ(p, nullptr);
  EXPECT_THAT(err, HasSubstr("algorithm: expected \"auto\", \"ease\" or \"als\""));
  EXPECT_THAT(err, HasSubstr("unknown key 'ease_lamda'"));
  EXPECT_THAT(err, HasSubstr("weights.purchase"));
}

}  // namespace
}  // namespace tailor
