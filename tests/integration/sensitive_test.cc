// The engine's sensitive gate (tailor.yaml `sensitive:`) with a real tailord:
// it holds when the rules that used to be the only gate throw, lift or are
// absent, for offers and for items, and on outbound journey steps.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <thread>

#include "store/store.h"
#include "support/tailord.h"
#include "support/temp_dir.h"
#include "support/world.h"

namespace tailor::testing {
namespace {

using nlohmann::json;

constexpr const char* kUnder21 = "sensitive gate (pregnancy): under 21";
constexpr const char* kNoConsent = "sensitive gate (pregnancy): no explicit consent 'sensitive'";
constexpr const char* kAgeUnknown = "sensitive gate (pregnancy): age unknown";
constexpr const char* kNotPersonalised =
    "sensitive gate (pregnancy): customer unknown or not personalised";

// Who asks, and the note the gate must leave on the sensitive candidate ("" =
// it may be shown).
struct Asker {
  const char* customer;  // "" = anonymous
  const char* veto;
};
const Asker kAskers[] = {
    {"adult_consent", ""},             // age 30, consent true
    {"teen", kUnder21},                // age 17, consent true
    {"adult_no_consent", kNoConsent},  // consent flag missing
    {"consent_false", kNoConsent},     // consent flag false
    {"consent_text", kNoConsent},      // consent flag "true" (a string)
    {"no_age", kAgeUnknown},           // age missing
    {"age_text", kAgeUnknown},         // age "thirty"
    {"opted_out", kNotPersonalised},   // personalization: false
    {"stranger", kNotPersonalised},    // no such customer
    {"", kNotPersonalised},            // anonymous
};

class SensitiveService : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = dir_.file("tailor.db");
    MakeSmallWorld(store_);
    // More customers and a sensitive item (as the demo world marks them).
    WorldAdditions more;
    more.customers = {
        {"consent_false", R"({"age":30})", R"({"personalization":true,"sensitive":false})"},
        {"consent_text", R"({"age":30})", R"({"personalization":true,"sensitive":"true"})"},
        {"no_age", R"({})", R"({"personalization":true,"sensitive":true})"},
        {"age_text", R"({"age":"thirty"})", R"({"personalization":true,"sensitive":true})"},
        {"opted_out", R"({"age":30})", R"({"personalization":false,"sensitive":true})"},
    };
    Item it;
    it.id = "i_bump";
    it.title = "Bump cream";
    it.category = "audio";
    it.brand = "Acme";
    it.price = 20;
    it.attributes_json = R"({"margin":0.2,"sensitive":"pregnancy","tags":["pregnancy"]})";
    more.items.push_back(it);
    AddToWorld(store_, more);
  }

  // A config with the popularity plugin, the offers placements the shipped
  // offers name (email serves the sensitive one) and an items placement,
  // the shipped offers and, when rules is not empty, that rules directory.
  std::string Config(const std::string& rules, const std::string& extra = "") {
    std::string path = dir_.file("tailor.yaml");
    WriteFile(path, std::string("plugins:\n") + ShippedPluginYaml("popularity") +
                        "placements:\n"
                        "  home: {kind: offers}\n"
                        "  checkout: {kind: offers}\n"
                        "  email: {kind: offers}\n"
                        "  recs: {kind: items}\n"
                        "offers: " +
                        TAILOR_SOURCE_DIR + "/config/offers.yaml\n" +
                        (rules.empty() ? "" : "rules: " + rules + "\n") + extra);
    return path;
  }

  std::string RulesDir(const std::string& name, const std::string& text) {
    std::string dir = dir_.file("rules");
    std::filesystem::create_directories(dir);
    WriteFile(dir + "/" + name, text);
    return dir;
  }

  // Decides, then returns {shown id -> entry} and {suppressed id -> notes}.
  struct Outcome {
    std::map<std::string, json> shown;
    std::map<std::string, std::vector<std::string>> suppressed;
  };
  Outcome Decide(Client& c, const std::string& customer, const std::string& placement) {
    json req = {{"v", 1},
                {"type", "decide"},
                {"id", "d"},
                {"channel", "email"},
                {"placement", placement},
                {"limit", 50}};
    if (!customer.empty()) req["customer"] = customer;
    json r = c.Call(req);
    Outcome out;
    EXPECT_FALSE(r.contains("error")) << r.dump();
    for (const json& o : r["offers"]) out.shown[o.value("offer", o.value("item", ""))] = o;
    json ex = c.Call({{"v", 1}, {"type", "explain"}, {"id", "x"}, {"decision", r["decision"]}});
    EXPECT_TRUE(ex.contains("explain")) << ex.dump();
    for (const json& t : ex["explain"]["trace"]["entries"])
      if (t["status"] == "suppressed")
        out.suppressed[t.value("offer", t.value("item", ""))] =
            t["why"].value("rules", std::vector<std::string>{});
    return out;
  }

  // Every asker, for the sensitive offer and the sensitive item: the vetoed
  // are never shown and carry the gate's note; the others are shown. Returns
  // how many candidates were vetoed.
  int ExpectGated(Client& c) {
    int vetoes = 0;
    for (const Asker& a : kAskers) {
      SCOPED_TRACE(std::string("customer '") + a.customer + "'");
      for (const auto& [placement, id] :
           {std::pair<std::string, std::string>{"email", "o_prenatal_care"},
            std::pair<std::string, std::string>{"recs", "i_bump"}}) {
        Outcome o = Decide(c, a.customer, placement);
        if (a.veto[0] == '\0') {
          EXPECT_TRUE(o.shown.count(id)) << id << " not shown in " << placement;
          EXPECT_FALSE(o.suppressed.count(id));
          continue;
        }
        ++vetoes;
        EXPECT_FALSE(o.shown.count(id)) << id << " shown in " << placement;
        // The gate runs first: its note is the only one, no rule was asked.
        EXPECT_EQ(o.suppressed[id], std::vector<std::string>{a.veto})
            << id << " in " << placement << ": " << json(o.suppressed[id]).dump();
      }
    }
    return vetoes;
  }

  json Stats(Client& c) { return c.Call({{"v", 1}, {"type", "stats"}, {"id", "s"}})["stats"]; }

  TempDir dir_;
  std::string store_;
};

// (1) The rules that fail, allow everything or lift everything cannot open
// the gate; they still act on everything else.
TEST_F(SensitiveService, RulesThatThrowOrLiftCannotOpenTheGate) {
  std::string rules = RulesDir("10_hostile.lua", R"(
rule {
  name = "allow_all",
  description = "says yes to everything",
  eligible = function(offer, customer, ctx) return true, "allowed" end,
}
rule {
  name = "broken",
  description = "fails on every call",
  eligible = function(offer, customer, ctx) error("boom") end,
}
rule {
  name = "lift",
  description = "lifts everything fifty-fold",
  score = function(offer, p, customer, ctx) return 50, "lifted" end,
}
)");
  Tailord d({Config(rules), store_, {}});
  ASSERT_TRUE(d.running()) << d.Log();
  Client c(d.requests());
  const int vetoes = ExpectGated(c);
  EXPECT_EQ(vetoes, 18);
  // Rules ran on the rest: the lever shows on what a consenting adult sees.
  Outcome adult = Decide(c, "adult_consent", "email");
  ASSERT_TRUE(adult.shown.count("o_prenatal_care"));
  EXPECT_DOUBLE_EQ(adult.shown["o_prenatal_care"]["why"]["levers"].get<double>(), 50.0);
  json stats = Stats(c);
  EXPECT_GT(stats["rules"]["broken"]["errors"].get<int>(), 0) << stats.dump();
  EXPECT_EQ(stats["sensitive"]["vetoes"].get<int>(), vetoes) << stats.dump();
}

// (2) Without any rules (no rules directory, or rules that did not build: a
// worker then serves with none) the gate is the same.
TEST_F(SensitiveService, GateHoldsWithoutRules) {
  Tailord d({Config(""), store_, {}});
  ASSERT_TRUE(d.running()) << d.Log();
  Client c(d.requests());
  const int vetoes = ExpectGated(c);
  EXPECT_EQ(Stats(c)["sensitive"]["vetoes"].get<int>(), vetoes);
}

// The configured consent flag and age replace the defaults.
TEST_F(SensitiveService, ConfiguredConsentAndAge) {
  Tailord d({Config("", "sensitive:\n  consent: personalization\n  min_age: 16\n"), store_, {}});
  ASSERT_TRUE(d.running()) << d.Log();
  Client c(d.requests());
  // teen (17, personalization: true) is now allowed; no_age still is not.
  EXPECT_TRUE(Decide(c, "teen", "email").shown.count("o_prenatal_care"));
  Outcome no_age = Decide(c, "no_age", "email");
  ASSERT_TRUE(no_age.suppressed.count("o_prenatal_care"));
  EXPECT_EQ(no_age.suppressed["o_prenatal_care"].front(), kAgeUnknown);
}

// (3) An outbound journey step with a sensitive offer goes only to the
// customer the gate allows; the other steps are cancelled, counted and logged.
TEST_F(SensitiveService, OutboundStepWithSensitiveOfferNeedsConsent) {
  std::string jdir = dir_.file("journeys");
  std::filesystem::create_directories(jdir);
  WriteFile(jdir + "/baby.yaml", R"(
name: baby_follow_up
stages:
  - name: bought
    offers: [o_prenatal_care, o_loyalty_app]
    steps:
      - {name: prenatal, delay: 1s, channel: email, offer: o_prenatal_care}
entry:
  - {event: purchase, category: laptops, stage: bought}
)");
  Tailord d({Config("", "journeys: journeys\n"), store_, {}});
  ASSERT_TRUE(d.running()) << d.Log();
  Subscriber sub(d.outbound(), 4000);

  Client c(d.requests());
  const std::vector<std::string> buyers = {"adult_no_consent", "teen", "adult_consent",
                                           "opted_out"};
  for (const std::string& who : buyers) {
    // i1 is a laptop in the test world.
    json ack = c.Call({{"v", 1},
                       {"type", "event"},
                       {"id", "e"},
                       {"customer", who},
                       {"event", "purchase"},
                       {"item", "i1"}});
    ASSERT_EQ(ack["ok"], true) << ack.dump();
  }
  std::set<std::string> reached;
  while (std::optional<std::string> m = sub.Next()) {
    json out = json::parse(*m);
    EXPECT_EQ(out["offer"], "o_prenatal_care") << out.dump();
    reached.insert(out["customer"].get<std::string>());
  }
  EXPECT_EQ(reached, std::set<std::string>{"adult_consent"});
  json stats = Stats(c);
  // opted_out (personalization: false) never entered the journey: their
  // purchase is stored and learned from by nothing (README § Consent).
  EXPECT_EQ(stats["sensitive"]["outbound_cancelled"].get<int>(), 2) << stats.dump();
  EXPECT_EQ(stats["counters"].value("consent.events_not_learned", 0), 1) << stats.dump();
  EXPECT_EQ(stats["counters"].value("outbound.sent", 0), 1) << stats.dump();
  const std::string log = d.Log();
  // Each refusal is logged with its reason, the customer as a keyed hash.
  for (const char* why : {kUnder21, kNoConsent})
    EXPECT_TRUE(std::regex_search(
        log,
        std::regex(
            "outbound step with offer 'o_prenatal_care' not sent to cust:[0-9a-f]{16}: " +
            std::regex_replace(std::string(why), std::regex(R"([.()\[\]?*+^$|{}])"), R"(\$&)"))))
        << why << "\n"
        << log;
  for (const char* id : {"'teen'", "'adult_no_consent'", "'opted_out'"})
    EXPECT_EQ(log.find(id), std::string::npos) << id << " in the log:\n" << log;
}

}  // namespace
}  // namespace tailor::testing
