// The content plugin, loaded through the host like the engine loads it,
// trained from a real store with a small described catalog.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>

#include "plugins/plugin_test_util.h"

namespace tailor {
namespace {

using ::testing::HasSubstr;
using testing::ItemCandidate;
using testing::kDayMs;
using testing::kNowMs;
using testing::MakeEvent;
using ::testing::Not;
using ::testing::StartsWith;
using testing::TempDir;

Item Described(const std::string& id, const std::string& title, const std::string& category,
               const std::string& brand, double price, const std::string& attrs = "{}") {
  Item it;
  it.id = id;
  it.title = title;
  it.category = category;
  it.brand = brand;
  it.price = price;
  it.attributes_json = attrs;
  return it;
}

// Global price bands (no category has 20 priced items), edges 5, 120, 450,
// 900: band 5 holds iphone and macbook, band 4 iphone_se and galaxy.
const std::vector<Item> kCatalog = {
    Described("iphone", "iPhone 15 smartphone", "phones", "Apple", 900, R"({"color":"black"})"),
    Described("iphone_se", "iPhone SE smartphone", "phones", "Apple", 450, R"({"color":"red"})"),
    Described("galaxy", "Galaxy S24 smartphone", "phones", "Samsung", 800),
    Described("macbook", "MacBook Air laptop", "laptops", "Apple", 1200),
    Described("runner", "Air running shoes", "shoes", "Nike", 120, R"({"color":"red"})"),
    Described("trail", "Trail running shoe", "shoes", "Salomon", 140),
    Described("mug_heart", "White hanging heart mug", "kitchen", "Acme", 5),
    Described("mug_plain", "Plain mugs", "kitchen", "Acme", 4),
    Described("heart_lamp", "Hearts lamp", "lighting", "Lumo", 30),
    Described("blank", "", "", "", 0),  // nothing to describe it by
};

std::vector<std::string> Ids() {
  std::vector<std::string> ids;
  for (const Item& it : kCatalog) ids.push_back(it.id);
  return ids;
}

size_t IndexOf(const std::string& id) {
  const auto ids = Ids();
  return static_cast<size_t>(std::find(ids.begin(), ids.end(), id) - ids.begin());
}

// Scores every catalog item (plus the given extra candidates, appended) for
// a customer with these recent events.
testing::Scored ScoreFor(LoadedPlugin& p, const char* customer, const std::vector<Event>& recent,
                         const char* context = "{}",
                         const std::vector<tailor_candidate>& extra = {}) {
  std::vector<tailor_event_view> views;
  for (const Event& e : recent) views.push_back(testing::ViewOf(e));
  tailor_request_view req = testing::MakeRequest();
  req.customer_id = customer;
  req.known_customer = customer != nullptr;
  req.context_json = context;
  req.recent = views.data();
  req.n_recent = views.size();
  const auto ids = Ids();
  std::vector<tailor_candidate> cands;
  for (const auto& id : ids) cands.push_back(ItemCandidate(id.c_str()));
  cands.insert(cands.end(), extra.begin(), extra.end());
  constexpr size_t kCap = 128;
  testing::Scored out;
  out.scores.assign(cands.size(), -1.0f);
  std::vector<char> reasons(cands.size() * kCap, 0);
  out.status = p.Score(req, cands.data(), cands.size(), out.scores.data(), reasons.data(), kCap);
  for (size_t i = 0; i < cands.size(); ++i)
    out.reasons.emplace_back(reasons.data() + i * kCap, strnlen(reasons.data() + i * kCap, kCap));
  for (float s : out.scores)
    EXPECT_TRUE(s == TAILOR_SCORE_ABSTAIN || (std::isfinite(s) && s >= 0 && s <= 1)) << s;
  return out;
}

// Catalog ids by descending score, leaving out skip.
std::vector<std::string> Ranking(const testing::Scored& r, const std::string& skip = "") {
  std::vector<std::string> ids = Ids();
  std::stable_sort(ids.begin(), ids.end(), [&](const std::string& a, const std::string& b) {
    return r.scores[IndexOf(a)] > r.scores[IndexOf(b)];
  });
  ids.erase(std::remove(ids.begin(), ids.end(), skip), ids.end());
  return ids;
}

// min_df 1: the catalog is tiny, every word counts.
constexpr const char* kSmall = R"({"min_df":1,"max_df":0.5})";

class ContentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // "fan" bought the iPhone 30 days ago: one event. Nobody touched the rest.
    store_ = testing::MakeStore(dir_, kCatalog,
                                {MakeEvent("fan", "purchase", "iphone", kNowMs - 30 * kDayMs)});
    ASSERT_NE(store_, nullptr);
  }
  std::unique_ptr<LoadedPlugin> Load(const std::string& config, Store* store, std::string* err) {
    return testing::LoadBuiltin("content", config, store, data_dir_.path(), err);
  }
  std::unique_ptr<LoadedPlugin> Trained(const std::string& config = kSmall,
                                        Store* store = nullptr) {
    return testing::LoadTrainedBuiltin("content", config, store != nullptr ? store : store_.get(),
                                       data_dir_.path());
  }
  TempDir dir_, data_dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(ContentTest, OneEventCustomerGetsCategoryAndBrandMatchesFirst) {
  auto p = Trained();
  ASSERT_NE(p, nullptr);
  auto r = ScoreFor(*p, "fan", {});  // from the trained taste alone
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  // Same category, brand and words; then same category and a word; then
  // the brand and the price band; nothing in common scores 0.
  const auto rank = Ranking(r, "iphone");
  ASSERT_GE(rank.size(), 3u);
  EXPECT_EQ(rank[0], "iphone_se");
  EXPECT_EQ(rank[1], "galaxy");
  EXPECT_EQ(rank[2], "macbook");
  EXPECT_GT(r.scores[IndexOf("macbook")], 0.0f);
  EXPECT_EQ(r.scores[IndexOf("trail")], 0.0f);
  EXPECT_EQ(r.scores[IndexOf("blank")], 0.0f);
  EXPECT_EQ(r.reasons[IndexOf("trail")], "");
  // Its own item is as similar as it gets.
  EXPECT_NEAR(r.scores[IndexOf("iphone")], 1.0f, 1e-5);
}

TEST_F(ContentTest, ReasonsNameTheMatchedFeatures) {
  auto p = Trained();
  ASSERT_NE(p, nullptr);
  auto r = ScoreFor(*p, "fan", {});
  ASSERT_TRUE(r.status.ok());
  const std::string& se = r.reasons[IndexOf("iphone_se")];
  EXPECT_THAT(se, StartsWith("matches: "));
  EXPECT_THAT(se, HasSubstr("category=phones"));
  EXPECT_THAT(se, HasSubstr("brand=Apple"));
  EXPECT_THAT(se, HasSubstr("words: iphone"));
  const std::string& mac = r.reasons[IndexOf("macbook")];
  EXPECT_THAT(mac, HasSubstr("brand=Apple"));
  EXPECT_THAT(mac, HasSubstr("price band 5 of 5"));
  EXPECT_THAT(mac, Not(HasSubstr("category=phones")));
  EXPECT_EQ(r.reasons[IndexOf("galaxy")], "matches: category=phones, words: smartphone");

  // Words fold plurals (hearts, mugs) and attributes match as key=value.
  auto mug = ScoreFor(*p, "new", {MakeEvent("new", "view", "mug_heart", kNowMs - 1)});
  ASSERT_TRUE(mug.status.ok());
  EXPECT_THAT(mug.reasons[IndexOf("heart_lamp")], HasSubstr("words: heart"));
  EXPECT_THAT(mug.reasons[IndexOf("mug_plain")], HasSubstr("category=kitchen"));
  EXPECT_THAT(mug.reasons[IndexOf("mug_plain")], HasSubstr("mug"));
  auto red = ScoreFor(*p, "new2", {MakeEvent("new2", "purchase", "runner", kNowMs - 1)});
  ASSERT_TRUE(red.status.ok());
  EXPECT_THAT(red.reasons[IndexOf("iphone_se")], HasSubstr("color=red"));
  EXPECT_THAT(red.reasons[IndexOf("trail")], HasSubstr("category=shoes"));
}

TEST_F(ContentTest, OneRecentEventIsEnoughForANewCustomer) {
  auto p = Trained();
  ASSERT_NE(p, nullptr);
  // The model never saw "new"; the request's one recent event is the taste.
  auto r = ScoreFor(*p, "new", {MakeEvent("new", "view", "mug_heart", kNowMs - 1)});
  ASSERT_TRUE(r.status.ok());
  const auto rank = Ranking(r, "mug_heart");
  EXPECT_EQ(rank[0], "mug_plain");   // category, brand, word
  EXPECT_EQ(rank[1], "heart_lamp");  // word
  EXPECT_GT(r.scores[IndexOf("heart_lamp")], 0.0f);
  EXPECT_EQ(r.scores[IndexOf("iphone")], 0.0f);
  // An event type with no weight (impression) or an unknown item is no taste.
  auto none = ScoreFor(*p, "new",
                       {MakeEvent("new", "impression", "mug_heart", kNowMs - 1),
                        MakeEvent("new", "purchase", "gone", kNowMs - 1)});
  ASSERT_TRUE(none.status.ok());
  for (float s : none.scores) EXPECT_EQ(s, TAILOR_SCORE_ABSTAIN);
}

TEST_F(ContentTest, ObserveUpdatesTheTasteAndRecentIsNotCountedTwice) {
  auto p = Trained();
  ASSERT_NE(p, nullptr);
  auto before = ScoreFor(*p, "fan", {});
  ASSERT_TRUE(before.status.ok());
  EXPECT_EQ(before.scores[IndexOf("trail")], 0.0f);
  const Event runner = MakeEvent("fan", "purchase", "runner", kNowMs - 5);
  ASSERT_TRUE(p->Observe(testing::ViewOf(runner)).ok());
  auto after = ScoreFor(*p, "fan", {});
  ASSERT_TRUE(after.status.ok());
  EXPECT_GT(after.scores[IndexOf("trail")], 0.0f);
  EXPECT_LT(after.scores[IndexOf("iphone_se")], before.scores[IndexOf("iphone_se")]);
  // The same event again in the request's recent list: already folded in.
  auto again = ScoreFor(*p, "fan", {runner});
  EXPECT_EQ(again.scores, after.scores);
  // Observing before any Train is fine (an empty model), and so is an event
  // without an item.
  std::string err;
  auto fresh = Load(kSmall, store_.get(), &err);
  ASSERT_NE(fresh, nullptr) << err;
  EXPECT_TRUE(fresh->Observe(testing::ViewOf(runner)).ok());
  Event chat = MakeEvent("fan", "chat", "", kNowMs);
  chat.text = "hello";
  EXPECT_TRUE(fresh->Observe(testing::ViewOf(chat)).ok());
  EXPECT_TRUE(p->Observe(testing::ViewOf(chat)).ok());
}

TEST_F(ContentTest, RecentEventsMatchTheObservedOnes) {
  // A taste built by Observe equals one built from the request's recent
  // events: the same arithmetic on both paths.
  auto p = Trained();
  ASSERT_NE(p, nullptr);
  const std::vector<Event> evs = {MakeEvent("x", "view", "runner", kNowMs - 3 * kDayMs),
                                  MakeEvent("x", "purchase", "mug_heart", kNowMs - kDayMs)};
  auto via_recent = ScoreFor(*p, "x", evs);
  for (const Event& e : evs) ASSERT_TRUE(p->Observe(testing::ViewOf(e)).ok());
  auto via_observe = ScoreFor(*p, "x", {});
  ASSERT_EQ(via_recent.scores.size(), via_observe.scores.size());
  for (size_t i = 0; i < via_recent.scores.size(); ++i)
    EXPECT_NEAR(via_recent.scores[i], via_observe.scores[i], 1e-5) << Ids()[i];
  EXPECT_EQ(Ranking(via_recent), Ranking(via_observe));
}

TEST_F(ContentTest, AFullTasteKeepsItsStrongestFeatures) {
  // "fan" bought the iPhone (weight 8); a view of the running shoe adds
  // features eight times weaker. A taste of 3 features keeps the phone's.
  const Event runner = MakeEvent("fan", "view", "runner", kNowMs - 5);
  auto wide = Trained(R"({"min_df":1,"max_df":0.5,"half_life_days":0})");
  auto narrow = Trained(R"({"min_df":1,"max_df":0.5,"half_life_days":0,"max_taste_features":3})");
  ASSERT_NE(wide, nullptr);
  ASSERT_NE(narrow, nullptr);
  for (int i = 0; i < 3; ++i) {  // again and again: a full taste stays full
    ASSERT_TRUE(wide->Observe(testing::ViewOf(runner)).ok());
    ASSERT_TRUE(narrow->Observe(testing::ViewOf(runner)).ok());
  }
  auto w = ScoreFor(*wide, "fan", {});
  auto n = ScoreFor(*narrow, "fan", {});
  EXPECT_GT(w.scores[IndexOf("trail")], 0.0f);
  EXPECT_EQ(n.scores[IndexOf("trail")], 0.0f);
  EXPECT_GT(n.scores[IndexOf("iphone_se")], 0.0f);
}

TEST_F(ContentTest, NewerEventsOutweighOlderOnes) {
  // An old purchase of a phone, a fresh view of a running shoe.
  const std::vector<Event> evs = {MakeEvent("x", "purchase", "iphone", kNowMs - 400 * kDayMs),
                                  MakeEvent("x", "view", "runner", kNowMs - kDayMs)};
  auto decayed = Trained(R"({"min_df":1,"max_df":0.5,"half_life_days":30})");
  auto r = ScoreFor(*decayed, "x", evs);
  EXPECT_GT(r.scores[IndexOf("trail")], r.scores[IndexOf("iphone_se")]);
  // Without decay the purchase (weight 8) beats the view (weight 1).
  auto flat = Trained(R"({"min_df":1,"max_df":0.5,"half_life_days":0})");
  auto q = ScoreFor(*flat, "x", evs);
  EXPECT_LT(q.scores[IndexOf("trail")], q.scores[IndexOf("iphone_se")]);
}

TEST_F(ContentTest, CategoryCandidatesAndUnknownItems) {
  auto p = Trained();
  ASSERT_NE(p, nullptr);
  const std::vector<tailor_candidate> extra = {
      testing::CategoryCandidate("o1", "phones"),
      testing::CategoryCandidate("o2", "garden"),
      {"o3", "not_in_catalog", "phones"},  // falls back to its category
      ItemCandidate("not_in_catalog"),
      testing::OfferCandidate("o4"),
      {nullptr, nullptr, nullptr},
  };
  auto r = ScoreFor(*p, "fan", {}, "{}", extra);
  ASSERT_TRUE(r.status.ok());
  const size_t n = kCatalog.size();
  EXPECT_GT(r.scores[n + 0], 0.0f);
  EXPECT_EQ(r.reasons[n + 0], "matches: category=phones");
  EXPECT_EQ(r.scores[n + 1], 0.0f);
  EXPECT_EQ(r.scores[n + 2], r.scores[n + 0]);
  for (size_t i = n + 3; i < n + extra.size(); ++i) {
    EXPECT_EQ(r.scores[i], 0.0f);
    EXPECT_EQ(r.reasons[i], "");
  }
}

TEST_F(ContentTest, ColdCustomerGetsNoOpinionWithoutError) {
  auto p = Trained();
  ASSERT_NE(p, nullptr);
  for (const char* who : {static_cast<const char*>(nullptr), "stranger"}) {
    auto r = ScoreFor(*p, who, {});
    ASSERT_TRUE(r.status.ok()) << r.status.message();
    for (size_t i = 0; i < r.scores.size(); ++i) {
      EXPECT_EQ(r.scores[i], TAILOR_SCORE_ABSTAIN);
      EXPECT_EQ(r.reasons[i], "");
    }
  }
  auto q = Trained(R"({"min_df":1,"max_df":0.5,"cold_score":0.25})");
  auto r = ScoreFor(*q, "stranger", {});
  for (float s : r.scores) EXPECT_EQ(s, 0.25f);
  // Untrained: the same, not an error.
  std::string err;
  auto u = Load("{}", store_.get(), &err);
  ASSERT_NE(u, nullptr) << err;
  auto ru = ScoreFor(*u, "fan", {MakeEvent("fan", "view", "iphone", kNowMs)});
  ASSERT_TRUE(ru.status.ok()) << ru.status.message();
  for (float s : ru.scores) EXPECT_EQ(s, TAILOR_SCORE_ABSTAIN);
}

TEST_F(ContentTest, SimilarItemsForAnAnchorInTheContext) {
  auto p = Trained();
  ASSERT_NE(p, nullptr);
  auto r = ScoreFor(*p, "fan", {}, R"({"item":"galaxy"})");
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(r.scores[IndexOf("galaxy")], 0.0f);  // not similar to itself
  EXPECT_GT(r.scores[IndexOf("iphone")], r.scores[IndexOf("macbook")]);
  EXPECT_THAT(r.reasons[IndexOf("iphone")], HasSubstr("category=phones"));
}

TEST_F(ContentTest, EmptyCatalogTrainsAndScoresNeutral) {
  TempDir empty_dir;
  auto empty = testing::MakeStore(empty_dir, {}, {MakeEvent("c", "purchase", "x", kNowMs)});
  auto p = Trained("{}", empty.get());
  ASSERT_NE(p, nullptr);
  auto r = ScoreFor(*p, "c", {MakeEvent("c", "view", "iphone", kNowMs)});
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  for (float s : r.scores) EXPECT_EQ(s, TAILOR_SCORE_ABSTAIN);
  EXPECT_TRUE(p->Observe(testing::ViewOf(MakeEvent("c", "view", "iphone", kNowMs))).ok());
  const std::string path = data_dir_.file("empty.model");
  ASSERT_TRUE(p->Save(path).ok());
  ASSERT_TRUE(p->LoadModel(path).ok());
}

TEST_F(ContentTest, ExtremeTimestampsStayFinite) {
  auto p = Trained(R"({"min_df":1,"max_df":0.5,"half_life_days":1})");
  ASSERT_NE(p, nullptr);
  // Far past (underflows), far future (rebases every taste), and back.
  for (int64_t ts : {int64_t{0}, kNowMs + 100000 * kDayMs, kNowMs, int64_t{-kNowMs}}) {
    ASSERT_TRUE(p->Observe(testing::ViewOf(MakeEvent("fan", "view", "runner", ts))).ok());
    ASSERT_TRUE(p->Observe(testing::ViewOf(MakeEvent("z", "click", "mug_heart", ts))).ok());
  }
  auto r = ScoreFor(*p, "fan", {MakeEvent("fan", "view", "trail", kNowMs + 200000 * kDayMs)});
  ASSERT_TRUE(r.status.ok());  // ScoreFor checks every score is finite, in [0, 1]
  EXPECT_GT(r.scores[IndexOf("runner")], 0.0f);
  auto z = ScoreFor(*p, "z", {MakeEvent("z", "view", "trail", INT64_MIN + 1)});
  ASSERT_TRUE(z.status.ok());
}

TEST_F(ContentTest, SaveLoadRoundTripAndBadFiles) {
  auto p = Trained();
  ASSERT_NE(p, nullptr);
  ASSERT_TRUE(p->Observe(testing::ViewOf(MakeEvent("fan", "view", "heart_lamp", kNowMs - 5))).ok());
  const std::string path = data_dir_.file("content.model");
  ASSERT_TRUE(p->Save(path).ok());
  // Loaded over an empty store: everything comes from the file.
  TempDir empty_dir;
  auto empty = testing::MakeStore(empty_dir, {}, {});
  std::string err;
  auto q = Load(kSmall, empty.get(), &err);
  ASSERT_NE(q, nullptr) << err;
  Status s = q->LoadModel(path);
  ASSERT_TRUE(s.ok()) << s.message();
  const std::vector<tailor_candidate> extra = {testing::CategoryCandidate("o1", "lighting")};
  auto x = ScoreFor(*p, "fan", {}, "{}", extra);
  auto y = ScoreFor(*q, "fan", {}, "{}", extra);
  ASSERT_TRUE(x.status.ok() && y.status.ok());
  EXPECT_GT(y.scores[IndexOf("heart_lamp")], 0.0f);
  EXPECT_EQ(x.scores, y.scores);
  EXPECT_EQ(x.reasons, y.reasons);
  // Saving again writes the same bytes.
  const std::string again = data_dir_.file("again.model");
  ASSERT_TRUE(q->Save(again).ok());
  EXPECT_EQ(testing::ReadFile(again), testing::ReadFile(path));

  // Another configuration: refused, naming the fix.
  auto other = Load(R"({"min_df":1})", empty.get(), &err);
  ASSERT_NE(other, nullptr) << err;
  s = other->LoadModel(path);
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("retrain"));

  // Another format version: refused with both versions.
  std::string bytes = testing::ReadFile(path);
  const size_t at = std::strlen("tailor-content-model\n");
  const uint32_t v2 = 2;
  std::memcpy(bytes.data() + at, &v2, sizeof v2);
  testing::WriteFile(data_dir_.file("v2.model"), bytes);
  s = q->LoadModel(data_dir_.file("v2.model"));
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("format version 2 is not supported"));
  EXPECT_THAT(s.message(), HasSubstr("reads 1"));

  // Truncated anywhere, or junk: refused cleanly.
  const std::string good = testing::ReadFile(path);
  for (size_t cut : {at + 2, good.size() / 3, good.size() / 2, good.size() - 1}) {
    testing::WriteFile(data_dir_.file("cut.model"), good.substr(0, cut));
    s = q->LoadModel(data_dir_.file("cut.model"));
    EXPECT_FALSE(s.ok()) << cut;
    EXPECT_THAT(s.message(), HasSubstr("corrupt content model file")) << cut;
  }
  testing::WriteFile(data_dir_.file("junk.model"), "not a model");
  s = q->LoadModel(data_dir_.file("junk.model"));
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("not a content model file"));
  // The loaded model still serves.
  EXPECT_EQ(ScoreFor(*q, "fan", {}, "{}", extra).scores, y.scores);
}

TEST_F(ContentTest, RetrainPicksUpCatalogChanges) {
  auto p = Trained();
  ASSERT_NE(p, nullptr);
  std::string err;
  auto bulk = store_->BeginBulk(&err);
  ASSERT_NE(bulk, nullptr) << err;
  ASSERT_TRUE(bulk->Item(Described("pixel", "Pixel smartphone", "phones", "Google", 700)).ok());
  ASSERT_TRUE(bulk->Commit().ok());
  tailor_request_view req = testing::MakeRequest();
  req.customer_id = "fan";
  const tailor_candidate c = ItemCandidate("pixel");
  float score = -1;
  ASSERT_TRUE(p->Score(req, &c, 1, &score, nullptr, 0).ok());
  EXPECT_EQ(score, 0.0f);  // not described until the next Train
  ASSERT_TRUE(p->Train().ok());
  ASSERT_TRUE(p->Score(req, &c, 1, &score, nullptr, 0).ok());
  EXPECT_GT(score, 0.0f);
}

TEST(ContentConfigTest, BadConfigNamesEveryProblem) {
  PluginSpec spec;
  spec.name = "content";
  spec.path = testing::BuiltinPluginPath("content");
  spec.config_json =
      R"({"features":{"colour":1},"max_df":3,"price_bands":2.5,"weights":{"view":-1},"bogus":true})";
  TempDir dir;
  std::string err;
  EXPECT_EQ(LoadedPlugin::Load(spec, nullptr, dir.path(), &err), nullptr);
  EXPECT_THAT(err, HasSubstr("features.colour: unknown group"));
  EXPECT_THAT(err, HasSubstr("max_df: expected a number in [1e-06, 1], got 3"));
  EXPECT_THAT(err, HasSubstr("price_bands: expected an integer"));
  EXPECT_THAT(err, HasSubstr("weights.view"));
  EXPECT_THAT(err, HasSubstr("unknown key 'bogus'"));
}

}  // namespace
}  // namespace tailor
