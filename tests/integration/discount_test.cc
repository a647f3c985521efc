// Dynamic discounts through a real tailord (issue 14.5): a placement with
// `pricing: on` returns each priced offer's discount within its range in the
// reply and in why.discount, the discount is stored with the impression, and
// conversions at one level move later choices towards it.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>

#include "store/store.h"
#include "support/tailord.h"
#include "support/temp_dir.h"
#include "support/world.h"

namespace tailor::testing {
namespace {

using nlohmann::json;

class Discount : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = dir_.file("tailor.db");
    MakeSmallWorld(store_);
    config_ = dir_.file("tailor.yaml");
    WriteFile(dir_.file("offers.yaml"),
              "offers:\n"
              "  - id: o_deal\n"
              "    promotes: {category: audio}\n"
              "    value: 100\n"
              "    price: 100\n"
              "    cost: 20\n"
              "    placements: [deals, plain, shadowed]\n"
              "    discount: {min: 0.1, max: 0.3, step: 0.1}\n");
    WriteFile(config_, std::string("plugins:\n") + ShippedPluginYaml("popularity") +
                           "placements:\n"
                           "  deals: {kind: offers, pricing: on}\n"
                           "  plain: {kind: offers}\n"
                           "  shadowed: {kind: offers, pricing: on, mode: shadow}\n"
                           "pricing:\n"
                           "  min_margin: 0.1\n"
                           "  protected: [age_band, gender]\n"
                           "  max_disparity: 1.25\n"
                           "  group_by: gender\n"
                           "offers: offers.yaml\n");
  }
  json Decide(Client& c, const std::string& customer, const std::string& placement = "deals") {
    json r = c.Call({{"v", 1},
                     {"type", "decide"},
                     {"id", "r"},
                     {"customer", customer},
                     {"channel", "web"},
                     {"placement", placement},
                     {"limit", 1}});
    EXPECT_FALSE(r.contains("error")) << r.dump();
    EXPECT_EQ(r["offers"].size(), 1u) << r.dump();
    return r;
  }
  void Send(Client& c, json e) {
    e["v"] = 1;
    e["type"] = "event";
    e["id"] = "e";
    json ack = c.Call(e);
    ASSERT_EQ(ack.value("ok", false), true) << ack.dump();
  }

  // The store tailord wrote, read after it stopped.
  std::unique_ptr<Store> OpenStore() { return ReadStore(store_); }

  TempDir dir_;
  std::string store_, config_;
};

TEST_F(Discount, ReplyWhyAndImpressionCarryTheChosenDiscount) {
  std::map<std::string, double> chosen;  // decision -> discount
  {
    Tailord d({config_, store_, {}});
    ASSERT_TRUE(d.running()) << d.Log();
    Client c(d.requests());
    for (int i = 1; i <= 5; ++i) {
      json r = Decide(c, "c" + std::to_string(i));
      const json& o = r["offers"][0];
      ASSERT_TRUE(o.contains("discount")) << o.dump();
      const double disc = o["discount"];
      EXPECT_TRUE(disc == 0.1 || disc == 0.2 || disc == 0.3) << disc;
      const json& why = o["why"]["discount"];
      EXPECT_EQ(why["level"], o["discount"]) << why.dump();
      EXPECT_EQ(why["alternatives"].size(), 3u) << why.dump();
      EXPECT_TRUE(why.contains("expected_margin")) << why.dump();
      EXPECT_TRUE(why.contains("guardrail")) << why.dump();
      chosen[r["decision"]] = disc;
    }
    // The same offer on a placement without pricing: no discount.
    json plain = Decide(c, "c1", "plain");
    EXPECT_FALSE(plain["offers"][0].contains("discount")) << plain.dump();
    // The pricer's state in stats: five choices, the disparity window by gender.
    json stats = c.Call({{"v", 1}, {"type", "stats"}, {"id", "s"}});
    const json& pricing = stats["stats"]["pricing"];
    EXPECT_EQ(pricing["choices"], 5) << stats.dump();
    EXPECT_TRUE(pricing.contains("disparity_ratio")) << pricing.dump();
    EXPECT_TRUE(pricing.contains("shrunk")) << pricing.dump();
    EXPECT_EQ(d.Terminate(), 0) << d.Log();
  }
  auto store = OpenStore();
  ASSERT_TRUE(store);
  size_t seen = 0;
  store->ForEachImpression(0, [&](const Impression& m) {
    auto it = chosen.find(m.decision_id);
    if (it != chosen.end()) {
      ++seen;
      EXPECT_DOUBLE_EQ(m.discount, it->second) << m.decision_id;
    }
    return true;
  });
  EXPECT_EQ(seen, chosen.size());
}

TEST_F(Discount, AShadowDecisionIsNotPriced) {
  std::string decision;
  {
    Tailord d({config_, store_, {}});
    ASSERT_TRUE(d.running()) << d.Log();
    Client c(d.requests());
    // The application serves its own choice at its own price: no discount in
    // the reply and none stored with the served impression.
    json r = c.Call({{"v", 1},
                     {"type", "decide"},
                     {"id", "r"},
                     {"customer", "c1"},
                     {"channel", "web"},
                     {"placement", "shadowed"},
                     {"limit", 1},
                     {"shadow", {{"offers", {"o_deal"}}}}});
    ASSERT_FALSE(r.contains("error")) << r.dump();
    ASSERT_EQ(r["offers"].size(), 1u) << r.dump();
    EXPECT_EQ(r["offers"][0]["offer"], "o_deal");
    EXPECT_FALSE(r["offers"][0].contains("discount")) << r.dump();
    decision = r["decision"];
    json stats = c.Call({{"v", 1}, {"type", "stats"}, {"id", "s"}});
    EXPECT_EQ(stats["stats"]["counters"].value("pricing.priced", 0), 0) << stats.dump();
    EXPECT_EQ(d.Terminate(), 0) << d.Log();
  }
  auto store = OpenStore();
  ASSERT_TRUE(store);
  size_t seen = 0;
  store->ForEachImpression(0, [&](const Impression& m) {
    if (m.decision_id == decision) {
      ++seen;
      EXPECT_EQ(m.discount, 0) << m.offer_id;
    }
    return true;
  });
  EXPECT_EQ(seen, 1u);
}

TEST_F(Discount, ConversionsAtALevelShiftLaterChoices) {
  Tailord d({config_, store_, {}});
  ASSERT_TRUE(d.running()) << d.Log();
  Client c(d.requests());
  // Customers 1..19 (20 refused personalisation). Only the middle level
  // ever converts: the bandit should learn to choose it, though 0.1 keeps
  // more margin per conversion.
  auto share_at_top = [&](int decisions, bool convert) {
    int top = 0;
    for (int i = 0; i < decisions; ++i) {
      const std::string customer = "c" + std::to_string(1 + i % 19);
      json r = Decide(c, customer);
      const double disc = r["offers"][0].value("discount", -1.0);
      if (disc == 0.2) {
        ++top;
        if (convert) {
          Send(c, {{"customer", customer},
                   {"event", "convert"},
                   {"offer", "o_deal"},
                   {"decision", r["decision"]},
                   {"value", 70}});
        }
      }
    }
    return static_cast<double>(top) / decisions;
  };
  const double before = share_at_top(30, false);  // nothing converts yet
  share_at_top(60, true);
  const double after = share_at_top(60, false);
  EXPECT_GT(after, 0.8) << "before " << before;
  EXPECT_GT(after, before);
  json stats = c.Call({{"v", 1}, {"type", "stats"}, {"id", "s"}});
  EXPECT_GE(stats.dump().find("pricing.priced") != std::string::npos, true) << stats.dump();
}

}  // namespace
}  // namespace tailor::testing
