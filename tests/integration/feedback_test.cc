// The feedback contract through a real tailord (issue 13.1): decide records
// its impressions (on_decide) or waits for the app's (explicit); responses
// join their decision by id, else by the attribution window; explain lists
// the outcomes; the joins survive a restart.
#include <gtest/gtest.h>

#include <string>

#include "support/tailord.h"
#include "support/temp_dir.h"
#include "support/world.h"

namespace tailor::testing {
namespace {

using nlohmann::json;

class Feedback : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = dir_.file("tailor.db");
    MakeSmallWorld(store_);
    config_ = dir_.file("tailor.yaml");
    // No rules: nothing caps or suppresses what this test shows.
    WriteFile(config_, std::string("plugins:\n") + ShippedPluginYaml("popularity") +
                           "placements:\n"
                           "  home: {kind: offers}\n"
                           "  app: {kind: offers, impressions: explicit, attribution_hours: 2}\n"
                           "  checkout: {kind: offers}\n"
                           "  email: {kind: offers}\n"
                           "offers: " +
                           TAILOR_SOURCE_DIR + "/config/offers.yaml\n");
  }
  std::unique_ptr<Tailord> Start() {
    auto d = std::make_unique<Tailord>(Tailord::Options{config_, store_, {}});
    EXPECT_TRUE(d->running()) << d->Log();
    return d;
  }

  json Decide(Client& c, const std::string& customer, const std::string& placement) {
    json r = c.Call({{"v", 1},
                     {"type", "decide"},
                     {"id", "r"},
                     {"customer", customer},
                     {"channel", "web"},
                     {"placement", placement},
                     {"limit", 3}});
    EXPECT_FALSE(r.contains("error")) << r.dump();
    EXPECT_GE(r["offers"].size(), 2u) << r.dump();
    return r;
  }
  // Sends an event on the request socket (acknowledged once durable).
  void Send(Client& c, json e) {
    e["v"] = 1;
    e["type"] = "event";
    e["id"] = "e";
    json ack = c.Call(e);
    ASSERT_EQ(ack.value("ok", false), true) << ack.dump();
  }
  json Outcomes(Client& c, const std::string& decision) {
    json ex = c.Call({{"v", 1}, {"type", "explain"}, {"id", "x"}, {"decision", decision}});
    EXPECT_TRUE(ex.contains("explain")) << ex.dump();
    return ex["explain"].value("outcomes", json());
  }
  int64_t Impressions(Client& c, const std::string& customer) {
    json p = c.Call({{"v", 1}, {"type", "profile.get"}, {"id", "p"}, {"customer", customer}});
    return p["profile"]["counts"].value("impression", int64_t{0});
  }

  TempDir dir_;
  std::string store_, config_;
};

TEST_F(Feedback, ClickByDecisionAndConversionByWindowAreExplained) {
  auto d = Start();
  Client c(d->requests());
  json r = Decide(c, "c3", "home");
  const std::string decision = r["decision"];
  const std::string first = r["offers"][0]["offer"], second = r["offers"][1]["offer"];
  // on_decide: the reply's offers are the customer's impressions already.
  EXPECT_EQ(Impressions(c, "c3"), static_cast<int64_t>(r["offers"].size()));

  Send(c, {{"customer", "c3"}, {"event", "offer_click"}, {"offer", first}, {"decision", decision}});
  Send(c, {{"customer", "c3"}, {"event", "convert"}, {"offer", first}, {"value", 40}});
  Send(c, {{"customer", "c3"}, {"event", "dismiss"}, {"offer", second}, {"decision", decision}});
  // Not responses, or nothing shown: no outcome.
  Send(c, {{"customer", "c3"}, {"event", "view"}, {"item", "i1"}});
  Send(c, {{"customer", "c4"}, {"event", "offer_click"}, {"offer", first}});

  json out = Outcomes(c, decision);
  ASSERT_TRUE(out.is_array()) << out.dump();
  ASSERT_EQ(out.size(), 3u) << out.dump();
  EXPECT_EQ(out[0]["event"], "offer_click");
  EXPECT_EQ(out[0]["offer"], first);
  EXPECT_EQ(out[0]["position"], 1);
  EXPECT_EQ(out[0]["joined_by"], "decision");
  EXPECT_EQ(out[1]["event"], "convert");
  EXPECT_EQ(out[1]["kind"], "conversion");
  EXPECT_EQ(out[1]["offer"], first);
  EXPECT_EQ(out[1]["value"], 40.0);
  EXPECT_EQ(out[1]["joined_by"], "window");
  EXPECT_EQ(out[2]["event"], "dismiss");
  EXPECT_EQ(out[2]["offer"], second);
  EXPECT_EQ(out[2]["position"], 2);
  EXPECT_EQ(out[2]["joined_by"], "decision");
  for (const json& o : out) EXPECT_TRUE(o["ts"].is_string()) << o.dump();

  // A later decision showing the same offer takes the next response.
  json r2 = Decide(c, "c3", "home");
  bool shows_first = false;
  for (const json& o : r2["offers"]) shows_first |= o["offer"] == first;
  if (shows_first) {
    Send(c, {{"customer", "c3"}, {"event", "offer_click"}, {"offer", first}});
    EXPECT_EQ(Outcomes(c, r2["decision"]).size(), 1u);
    EXPECT_EQ(Outcomes(c, decision).size(), 3u);
  }
}

TEST_F(Feedback, ExplicitPlacementRecordsImpressionsTheAppReports) {
  auto d = Start();
  Client c(d->requests());
  json r = Decide(c, "c5", "app");
  const std::string decision = r["decision"];
  const std::string first = r["offers"][0]["offer"];
  EXPECT_EQ(Impressions(c, "c5"), 0);
  // Not shown yet: a response without the decision id has nothing to join.
  Send(c, {{"customer", "c5"}, {"event", "offer_click"}, {"offer", first}});
  EXPECT_EQ(Outcomes(c, decision).size(), 0u);

  Send(c, {{"customer", "c5"}, {"event", "impression"}, {"offer", first}, {"decision", decision}});
  EXPECT_EQ(Impressions(c, "c5"), 1);
  Send(c, {{"customer", "c5"}, {"event", "offer_click"}, {"offer", first}});
  json out = Outcomes(c, decision);
  ASSERT_EQ(out.size(), 1u) << out.dump();
  EXPECT_EQ(out[0]["joined_by"], "window");
  EXPECT_EQ(out[0]["position"], 1);
}

TEST_F(Feedback, JoinsSurviveARestart) {
  std::string decision, first, second;
  {
    auto d = Start();
    Client c(d->requests());
    json r = Decide(c, "c6", "home");
    decision = r["decision"];
    first = r["offers"][0]["offer"];
    second = r["offers"][1]["offer"];
    Send(c,
         {{"customer", "c6"}, {"event", "offer_click"}, {"offer", first}, {"decision", decision}});
    EXPECT_EQ(d->Terminate(), 0) << d->Log();
  }
  auto d = Start();
  Client c(d->requests());
  // The window join needs the impressions rebuilt from the store.
  Send(c, {{"customer", "c6"}, {"event", "convert"}, {"offer", first}, {"value", 12.5}});
  Send(c, {{"customer", "c6"}, {"event", "dismiss"}, {"offer", second}, {"decision", decision}});
  json out = Outcomes(c, decision);
  ASSERT_EQ(out.size(), 3u) << out.dump();
  EXPECT_EQ(out[0]["joined_by"], "decision");
  EXPECT_EQ(out[1]["joined_by"], "window");
  EXPECT_EQ(out[1]["value"], 12.5);
  EXPECT_EQ(out[2]["offer"], second);
}

}  // namespace
}  // namespace tailor::testing
