// Suppression policies (tailor.yaml `suppression:`) and a decide request's
// own filters with a real tailord: dismissals take an offer or item away
// for the policy's days (across a restart), `why`/explain name the policy,
// and exclude / include_categories / exclude_categories change the reply in
// an offers and an items placement, each shown in the trace.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <set>

#include "common/time.h"
#include "support/tailord.h"
#include "support/temp_dir.h"
#include "support/world.h"

namespace tailor::testing {
namespace {

using nlohmann::json;

constexpr int64_t kHour = 3'600'000;
constexpr int64_t kDay = 24 * kHour;

class SuppressionService : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = dir_.file("tailor.db");
    MakeSmallWorld(store_);
    config_ = dir_.file("tailor.yaml");
    WriteFile(config_, std::string("plugins:\n") + ShippedPluginYaml("popularity") +
                           "placements:\n"
                           "  home: {kind: offers}\n"
                           "  checkout: {kind: offers}\n"
                           "  email: {kind: offers}\n"
                           "  recs: {kind: items}\n"
                           "offers: " +
                           TAILOR_SOURCE_DIR +
                           "/config/offers.yaml\n"
                           "suppression:\n"
                           "  - name: rejects\n"
                           "    dismissals: 3\n"
                           "    within_days: 7\n"
                           "    suppress_days: 5\n");
    Start();
  }

  void Start() {
    d_ = std::make_unique<Tailord>(Tailord::Options{config_, store_, {}});
    ASSERT_TRUE(d_->running()) << d_->Log();
    c_ = std::make_unique<Client>(d_->requests());
  }

  struct Outcome {
    std::string decision;
    std::vector<std::string> shown;                              // in rank order
    std::map<std::string, std::vector<std::string>> suppressed;  // id -> why.rules
    json request;                                                // as explain stored it
  };
  // Decides (limit 50: everything eligible is shown) and reads the trace back
  // through explain.
  Outcome Decide(const std::string& placement, json extra = json::object(),
                 const std::string& customer = "c1") {
    json req = {{"v", 1},           {"type", "decide"},       {"id", "d"},
                {"channel", "web"}, {"placement", placement}, {"limit", 50}};
    if (!customer.empty()) req["customer"] = customer;
    for (auto it = extra.begin(); it != extra.end(); ++it) req[it.key()] = it.value();
    json r = c_->Call(req);
    Outcome out;
    EXPECT_FALSE(r.contains("error")) << r.dump();
    out.decision = r.value("decision", "");
    for (const json& o : r["offers"]) out.shown.push_back(o.value("offer", o.value("item", "")));
    json ex = c_->Call({{"v", 1}, {"type", "explain"}, {"id", "x"}, {"decision", r["decision"]}});
    EXPECT_TRUE(ex.contains("explain")) << ex.dump();
    out.request = ex["explain"]["request"];
    for (const json& t : ex["explain"]["trace"]["entries"])
      if (t["status"] == "suppressed")
        out.suppressed[t.value("offer", t.value("item", ""))] =
            t["why"].value("rules", std::vector<std::string>{});
    return out;
  }

  void Dismiss(const std::string& key, const std::string& id, int64_t ts) {
    json r = c_->Call({{"v", 1},
                       {"type", "event"},
                       {"id", "e"},
                       {"customer", "c1"},
                       {"event", "dismiss"},
                       {key, id},
                       {"ts", ts}});
    ASSERT_FALSE(r.contains("error")) << r.dump();
  }

  static bool Has(const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
  }

  json Stats() { return c_->Call({{"v", 1}, {"type", "stats"}, {"id", "s"}})["stats"]; }

  TempDir dir_;
  std::string store_, config_;
  std::unique_ptr<Tailord> d_;
  std::unique_ptr<Client> c_;
};

TEST_F(SuppressionService, ThreeDismissalsSuppressAnOfferForFiveDaysAcrossARestart) {
  const int64_t t0 = now_ms();
  const json at_t0 = {{"ts", t0}};
  ASSERT_TRUE(Has(Decide("home", at_t0).shown, "o_audio_week"));

  // Two dismissals: below the threshold, still shown.
  Dismiss("offer", "o_audio_week", t0 - 3 * kHour);
  Dismiss("offer", "o_audio_week", t0 - 2 * kHour);
  ASSERT_TRUE(Has(Decide("home", at_t0).shown, "o_audio_week"));
  const int64_t third = t0 - 1 * kHour;
  Dismiss("offer", "o_audio_week", third);

  const std::string note = "suppressed by policy 'rejects': 3 dismissals within 7 days, until " +
                           format_iso8601_ms(third + 5 * kDay);
  Outcome o = Decide("home", at_t0);
  EXPECT_FALSE(Has(o.shown, "o_audio_week"));
  EXPECT_EQ(o.suppressed["o_audio_week"], std::vector<std::string>{note});
  EXPECT_TRUE(Has(o.shown, "o_headphones_pair"));  // the rest of the catalog is untouched
  EXPECT_FALSE(o.suppressed.count("o_headphones_pair"));
  // Another customer is not suppressed by c1's dismissals.
  EXPECT_TRUE(Has(Decide("home", at_t0, "c2").shown, "o_audio_week"));
  EXPECT_EQ(Stats()["counters"].value("suppression.rejects", 0), 1);

  // The events are the state: a restart still suppresses.
  EXPECT_EQ(d_->Terminate(), 0) << d_->Log();
  Start();
  o = Decide("home", {{"ts", third + 5 * kDay - kHour}});
  EXPECT_FALSE(Has(o.shown, "o_audio_week"));
  EXPECT_EQ(o.suppressed["o_audio_week"], std::vector<std::string>{note});

  // After suppress_days it returns.
  o = Decide("home", {{"ts", third + 5 * kDay + 60'000}});
  EXPECT_TRUE(Has(o.shown, "o_audio_week"));
  EXPECT_FALSE(o.suppressed.count("o_audio_week"));
}

TEST_F(SuppressionService, DismissalsOfAnItemSuppressItInAnItemsPlacement) {
  const int64_t t0 = now_ms();
  ASSERT_TRUE(Has(Decide("recs", {{"ts", t0}}).shown, "i1"));
  for (int k = 3; k >= 1; --k) Dismiss("item", "i1", t0 - k * kHour);
  Outcome o = Decide("recs", {{"ts", t0}});
  EXPECT_FALSE(Has(o.shown, "i1"));
  ASSERT_EQ(o.suppressed["i1"].size(), 1u);
  EXPECT_EQ(o.suppressed["i1"][0].rfind("suppressed by policy 'rejects': 3 dismissals", 0), 0u)
      << o.suppressed["i1"][0];
  EXPECT_TRUE(Has(Decide("recs", {{"ts", t0 + 5 * kDay}}).shown, "i1"));
}

TEST_F(SuppressionService, RequestFiltersInAnOffersPlacement) {
  Outcome all = Decide("home");
  ASSERT_TRUE(Has(all.shown, "o_audio_week"));
  ASSERT_TRUE(Has(all.shown, "o_headphones_pair"));
  ASSERT_TRUE(Has(all.shown, "o_books_club"));

  Outcome ex = Decide("home", {{"exclude", {"o_audio_week"}}});
  EXPECT_FALSE(Has(ex.shown, "o_audio_week"));
  EXPECT_EQ(ex.shown.size(), all.shown.size() - 1);
  EXPECT_EQ(ex.suppressed["o_audio_week"],
            std::vector<std::string>{"excluded by request: exclude names offer 'o_audio_week'"});
  EXPECT_EQ(ex.request["exclude"], json({"o_audio_week"}));

  // Only audio: the two audio offers.
  Outcome inc = Decide("home", {{"include_categories", {"audio"}}});
  EXPECT_EQ(std::set<std::string>(inc.shown.begin(), inc.shown.end()),
            (std::set<std::string>{"o_audio_week", "o_headphones_pair"}));
  EXPECT_EQ(inc.suppressed["o_books_club"],
            std::vector<std::string>{
                "excluded by request: category 'books' is not in include_categories"});

  Outcome exc = Decide("home", {{"exclude_categories", {"audio", "books"}}});
  for (const char* id : {"o_audio_week", "o_headphones_pair", "o_books_club"}) {
    EXPECT_FALSE(Has(exc.shown, id)) << id;
    EXPECT_EQ(exc.suppressed[id].size(), 1u) << id;
  }
  EXPECT_EQ(exc.shown.size(), all.shown.size() - 3);
  // Anonymous requests are filtered too.
  EXPECT_FALSE(Has(Decide("home", {{"exclude", {"o_books_club"}}}, "").shown, "o_books_club"));
}

TEST_F(SuppressionService, RequestFiltersInAnItemsPlacement) {
  Outcome all = Decide("recs");
  ASSERT_TRUE(Has(all.shown, "i1"));  // the best seller, a laptops item

  Outcome ex = Decide("recs", {{"exclude", {"i1", "i4"}}});
  EXPECT_FALSE(Has(ex.shown, "i1"));
  EXPECT_FALSE(Has(ex.shown, "i4"));
  EXPECT_EQ(ex.suppressed["i1"],
            std::vector<std::string>{"excluded by request: exclude names item 'i1'"});

  // Items: i % 3 == 0 phones, 1 laptops, 2 audio.
  Outcome inc = Decide("recs", {{"include_categories", {"phones"}}});
  ASSERT_EQ(inc.shown.size(), 10u);
  for (const std::string& id : inc.shown) EXPECT_EQ(std::stoi(id.substr(1)) % 3, 0) << id;

  Outcome exc = Decide("recs", {{"exclude_categories", {"phones"}}});
  EXPECT_EQ(exc.shown.size(), 20u);
  for (const std::string& id : exc.shown) EXPECT_NE(std::stoi(id.substr(1)) % 3, 0) << id;
  EXPECT_EQ(exc.suppressed.size(), 10u);
}

TEST_F(SuppressionService, FilterErrorsNameTheField) {
  json r = c_->Call({{"v", 1},
                     {"type", "decide"},
                     {"id", "d"},
                     {"channel", "web"},
                     {"placement", "home"},
                     {"exclude", {"o_a", 7}}});
  ASSERT_TRUE(r.contains("error")) << r.dump();
  EXPECT_EQ(r["error"]["field"], "exclude");
  EXPECT_EQ(r["error"]["message"], "exclude[1] must be a string, got a number");
}

}  // namespace
}  // namespace tailor::testing
