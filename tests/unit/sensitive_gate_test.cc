#include "decision/sensitive_gate.h"

#include <gtest/gtest.h>

#include "config/config.h"
#include "support/temp_dir.h"

namespace tailor {
namespace {

using testing::TempDir;
using testing::WriteFile;

std::string Join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += x + "\n";
  return s;
}

Offer MakeOffer(const std::string& id, std::map<std::string, std::string> tags = {},
                const std::string& item = "") {
  Offer o;
  o.id = id;
  o.tags = std::move(tags);
  o.item = item;
  return o;
}

Item MakeItem(const std::string& id, const std::string& attributes) {
  Item it;
  it.id = id;
  it.attributes_json = attributes;
  return it;
}

Customer MakeCustomer(const std::string& attributes, const std::string& consent) {
  Customer c;
  c.id = "c";
  c.attributes_json = attributes;
  c.consent_json = consent;
  return c;
}

// o_plain, o_prenatal (tags.sensitive), o_promotes_sensitive (promotes i_bump).
SensitiveGate DemoGate(SensitiveConfig cfg = {}) {
  std::vector<Offer> offers = {MakeOffer("o_plain", {{"audience", "all"}}),
                               MakeOffer("o_prenatal", {{"sensitive", "pregnancy"}}),
                               MakeOffer("o_promotes_sensitive", {}, "i_bump")};
  std::vector<Item> items = {
      MakeItem("i_plain", R"({"margin":0.2,"tags":["gift"]})"),
      MakeItem("i_bump", R"({"sensitive":"pregnancy","tags":["pregnancy"]})"),  // demo world
      MakeItem("i_tag_list", R"({"tags":["sensitive","new"]})"),
      MakeItem("i_tag_map", R"({"tags":{"sensitive":"health"}})"),
      MakeItem("i_true", R"({"sensitive":true})"),
      MakeItem("i_false", R"({"sensitive":false})"),
      MakeItem("i_broken", R"({"sensitive":)"),
  };
  return SensitiveGate(std::move(cfg), offers, items);
}

TEST(SensitiveGate, FindsTopicsOfOffersAndItems) {
  SensitiveGate g = DemoGate();
  EXPECT_EQ(g.OfferTopic(0), nullptr);
  ASSERT_NE(g.OfferTopic(1), nullptr);
  EXPECT_EQ(*g.OfferTopic(1), "pregnancy");
  // An offer promoting a sensitive item is as sensitive as the item.
  ASSERT_NE(g.OfferTopic(2), nullptr);
  EXPECT_EQ(*g.OfferTopic(2), "pregnancy");
  EXPECT_EQ(g.ItemTopic(0), nullptr);
  ASSERT_NE(g.ItemTopic(1), nullptr);
  EXPECT_EQ(*g.ItemTopic(1), "pregnancy");
  ASSERT_NE(g.ItemTopic(2), nullptr);
  EXPECT_EQ(*g.ItemTopic(2), "sensitive");
  ASSERT_NE(g.ItemTopic(3), nullptr);
  EXPECT_EQ(*g.ItemTopic(3), "health");
  ASSERT_NE(g.ItemTopic(4), nullptr);
  EXPECT_EQ(*g.ItemTopic(4), "sensitive");
  EXPECT_EQ(g.ItemTopic(5), nullptr);  // explicitly not sensitive
  // Attributes that cannot be read cannot be cleared.
  EXPECT_NE(g.ItemTopic(6), nullptr);
  EXPECT_EQ(g.ItemTopic(99), nullptr);
}

TEST(SensitiveGate, ConfiguredTagNamesTheKey) {
  SensitiveConfig cfg;
  cfg.tag = "health";
  SensitiveGate g = DemoGate(cfg);
  EXPECT_EQ(g.OfferTopic(1), nullptr);  // tags.sensitive is no longer the key
  EXPECT_EQ(g.ItemTopic(1), nullptr);
  ASSERT_EQ(g.ItemTopic(3), nullptr);  // tags.sensitive: health is a value, not the key
}

TEST(SensitiveGate, ConsentingAdultIsAllowed) {
  SensitiveGate g = DemoGate();
  Customer c = MakeCustomer(R"({"age":30})", R"({"personalization":true,"sensitive":true})");
  EXPECT_EQ(g.Refusal(&c, true), "");
  Customer exact = MakeCustomer(R"({"age":21})", R"({"sensitive":true})");
  EXPECT_EQ(g.Refusal(&exact, true), "");
  Customer text_age = MakeCustomer(R"({"age":"45"})", R"({"sensitive":true})");
  EXPECT_EQ(g.Refusal(&text_age, true), "");
}

TEST(SensitiveGate, FailsClosed) {
  SensitiveGate g = DemoGate();
  const std::string consent = R"({"personalization":true,"sensitive":true})";
  struct Case {
    const char* name;
    std::string attributes, consent;
    std::string refusal;
  } cases[] = {
      {"under age", R"({"age":17})", consent, "under 21"},
      {"age just under", R"({"age":20.9})", consent, "under 21"},
      {"age missing", R"({})", consent, "age unknown"},
      {"age null", R"({"age":null})", consent, "age unknown"},
      {"age not a number", R"({"age":"thirty"})", consent, "age unknown"},
      {"age a bool", R"({"age":true})", consent, "age unknown"},
      {"attributes unparseable", R"({"age":)", consent, "age unknown"},
      {"consent false", R"({"age":30})", R"({"sensitive":false})",
       "no explicit consent 'sensitive'"},
      {"consent missing", R"({"age":30})", R"({"personalization":true})",
       "no explicit consent 'sensitive'"},
      {"consent a string", R"({"age":30})", R"({"sensitive":"true"})",
       "no explicit consent 'sensitive'"},
      {"consent a number", R"({"age":30})", R"({"sensitive":1})",
       "no explicit consent 'sensitive'"},
      {"consent unparseable", R"({"age":30})", R"({"sensitive":tru)",
       "no explicit consent 'sensitive'"},
  };
  for (const Case& k : cases) {
    Customer c = MakeCustomer(k.attributes, k.consent);
    EXPECT_EQ(g.Refusal(&c, true), k.refusal) << k.name;
  }
  Customer adult = MakeCustomer(R"({"age":30})", consent);
  EXPECT_EQ(g.Refusal(nullptr, false), "customer unknown or not personalised");
  EXPECT_EQ(g.Refusal(nullptr, true), "customer unknown or not personalised");
  EXPECT_EQ(g.Refusal(&adult, false), "customer unknown or not personalised");
}

TEST(SensitiveGate, ConfiguredConsentAndAge) {
  SensitiveConfig cfg;
  cfg.consent = "health_offers";
  cfg.min_age = 18;
  SensitiveGate g = DemoGate(cfg);
  Customer c = MakeCustomer(R"({"age":19})", R"({"sensitive":true})");
  EXPECT_EQ(g.Refusal(&c, true), "no explicit consent 'health_offers'");
  c.consent_json = R"({"health_offers":true})";
  EXPECT_EQ(g.Refusal(&c, true), "");
  c.attributes_json = R"({"age":17})";
  EXPECT_EQ(g.Refusal(&c, true), "under 18");
  // min_age 0: no age needed, consent still is.
  cfg.min_age = 0;
  SensitiveGate no_age = DemoGate(cfg);
  c.attributes_json = "{}";
  EXPECT_EQ(no_age.Refusal(&c, true), "");
  c.consent_json = "{}";
  EXPECT_EQ(no_age.Refusal(&c, true), "no explicit consent 'health_offers'");
}

TEST(SensitiveGate, CheckVetoesOnlySensitiveCandidatesAndCounts) {
  SensitiveGate g = DemoGate();
  Customer teen = MakeCustomer(R"({"age":17})", R"({"sensitive":true})");
  SensitiveCheck check(g, &teen, true);
  EXPECT_EQ(check.Veto(0, -1), "");
  EXPECT_EQ(check.Veto(1, -1), "sensitive gate (pregnancy): under 21");
  EXPECT_EQ(check.Veto(-1, 0), "");
  EXPECT_EQ(check.Veto(-1, 1), "sensitive gate (pregnancy): under 21");
  EXPECT_EQ(check.Veto(-1, -1), "");
  EXPECT_EQ(check.vetoes(), 2u);

  Customer adult = MakeCustomer(R"({"age":30})", R"({"sensitive":true})");
  SensitiveCheck ok(g, &adult, true);
  EXPECT_EQ(ok.Veto(1, -1), "");
  EXPECT_EQ(ok.Veto(-1, 1), "");
  EXPECT_EQ(ok.vetoes(), 0u);

  SensitiveCheck anonymous(g, nullptr, false);
  EXPECT_EQ(anonymous.Veto(2, -1),
            "sensitive gate (pregnancy): customer unknown or not personalised");
  EXPECT_EQ(anonymous.vetoes(), 1u);
}

TEST(SensitiveGate, Outbound) {
  SensitiveGate g = DemoGate();
  Customer adult = MakeCustomer(R"({"age":30})", R"({"sensitive":true})");
  Customer no_consent = MakeCustomer(R"({"age":30})", R"({"personalization":true})");
  Customer opted_out =
      MakeCustomer(R"({"age":30})", R"({"personalization":false,"sensitive":true})");
  EXPECT_EQ(g.OutboundRefusal("o_plain", &no_consent), "");
  EXPECT_EQ(g.OutboundRefusal("o_plain", nullptr), "");
  EXPECT_EQ(g.OutboundRefusal("", nullptr), "");  // a step without an offer
  EXPECT_EQ(g.OutboundRefusal("o_prenatal", &adult), "");
  EXPECT_EQ(g.OutboundRefusal("o_prenatal", &no_consent),
            "sensitive gate (pregnancy): no explicit consent 'sensitive'");
  EXPECT_EQ(g.OutboundRefusal("o_promotes_sensitive", &no_consent),
            "sensitive gate (pregnancy): no explicit consent 'sensitive'");
  EXPECT_EQ(g.OutboundRefusal("o_prenatal", &opted_out),
            "sensitive gate (pregnancy): customer unknown or not personalised");
  EXPECT_EQ(g.OutboundRefusal("o_prenatal", nullptr),
            "sensitive gate (pregnancy): customer unknown or not personalised");
  // An offer the catalog no longer has: its topic cannot be known.
  EXPECT_EQ(g.OutboundRefusal("o_gone", &adult),
            "sensitive gate (sensitive): offer 'o_gone' is not in the catalog");
}

TEST(SensitiveGate, ConfigDefaultsAndKeys) {
  TempDir dir;
  WriteFile(dir.file("t.yaml"), "placements:\n  home: {kind: offers}\n");
  std::vector<std::string> errors;
  auto cfg = LoadConfig(dir.file("t.yaml"), "", &errors);
  ASSERT_TRUE(cfg.has_value());
  // No `sensitive:` block: the gate is on with its defaults.
  EXPECT_EQ(cfg->sensitive.tag, "sensitive");
  EXPECT_EQ(cfg->sensitive.consent, "sensitive");
  EXPECT_EQ(cfg->sensitive.min_age, 21);

  WriteFile(dir.file("s.yaml"),
            "placements:\n  home: {kind: offers}\n"
            "sensitive:\n  tag: health\n  consent: health_offers\n  min_age: 18\n");
  cfg = LoadConfig(dir.file("s.yaml"), "", &errors);
  ASSERT_TRUE(cfg.has_value());
  EXPECT_EQ(cfg->sensitive.tag, "health");
  EXPECT_EQ(cfg->sensitive.consent, "health_offers");
  EXPECT_EQ(cfg->sensitive.min_age, 18);
}

TEST(SensitiveGate, ConfigErrorsNameFileLineAndKey) {
  TempDir dir;
  WriteFile(dir.file("bad.yaml"),
            "placements:\n  home: {kind: offers}\n"
            "sensitive:\n  tag: \"\"\n  min_age: 200\n  enabled: false\n");
  std::vector<std::string> errors;
  auto cfg = LoadConfig(dir.file("bad.yaml"), "", &errors);
  EXPECT_FALSE(cfg.has_value());
  ASSERT_EQ(errors.size(), 3u) << Join(errors);
  const std::string f = dir.file("bad.yaml");
  EXPECT_EQ(errors[0], f + ":4:8: sensitive.tag: expected a non-empty string");
  EXPECT_EQ(errors[1], f + ":5:12: sensitive.min_age: must be between 0 and 150, got 200");
  // There is no switch to turn the gate off.
  EXPECT_EQ(errors[2], f + ":6:3: sensitive.enabled: unknown key (valid: tag, consent, min_age)");

  errors.clear();
  WriteFile(dir.file("list.yaml"), "placements:\n  home: {kind: offers}\nsensitive: [a]\n");
  EXPECT_FALSE(LoadConfig(dir.file("list.yaml"), "", &errors).has_value());
  ASSERT_EQ(errors.size(), 1u) << Join(errors);
  EXPECT_EQ(errors[0], dir.file("list.yaml") + ":3:12: sensitive: expected a mapping");

  // An empty block is the defaults, not an error per key.
  errors.clear();
  WriteFile(dir.file("empty.yaml"), "placements:\n  home: {kind: offers}\nsensitive:\n");
  cfg = LoadConfig(dir.file("empty.yaml"), "", &errors);
  ASSERT_TRUE(cfg.has_value()) << Join(errors);
  EXPECT_EQ(cfg->sensitive.min_age, 21);
}

}  // namespace
}  // namespace tailor
