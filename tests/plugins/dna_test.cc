// The dna plugin through the host, on a small planted world: deal seekers
// view and buy cheap items at half price, everyone else buys dear items at
// full price. The model may not read the label's own feature, so it has to
// learn the trait from the rest of the history.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "plugins/direct_plugin.h"
#include "plugins/plugin_test_util.h"

namespace tailor {
namespace {

using ::testing::AllOf;
using ::testing::Contains;
using ::testing::HasSubstr;
using testing::kDayMs;
using testing::kNowMs;
using ::testing::StartsWith;
using testing::TempDir;

const char* kDnaYaml = R"(traits:
  deal_seeker:
    label: {feature: discount_share, at_least: 0.5}
    min_events: 5
    exclude: [mean_discount]
    buckets: {high: 0.6, medium: 0.3}
    favours: {offers: [o_deal]}
    disfavours: {categories: [luxury]}
)";

std::vector<Item> Catalog() {
  std::vector<Item> items;
  for (int i = 0; i < 10; ++i) {
    Item it = testing::MakeItem("i" + std::to_string(i), i < 5 ? "audio" : "luxury");
    it.price = i < 5 ? 20 : 500;
    it.brand = i % 2 ? "acme" : "globex";
    items.push_back(it);
  }
  return items;
}

Event Purchase(const std::string& c, int item, double price, double paid_share, int64_t ts) {
  Event e = testing::MakeEvent(c, "purchase", "i" + std::to_string(item), ts);
  e.quantity = 1;
  e.value = price * paid_share;
  return e;
}

// 40 deal seekers (d*) and 40 full-price buyers (f*), with some variety.
std::vector<Event> World() {
  std::vector<Event> ev;
  for (int c = 0; c < 80; ++c) {
    const bool deal = c < 40;
    const std::string id = (deal ? "d" : "f") + std::to_string(c);
    const int views = 6 + c % 4, buys = 3 + c % 3;
    for (int k = 0; k < views; ++k) {
      const int item = deal ? (c + k) % 5 : 5 + (c + k) % 5;
      ev.push_back(testing::MakeEvent(id, "view", "i" + std::to_string(item),
                                      kNowMs - (30 - k) * kDayMs + c * 60000));
    }
    for (int k = 0; k < buys; ++k) {
      const int item = deal ? k % 5 : 5 + k % 5;
      ev.push_back(Purchase(id, item, deal ? 20 : 500, deal ? 0.5 : 1.0,
                            kNowMs - (20 - k) * kDayMs + c * 60000));
    }
  }
  return ev;
}

class DnaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::WriteFile(dir_.file("dna.yaml"), kDnaYaml);
    store_ = testing::MakeStore(store_dir_, Catalog(), World());
    ASSERT_NE(store_, nullptr);
  }

  std::string Config(const std::string& file) const {
    return R"({"traits": ")" + file + R"(", "min_rows": 20})";
  }

  std::unique_ptr<LoadedPlugin> Load(const std::string& config, std::string* err = nullptr) {
    PluginSpec spec;
    spec.name = "dna";
    spec.path = testing::BuiltinPluginPath("dna");
    spec.config_json = config;
    std::string e;
    auto p = LoadedPlugin::Load(spec, store_.get(), dir_.path(), &e);
    if (err) *err = e;
    return p;
  }

  std::unique_ptr<LoadedPlugin> LoadTrained() {
    std::string err;
    auto p = Load(Config(dir_.file("dna.yaml")), &err);
    EXPECT_NE(p, nullptr) << err;
    if (p) {
      Status s = p->Train();
      EXPECT_TRUE(s.ok()) << s.message();
    }
    return p;
  }

  // Scores cands_ for customer (may be unknown to the store) with recent events.
  testing::Scored Decide(LoadedPlugin& p, const char* customer,
                         const std::vector<Event>& recent = {}) {
    std::vector<tailor_event_view> views;
    for (const Event& e : recent) views.push_back(testing::ViewOf(e));
    tailor_request_view req = testing::MakeRequest();
    req.customer_id = customer;
    req.known_customer = 1;
    req.recent = views.data();
    req.n_recent = views.size();
    testing::Scored out;
    out.scores.assign(cands_.size(), -1);
    std::vector<char> reasons(cands_.size() * 160, 0);
    out.status = p.Score(req, cands_.data(), cands_.size(), out.scores.data(), reasons.data(), 160);
    for (size_t i = 0; i < cands_.size(); ++i) out.reasons.emplace_back(reasons.data() + i * 160);
    return out;
  }

  TempDir dir_, store_dir_;
  std::unique_ptr<Store> store_;
  const std::vector<tailor_candidate> cands_ = {testing::OfferCandidate("o_deal"),
                                                testing::CategoryCandidate("o_lux", "luxury"),
                                                testing::OfferCandidate("o_plain")};
};

TEST_F(DnaTest, PlantedTraitIsRecoveredWithBucketsAndReasons) {
  auto p = LoadTrained();
  ASSERT_NE(p, nullptr);
  int right = 0;
  for (int c = 0; c < 80; ++c) {
    const std::string id = (c < 40 ? "d" : "f") + std::to_string(c);
    auto r = Decide(*p, id.c_str());
    ASSERT_TRUE(r.status.ok()) << r.status.message();
    right += (c < 40) == (r.scores[0] > 0.5f);
    EXPECT_NEAR(r.scores[0] + r.scores[1], 1.0f, 1e-5) << id;  // favours vs disfavours
    EXPECT_EQ(r.scores[2], TAILOR_SCORE_ABSTAIN) << id;        // no trait speaks of it
    EXPECT_EQ(r.reasons[2], "") << id;
  }
  EXPECT_GE(right, 76);  // 95% of the planted customers on the right side

  auto deal = Decide(*p, "d3");
  EXPECT_GT(deal.scores[0], 0.6f);
  EXPECT_THAT(deal.reasons[0], StartsWith("deal_seeker high ("));
  // The explanation names features the model used, never the label's own.
  EXPECT_THAT(deal.reasons[0], HasSubstr("): "));
  EXPECT_THAT(deal.reasons[0], ::testing::Not(HasSubstr("discount_share")));
  auto full = Decide(*p, "f50");
  EXPECT_LT(full.scores[0], 0.3f);
  EXPECT_THAT(full.reasons[0], StartsWith("deal_seeker low ("));
}

TEST_F(DnaTest, ThinHistoryCustomersStillGetScores) {
  auto p = LoadTrained();
  ASSERT_NE(p, nullptr);
  // Unknown to the store; a view and a full-price purchase each: too little
  // history for the label (min_events 5), enough for the model.
  std::vector<Event> cheap = {testing::MakeEvent("new1", "view", "i1", kNowMs - 3600000),
                              Purchase("new1", 1, 20, 1.0, kNowMs - 1800000)};
  std::vector<Event> dear = {testing::MakeEvent("new2", "view", "i6", kNowMs - 3600000),
                             Purchase("new2", 6, 500, 1.0, kNowMs - 1800000)};
  auto a = Decide(*p, "new1", cheap), b = Decide(*p, "new2", dear);
  ASSERT_TRUE(a.status.ok() && b.status.ok());
  EXPECT_GT(a.scores[0], b.scores[0]);
  EXPECT_THAT(a.reasons[0], StartsWith("deal_seeker "));
  // No history at all: still a finite score from the model, with a reason.
  auto none = Decide(*p, "nobody");
  ASSERT_TRUE(none.status.ok());
  EXPECT_GT(none.scores[0], 0.0f);
  EXPECT_LT(none.scores[0], 1.0f);
  EXPECT_THAT(none.reasons[0], StartsWith("deal_seeker "));
}

TEST_F(DnaTest, SaveLoadRoundTripsAndRefusesAnotherDefinition) {
  auto p = LoadTrained();
  ASSERT_NE(p, nullptr);
  const std::string model = dir_.file("dna.model");
  ASSERT_TRUE(p->Save(model).ok());
  std::string err;
  auto q = Load(Config(dir_.file("dna.yaml")), &err);
  ASSERT_NE(q, nullptr) << err;
  Status s = q->LoadModel(model);
  ASSERT_TRUE(s.ok()) << s.message();
  for (const char* c : {"d1", "f41", "nobody"}) {
    auto a = Decide(*p, c), b = Decide(*q, c);
    EXPECT_EQ(a.scores, b.scores) << c;
    EXPECT_EQ(a.reasons, b.reasons) << c;
  }
  // A model trained with another trait definition is refused.
  std::string other(kDnaYaml);
  other.replace(other.find("0.5}"), 4, "0.7}");
  testing::WriteFile(dir_.file("other.yaml"), other);
  auto r = Load(Config(dir_.file("other.yaml")), &err);
  ASSERT_NE(r, nullptr) << err;
  s = r->LoadModel(model);
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("retrain"));
}

TEST_F(DnaTest, ConfigErrorsNameFileLineAndKey) {
  const std::string bad = dir_.file("bad.yaml");
  testing::WriteFile(bad,
                     "traits:\n"
                     "  deal_seeker:\n"
                     "    label: {feature: discount_shar, at_least: 0.5}\n"
                     "    bukets: {high: 0.6}\n"
                     "  night_owl:\n"
                     "    label: {feature: night_share, at_least: 0.4, at_most: 0.9}\n"
                     "    buckets: {high: 0.2, medium: 0.5}\n");
  std::string err;
  EXPECT_EQ(Load(Config(bad), &err), nullptr);
  EXPECT_THAT(err, HasSubstr(bad + ":3:22: traits.deal_seeker.label.feature: unknown feature "
                                   "'discount_shar' (did you mean discount_share?"));
  EXPECT_THAT(err, HasSubstr(bad + ":4:5: traits.deal_seeker.bukets: unknown key (valid: "));
  EXPECT_THAT(err, HasSubstr(bad + ":6:12: traits.night_owl.label: set one of at_least, at_most"));
  EXPECT_THAT(err, HasSubstr(bad + ":7:14: traits.night_owl.buckets: medium"));
  EXPECT_EQ(Load(R"({"trait": "x"})", &err), nullptr);
  EXPECT_THAT(err, HasSubstr("bad key 'trait'"));
}

TEST_F(DnaTest, AnnotateGivesTraitsOfTheRequestCustomerThroughTheAbi) {
  std::string err;
  auto p =
      testing::DirectPlugin::Open(testing::BuiltinPluginPath("dna"), Config(dir_.file("dna.yaml")),
                                  store_.get(), dir_.path(), &err);
  ASSERT_NE(p, nullptr) << err;
  EXPECT_GE(p->api().abi_minor, 1u);
  ASSERT_NE(p->api().annotate, nullptr);
  tailor_request_view req = testing::MakeRequest();
  req.customer_id = "d3";
  req.known_customer = 1;
  std::string out;
  ASSERT_EQ(p->Annotate(req, &out, &err), TAILOR_OK) << err;
  EXPECT_EQ(out, "");  // not trained yet: nothing to say

  ASSERT_EQ(p->Train(&err), TAILOR_OK) << err;
  // Progress and a per-trait report (held-out AUC, calibration, buckets).
  EXPECT_THAT(p->log(), Contains(HasSubstr("[1/1] training deal_seeker")));
  EXPECT_THAT(p->log(), Contains(AllOf(HasSubstr("report deal_seeker: "), HasSubstr("gbdt AUC"),
                                       HasSubstr("ECE"), HasSubstr("buckets high "))));

  ASSERT_EQ(p->Annotate(req, &out, &err), TAILOR_OK) << err;
  const auto deal = nlohmann::json::parse(out);
  ASSERT_TRUE(deal.contains("customer")) << out;
  EXPECT_FALSE(deal.contains("context"));
  const auto& c = deal["customer"];
  EXPECT_EQ(c["dna"]["deal_seeker"], "high") << out;
  EXPECT_GT(c["dna_p"]["deal_seeker"].get<double>(), 0.6) << out;
  ASSERT_TRUE(c["dna_top"]["deal_seeker"].is_array()) << out;
  EXPECT_FALSE(c["dna_top"]["deal_seeker"].empty()) << out;
  for (const auto& f : c["dna_top"]["deal_seeker"]) {
    EXPECT_NE(f, "discount_share");  // never the label's own feature
    EXPECT_NE(f, "mean_discount");   // nor an excluded one
  }

  req.customer_id = "f50";
  ASSERT_EQ(p->Annotate(req, &out, &err), TAILOR_OK) << err;
  const auto full = nlohmann::json::parse(out);
  EXPECT_EQ(full["customer"]["dna"]["deal_seeker"], "low") << out;
  EXPECT_LT(full["customer"]["dna_p"]["deal_seeker"].get<double>(), 0.3) << out;

  // Unknown and anonymous customers: nothing (the score path still
  // generalises from recent events; annotate only states what training saw).
  req.customer_id = "nobody";
  ASSERT_EQ(p->Annotate(req, &out, &err), TAILOR_OK) << err;
  EXPECT_EQ(out, "");
  req.customer_id = nullptr;
  req.known_customer = 0;
  ASSERT_EQ(p->Annotate(req, &out, &err), TAILOR_OK) << err;
  EXPECT_EQ(out, "");

  // Facts that do not fit the host's buffer are refused, never truncated.
  req.customer_id = "d3";
  EXPECT_NE(p->Annotate(req, &out, &err, 16), TAILOR_OK);
  EXPECT_EQ(out, "");
  EXPECT_THAT(err, HasSubstr("exceed"));
}

TEST_F(DnaTest, AnnotateAfterLoadMatchesTheTrainedInstance) {
  auto trained = LoadTrained();
  ASSERT_NE(trained, nullptr);
  const std::string model = dir_.file("dna.model");
  ASSERT_TRUE(trained->Save(model).ok());
  std::string err;
  auto a =
      testing::DirectPlugin::Open(testing::BuiltinPluginPath("dna"), Config(dir_.file("dna.yaml")),
                                  store_.get(), dir_.path(), &err);
  ASSERT_NE(a, nullptr) << err;
  ASSERT_EQ(a->LoadModel(model, &err), TAILOR_OK) << err;
  EXPECT_THAT(a->log(), Contains(HasSubstr("report deal_seeker: buckets high ")));
  tailor_request_view req = testing::MakeRequest();
  req.customer_id = "d7";
  req.known_customer = 1;
  std::string out;
  ASSERT_EQ(a->Annotate(req, &out, &err), TAILOR_OK) << err;
  const auto j = nlohmann::json::parse(out);
  // The same bucket the score reason of the trained instance names.
  auto r = Decide(*trained, "d7");
  EXPECT_THAT(r.reasons[0],
              StartsWith("deal_seeker " + j["customer"]["dna"]["deal_seeker"].get<std::string>()));
}

}  // namespace
}  // namespace tailor
