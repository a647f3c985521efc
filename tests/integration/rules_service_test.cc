// The marketer surface end to end: golden requests for the shipped rules,
// explain, live reload (message and SIGHUP) with broken files, and reloads
// under concurrent load. Real tailord, real sockets, real files.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "support/tailord.h"
#include "support/temp_dir.h"
#include "support/world.h"

namespace tailor::testing {
namespace {

using nlohmann::json;

json DecideMsg(json body, const std::string& id) {
  body["v"] = 1;
  body["type"] = "decide";
  body["id"] = id;
  return body;
}

std::string Joined(const json& arr) {
  std::string s;
  for (const json& x : arr) s += (x.is_string() ? x.get<std::string>() : x.dump()) + "\n";
  return s;
}

std::string IdOf(const json& o) {
  if (o.contains("offer")) return o["offer"].get<std::string>();
  if (o.contains("item")) return o["item"].get<std::string>();
  ADD_FAILURE() << "neither offer nor item in " << o.dump();
  return "?";
}

class RulesService : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = dir_.file("tailor.db");
    MakeSmallWorld(store_);
  }
  // Writes journeys/<file> beside the config JourneyConfig writes.
  void WriteJourney(const std::string& file, const std::string& yaml) {
    std::filesystem::create_directories(dir_.file("journeys"));
    WriteFile(dir_.file("journeys") + "/" + file, yaml);
  }
  // A tailor.yaml with those plugins, the home/checkout/email offer
  // placements (plus more), the shipped offers, the journeys folder and any
  // extra top-level lines; returns its path.
  std::string JourneyConfig(const std::string& plugins, const std::string& more_placements = "",
                            const std::string& extra = "") {
    const std::string config = dir_.file("tailor.yaml");
    WriteFile(config, "plugins:\n" + plugins +
                          "placements:\n  home: {kind: offers}\n  checkout: {kind: offers}\n"
                          "  email: {kind: offers}\n" +
                          more_placements + extra + "journeys: journeys\noffers: " +
                          TAILOR_SOURCE_DIR + "/config/offers.yaml\n");
    return config;
  }
  TempDir dir_;
  std::string store_;
};

// Each case pins what the engine decides, not what a rule prints: the ranked
// ids (`offers`), the lever product of shown offers (`levers`, `every_lever`),
// and for each suppressed candidate the rule the engine attributes the veto
// to (`vetoed_by`: suppressed in the stored trace, the note prefixed with the
// rule's name by the engine, and that rule's veto counter up in this case).
// `suppressed` matches notes the engine writes itself (sensitive gate,
// journeys), never text a rule prints.
TEST_F(RulesService, GoldenManifest) {
  Tailord d({"", store_, {}});
  ASSERT_TRUE(d.running());
  Client c(d.requests());
  // TAILOR_GOLDEN_MANIFEST: another manifest, e.g. a draft while pinning a new case.
  const char* path = std::getenv("TAILOR_GOLDEN_MANIFEST");
  std::ifstream in(path ? std::string(path)
                        : std::string(TAILOR_SOURCE_DIR) + "/tests/golden/manifest.json");
  json manifest = json::parse(in);
  ASSERT_GE(manifest["cases"].size(), 10u);
  auto rule_stats = [&] {
    return c.Call({{"v", 1}, {"type", "stats"}, {"id", "s"}})["stats"]["rules"];
  };
  int n = 0;
  for (const json& tc : manifest["cases"]) {
    SCOPED_TRACE(tc["name"].get<std::string>());
    EXPECT_TRUE(tc.contains("offers")) << "every golden case pins its ranking";
    const json before = rule_stats();
    json r = c.Call(DecideMsg(tc["request"], "g" + std::to_string(n++)));
    ASSERT_FALSE(r.contains("error")) << r.dump();
    std::vector<std::string> ids;
    std::map<std::string, json> by_id;
    for (const json& o : r["offers"]) {
      ids.push_back(IdOf(o));
      by_id[IdOf(o)] = o;
    }
    if (tc.contains("offers")) {
      EXPECT_EQ(ids, tc["offers"].get<std::vector<std::string>>()) << r.dump();
    }
    for (const json& id : tc.value("include", json::array())) {
      EXPECT_TRUE(by_id.count(id.get<std::string>())) << id << " missing: " << r.dump();
    }
    for (const json& id : tc.value("exclude", json::array())) {
      EXPECT_FALSE(by_id.count(id.get<std::string>())) << id << " shown: " << r.dump();
    }
    const json levers = tc.value("levers", json::object());
    for (const auto& [id, lever] : levers.items()) {
      ASSERT_TRUE(by_id.count(id)) << id << " not shown: " << r.dump();
      EXPECT_NEAR(by_id[id]["why"]["levers"].get<double>(), lever.get<double>(), 1e-9)
          << by_id[id].dump();
    }
    if (tc.contains("every_lever")) {
      ASSERT_FALSE(r["offers"].empty());
      for (const json& o : r["offers"])
        EXPECT_NEAR(o["why"]["levers"].get<double>(), tc["every_lever"].get<double>(), 1e-9)
            << o.dump();
    }
    if (tc.value("distinct_categories", false)) {
      std::set<std::string> cats;
      for (const json& o : r["offers"]) {
        if (o.contains("category")) {
          EXPECT_TRUE(cats.insert(o["category"].get<std::string>()).second) << r.dump();
        }
      }
      EXPECT_GE(r["offers"].size(), 5u);
    }
    if (tc.contains("vetoed_by") || tc.contains("suppressed")) {
      const json after = rule_stats();
      json ex = c.Call({{"v", 1}, {"type", "explain"}, {"id", "x"}, {"decision", r["decision"]}});
      ASSERT_TRUE(ex.contains("explain")) << ex.dump();
      std::map<std::string, json> suppressed;
      for (const json& t : ex["explain"]["trace"]["entries"])
        if (t["status"] == "suppressed")
          suppressed[IdOf(t)] = t["why"].value("rules", json::array());
      // Notes the engine writes itself (the sensitive gate, journeys).
      const json notes = tc.value("suppressed", json::object());
      for (const auto& [id, note] : notes.items()) {
        ASSERT_TRUE(suppressed.count(id)) << id << " not suppressed: " << ex.dump();
        EXPECT_NE(Joined(suppressed[id]).find(note.get<std::string>()), std::string::npos)
            << suppressed[id];
      }
      const json vetoes = tc.value("vetoed_by", json::object());
      for (const auto& [id, rule] : vetoes.items()) {
        const std::string name = rule.get<std::string>();
        ASSERT_TRUE(suppressed.count(id)) << id << " not suppressed: " << ex.dump();
        bool attributed = false;
        for (const json& note : suppressed[id])
          attributed |= note.get<std::string>().rfind(name + ": ", 0) == 0;
        EXPECT_TRUE(attributed) << id << " not vetoed by " << name << ": " << suppressed[id];
        EXPECT_GT(after[name]["vetoes"].get<int>(), before[name]["vetoes"].get<int>()) << name;
      }
    }
  }
  // Every shipped rule was called, and none failed.
  json stats = c.Call({{"v", 1}, {"type", "stats"}, {"id", "s"}});
  for (const auto& [name, counters] : stats["stats"]["rules"].items()) {
    EXPECT_GT(counters["calls"].get<int>(), 0) << name;
    EXPECT_EQ(counters["errors"], 0) << name;
    EXPECT_EQ(counters["timeouts"], 0) << name;
  }
  EXPECT_GT(stats["stats"]["rules"]["sensitive_gate"]["vetoes"].get<int>(), 0);
}

TEST_F(RulesService, ExplainUnknownDecisionIsNotFound) {
  Tailord d({"", store_, {}});
  Client c(d.requests());
  json ex = c.Call({{"v", 1}, {"type", "explain"}, {"id", "x"}, {"decision", "d-nope"}});
  EXPECT_EQ(ex["error"]["code"], "not_found");
  EXPECT_EQ(ex["error"]["field"], "decision");
  json bad = c.Call({{"v", 1}, {"type", "explain"}, {"id", "y"}});
  EXPECT_EQ(bad["error"]["field"], "decision");
}

// A config of our own whose rules directory the test edits.
class Reload : public RulesService {
 protected:
  void SetUp() override {
    RulesService::SetUp();
    rules_ = dir_.file("rules");
    std::filesystem::create_directories(rules_);
    Lever("1.5");
    config_ = dir_.file("tailor.yaml");
    WriteFile(config_, std::string(R"(
plugins:
)") + ShippedPluginYaml("popularity") +
                           R"(placements:
  home: {kind: offers}
  checkout: {kind: offers}
  email: {kind: offers}
rules: rules
offers: )" + TAILOR_SOURCE_DIR +
                           "/config/offers.yaml\n");
  }
  void Lever(const std::string& factor) {
    WriteFile(rules_ + "/boost.lua", "rule { name = 'boost', score = function() return " + factor +
                                         ", 'campaign' end }\n");
  }
  double FirstLever(Client& c) {
    json r =
        c.Call(DecideMsg({{"customer", "c1"}, {"channel", "web"}, {"placement", "home"}}, "r"));
    EXPECT_FALSE(r.contains("error")) << r.dump();
    return r["offers"].empty() ? -1 : r["offers"][0]["why"]["levers"].get<double>();
  }
  std::string rules_, config_;
};

TEST_F(Reload, BrokenFileKeepsTheOldRulesAndListsTheErrors) {
  Tailord d({config_, store_, {}});
  ASSERT_TRUE(d.running()) << d.Log();
  Client c(d.requests());
  EXPECT_DOUBLE_EQ(FirstLever(c), 1.5);

  WriteFile(rules_ + "/broken.lua", "rule { name = 'oops',\n  score = function() return 1 end\n");
  WriteFile(rules_ + "/global.lua", "\n\nleak = 42\n");
  json r = c.Call({{"v", 1}, {"type", "rules.reload"}, {"id", "rl"}});
  ASSERT_TRUE(r.contains("error")) << r.dump();
  EXPECT_EQ(r["error"]["code"], "reload_failed");
  std::string errors = Joined(r["error"]["errors"]);
  EXPECT_NE(errors.find(rules_ + "/broken.lua:3:"), std::string::npos) << errors;
  EXPECT_NE(errors.find(rules_ + "/global.lua:3: assignment to undeclared global 'leak'"),
            std::string::npos)
      << errors;
  // Still serving, still with the old rule.
  EXPECT_DOUBLE_EQ(FirstLever(c), 1.5);

  std::filesystem::remove(rules_ + "/broken.lua");
  std::filesystem::remove(rules_ + "/global.lua");
  Lever("3");
  r = c.Call({{"v", 1}, {"type", "rules.reload"}, {"id", "rl2"}});
  ASSERT_TRUE(r.value("reloaded", false)) << r.dump();
  EXPECT_EQ(r["rules"], 1);
  EXPECT_DOUBLE_EQ(FirstLever(c), 3.0);

  // A broken offers file is refused the same way, with file:line:col.
  std::string offers = dir_.file("offers.yaml");
  WriteFile(offers, "offers:\n  - id: x\n    vaule: 3\n");
  WriteFile(config_, ReadFile(config_).substr(0, ReadFile(config_).find("offers:")) +
                         "offers: offers.yaml\n");
  r = c.Call({{"v", 1}, {"type", "rules.reload"}, {"id", "rl3"}});
  EXPECT_NE(Joined(r["error"]["errors"]).find(offers + ":3:5: offers[0].vaule: unknown key"),
            std::string::npos)
      << r.dump();
  EXPECT_DOUBLE_EQ(FirstLever(c), 3.0);
}

TEST_F(Reload, SighupReloads) {
  Tailord d({config_, store_, {}});
  Client c(d.requests());
  EXPECT_DOUBLE_EQ(FirstLever(c), 1.5);
  Lever("2.5");
  json health = c.Call({{"v", 1}, {"type", "health"}, {"id", "h"}});
  int pid = 0;
  {
    std::ifstream in(store_ + ".ready.json");
    pid = json::parse(in)["pid"];
  }
  ASSERT_GT(pid, 0);
  kill(pid, SIGHUP);
  double lever = 0;
  for (int i = 0; i < 100 && lever != 2.5; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    lever = FirstLever(c);
  }
  EXPECT_DOUBLE_EQ(lever, 2.5);
  json after = c.Call({{"v", 1}, {"type", "health"}, {"id", "h"}});
  EXPECT_GT(after["health"]["snapshot"].get<int>(), health["health"]["snapshot"].get<int>());
}

TEST_F(Reload, ConcurrentRequestsDuringReloadsAllSucceed) {
  Tailord d({config_, store_, {"--workers", "2"}});
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, bad{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&, t] {
      Client c(d.requests());
      for (int i = 0; !stop; ++i) {
        json r = c.Call(DecideMsg(
            {{"customer", "c" + std::to_string(1 + t)}, {"channel", "web"}, {"placement", "home"}},
            std::to_string(i)));
        double lever = r["offers"].empty() ? 0 : r["offers"][0]["why"]["levers"].get<double>();
        // Every answer comes from one whole rule set: 1.5 or 4, never a mix.
        if (!r.contains("error") && (lever == 1.5 || lever == 4.0))
          ++ok;
        else
          ++bad;
      }
    });
  }
  Client admin(d.requests());
  for (int i = 0; i < 20; ++i) {
    Lever(i % 2 ? "1.5" : "4");
    json r = admin.Call({{"v", 1}, {"type", "rules.reload"}, {"id", "r"}});
    EXPECT_TRUE(r.value("reloaded", false)) << r.dump();
  }
  stop = true;
  for (auto& t : clients) t.join();
  EXPECT_GT(ok.load(), 20);
  EXPECT_EQ(bad.load(), 0);
}

TEST_F(Reload, RulesCheckCommandReportsFileLineAndExitsNonZero) {
  WriteFile(rules_ + "/bad.lua",
            "rule { name = 'b', eligible = function(o)\n  return o.x.y\nend }\n");
  std::string out = dir_.file("check.txt");
  std::string cmd = TailorBin() + " rules check --config " + config_ + " >" + out + " 2>&1";
  int rc = std::system(cmd.c_str());
  EXPECT_NE(WEXITSTATUS(rc), 0);
  std::string text = ReadFile(out);
  EXPECT_NE(text.find(rules_ + "/bad.lua:2: rule 'b' (eligible error): attempt to index a nil "
                               "value (field 'x')"),
            std::string::npos)
      << text;
  std::filesystem::remove(rules_ + "/bad.lua");
  rc = std::system(cmd.c_str());
  EXPECT_EQ(WEXITSTATUS(rc), 0) << ReadFile(out);
  EXPECT_NE(ReadFile(out).find("dry run clean"), std::string::npos);
}

}  // namespace
}  // namespace tailor::testing

namespace tailor::testing {
namespace {

// A journey whose outbound step is due one second after a purchase.
TEST_F(RulesService, JourneyStageShowsInWhyAndOutboundStepIsPublished) {
  WriteJourney("fast.yaml", R"(
name: fast_follow_up
stages:
  - name: bought
    categories: [accessories]
    offers: [o_loyalty_app]
    steps:
      - {name: thanks, delay: 1s, channel: email, offer: o_loyalty_app}
entry:
  - {event: purchase, category: laptops, stage: bought}
)");
  Tailord d({JourneyConfig(ShippedPluginYaml("popularity")), store_, {}});
  ASSERT_TRUE(d.running()) << d.Log();
  Subscriber sub(d.outbound(), 10000);

  Client c(d.requests());
  // i1 is a laptop in the test world.
  json ack = c.Call({{"v", 1},
                     {"type", "event"},
                     {"id", "e"},
                     {"customer", "c4"},
                     {"event", "purchase"},
                     {"item", "i1"}});
  ASSERT_EQ(ack["ok"], true) << ack.dump();
  json r = c.Call(DecideMsg(
      {{"customer", "c4"}, {"channel", "web"}, {"placement", "home"}, {"limit", 10}}, "j"));
  ASSERT_FALSE(r.contains("error")) << r.dump();
  // Only what the stage allows: accessories and the loyalty offer.
  for (const json& o : r["offers"]) {
    std::string id = IdOf(o);
    EXPECT_TRUE(id == "o_loyalty_app" || id == "o_accessory_addon") << r.dump();
    EXPECT_NE(Joined(o["why"]["rules"]).find("journey fast_follow_up, stage bought"),
              std::string::npos)
        << o.dump();
  }
  json p = c.Call({{"v", 1}, {"type", "profile.get"}, {"id", "p"}, {"customer", "c4"}});
  EXPECT_EQ(p["profile"]["journeys"]["fast_follow_up"], "bought") << p.dump();

  std::optional<std::string> m = sub.Next();
  ASSERT_TRUE(m.has_value()) << "no outbound message within 10 s";
  json out = json::parse(*m);
  EXPECT_EQ(out["customer"], "c4") << out.dump();
  EXPECT_EQ(out["journey"], "fast_follow_up");
  EXPECT_EQ(out["offer"], "o_loyalty_app");
  EXPECT_EQ(out["channel"], "email");
}

// Item placements answer to journeys as offers do: a stage's categories,
// channels and contact caps apply to recommended items; its offer list names
// offers only, so it leaves items open.
TEST_F(RulesService, JourneyStagesJudgeItemPlacements) {
  WriteJourney("listening.yaml", R"(
name: listening
stages:
  - name: audio_only
    categories: [audio]
    offers: [o_loyalty_app]
  - name: open
    offers: [o_loyalty_app]
    caps:
      - {channel: web, max: 1, per: 1d}
entry:
  - {event: purchase, category: laptops, stage: audio_only}
transitions:
  - {from: audio_only, to: open, event: click}
)");
  // Explicit impressions: the contacts the cap counts are the one the test
  // reports (on_decide would count every decide's five shown items).
  Tailord d({JourneyConfig(ShippedPluginYaml("popularity"),
                           "  recs: {kind: items, impressions: explicit}\n"),
             store_,
             {}});
  ASSERT_TRUE(d.running()) << d.Log();
  Client c(d.requests());
  auto event = [&](const std::string& type, const std::string& item, const std::string& channel) {
    json e = {{"v", 1},           {"type", "event"}, {"id", "e"},
              {"customer", "c4"}, {"event", type},   {"item", item}};
    if (!channel.empty()) e["channel"] = channel;
    json ack = c.Call(e);
    ASSERT_EQ(ack["ok"], true) << ack.dump();
  };
  auto recs = [&](const std::string& id) {
    json r = c.Call(DecideMsg(
        {{"customer", "c4"}, {"channel", "web"}, {"placement", "recs"}, {"limit", 5}}, id));
    EXPECT_FALSE(r.contains("error")) << r.dump();
    return r;
  };
  // The stage's suppressed items and their reasons, from the stored trace.
  auto suppressed = [&](const json& r) {
    json ex = c.Call({{"v", 1}, {"type", "explain"}, {"id", "x"}, {"decision", r["decision"]}});
    std::map<std::string, std::string> out;
    for (const json& t : ex["explain"]["trace"]["entries"])
      if (t["status"] == "suppressed")
        out[IdOf(t)] = Joined(t["why"].value("rules", json::array()));
    return out;
  };

  event("purchase", "i1", "");  // i1 is a laptop: enters audio_only
  json r = recs("audio");
  ASSERT_EQ(r["offers"].size(), 5u) << r.dump();
  for (const json& o : r["offers"]) {
    EXPECT_EQ(o["category"], "audio") << r.dump();
    EXPECT_NE(Joined(o["why"]["rules"]).find("journey listening, stage audio_only"),
              std::string::npos)
        << o.dump();
  }
  auto refused = suppressed(r);
  ASSERT_TRUE(refused.count("i3")) << "phones item i3 not suppressed";
  EXPECT_NE(refused["i3"].find("journey listening, stage audio_only: category phones not allowed "
                               "here"),
            std::string::npos)
      << refused["i3"];

  event("click", "i2", "");  // to `open`: an offer list only, so every item again
  r = recs("open");
  ASSERT_EQ(r["offers"].size(), 5u) << r.dump();
  std::set<std::string> categories;
  for (const json& o : r["offers"]) categories.insert(o["category"].get<std::string>());
  EXPECT_GE(categories.size(), 2u) << r.dump();

  event("impression", "i2", "web");  // one web contact: the cap is reached
  r = recs("capped");
  EXPECT_TRUE(r["offers"].empty()) << r.dump();
  refused = suppressed(r);
  ASSERT_FALSE(refused.empty());
  for (const auto& [id, why] : refused)
    EXPECT_NE(why.find("journey listening, stage open: contact cap reached: at most 1 web "
                       "contacts per 1d (1 so far)"),
              std::string::npos)
        << id << ": " << why;
}

}  // namespace
}  // namespace tailor::testing

namespace tailor::testing {
namespace {

// Plugin facts (ABI 1.1 annotate) reach the shipped rules as customer.dna and
// ctx.intent, show in why.facts, and a chat event's intent enters a journey.
// The `facts` fixture calls every known customer a high deal seeker and a
// message containing "cancel" the intent "cancel".
TEST_F(RulesService, PluginFactsFeedRulesWhyAndJourneys) {
  WriteJourney("retention.yaml", R"(
name: retention
stages:
  - name: retain
    offers: [o_loyalty_app, o_audio_week]
entry:
  - {event: chat, intent: cancel, stage: retain}
)");
  const std::string config =
      JourneyConfig(ShippedPluginYaml("popularity") + FixturePluginYaml("facts"), "",
                    std::string("rules: ") + TAILOR_SOURCE_DIR + "/rules\n");
  Tailord d({config, store_, {}});
  ASSERT_TRUE(d.running()) << d.Log();
  Client c(d.requests());

  json r = c.Call(DecideMsg({{"customer", "c1"},
                             {"channel", "web"},
                             {"placement", "home"},
                             {"limit", 14},
                             {"context", {{"message", "I want to cancel"}}}},
                            "f1"));
  ASSERT_FALSE(r.contains("error")) << r.dump();
  std::map<std::string, json> by_id;
  for (const json& o : r["offers"]) by_id[IdOf(o)] = o;
  // ctx.intent == "cancel": the chat_intent rule vetoes the upsell.
  EXPECT_FALSE(by_id.count("o_laptop_bundle")) << r.dump();
  // customer.dna.deal_seeker == "high": the discount rule boosts.
  ASSERT_TRUE(by_id.count("o_audio_week")) << r.dump();
  const json& why = by_id["o_audio_week"]["why"];
  EXPECT_NE(
      Joined(why["rules"]).find("deal_seeker_discounts: x1.25 deal seeker; discount up to 30%"),
      std::string::npos)
      << why.dump();
  EXPECT_EQ(why["facts"]["customer"]["dna"]["deal_seeker"], "high") << why.dump();
  EXPECT_EQ(why["facts"]["context"]["intent"], "cancel") << why.dump();

  // A failing annotate drops only the facts: the request is answered, the
  // failure is named and counted.
  json b = c.Call(DecideMsg({{"customer", "c1"},
                             {"channel", "web"},
                             {"placement", "home"},
                             {"context", {{"message", "boom"}}}},
                            "f2"));
  ASSERT_FALSE(b.contains("error")) << b.dump();
  ASSERT_FALSE(b["offers"].empty());
  EXPECT_NE(b["offers"][0]["why"]["dropped"].value("facts.facts", "").find("boom"),
            std::string::npos)
      << b.dump();
  EXPECT_TRUE(b["offers"][0]["why"]["plugins"].contains("facts")) << "scores still count";
  json st = c.Call({{"v", 1}, {"type", "stats"}, {"id", "s"}});
  EXPECT_GE(st["stats"]["plugins"]["facts"]["annotate_errors"].get<int>(), 1) << st.dump();

  // Chat events: the classified intent is a journey trigger.
  for (auto [who, text] : {std::pair{"c2", "please cancel my contract"}, {"c3", "hello there"}}) {
    json ack = c.Call({{"v", 1},
                       {"type", "event"},
                       {"id", "e"},
                       {"customer", who},
                       {"event", "chat"},
                       {"text", text}});
    ASSERT_EQ(ack["ok"], true) << ack.dump();
  }
  json p2 = c.Call({{"v", 1}, {"type", "profile.get"}, {"id", "p"}, {"customer", "c2"}});
  EXPECT_EQ(p2["profile"]["journeys"]["retention"], "retain") << p2.dump();
  json p3 = c.Call({{"v", 1}, {"type", "profile.get"}, {"id", "p"}, {"customer", "c3"}});
  EXPECT_FALSE(p3["profile"].value("journeys", json::object()).contains("retention")) << p3.dump();
}

}  // namespace
}  // namespace tailor::testing

namespace tailor::testing {
namespace {

// A plugin that abstains on a candidate leaves that candidate's P to the
// others: P is the weighted mean over the plugins with an opinion.
TEST_F(RulesService, AbstainingPluginLeavesPToTheOthers) {
  std::string config = dir_.file("tailor.yaml");
  WriteFile(config, std::string(R"(
plugins:
)") + ShippedPluginYaml("popularity") +
                        FixturePluginYaml("abstains", "    weight: 3\n") + R"(placements:
  home: {kind: offers}
  checkout: {kind: offers}
  email: {kind: offers}
offers: )" + TAILOR_SOURCE_DIR +
                        "/config/offers.yaml\n");
  Tailord d({config, store_, {}});
  ASSERT_TRUE(d.running()) << d.Log();
  Client c(d.requests());
  json r = c.Call(DecideMsg(
      {{"customer", "c1"}, {"channel", "web"}, {"placement", "home"}, {"limit", 20}}, "a"));
  ASSERT_FALSE(r.contains("error")) << r.dump();
  int abstained = 0, scored = 0;
  for (const json& o : r["offers"]) {
    const json& why = o["why"];
    double pop = why["plugins"]["popularity"]["score"];
    const json& ab = why["plugins"]["abstains"];
    if (ab.value("abstained", false)) {
      ++abstained;
      EXPECT_NEAR(why["propensity"].get<double>(), pop, 1e-6) << o.dump();
    } else {
      ++scored;
      double s = ab["score"];
      EXPECT_NEAR(why["propensity"].get<double>(), (pop + 3 * s) / 4, 1e-6) << o.dump();
    }
  }
  EXPECT_EQ(abstained, 1) << r.dump();
  EXPECT_GE(scored, 2) << r.dump();
}

}  // namespace
}  // namespace tailor::testing
