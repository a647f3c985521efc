#include "ingest/demo_world.h"

#include "ingest/demo_chat.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "common/time.h"
#include "store/store.h"
#include "support/temp_dir.h"

namespace tailor::ingest {
namespace {

using json = nlohmann::json;
using tailor::testing::TempDir;

constexpr int64_t kDayMs = 24LL * 3600 * 1000;
// 2026-01-15: the 180-day window spans Black Friday and Christmas.
const int64_t kEnd = *parse_iso8601_ms("2026-01-15T00:00:00Z");

std::unique_ptr<Store> OpenStore(const std::string& path) {
  Store::Options o;
  o.path = path;
  o.start_writer = false;
  o.synchronous_full = false;
  std::string err;
  auto store = Store::Open(o, &err);
  EXPECT_NE(store, nullptr) << err;
  return store;
}

DemoOptions Small(uint64_t seed = 7) {
  DemoOptions o;
  o.customers = 400;
  o.items = 120;
  o.days = 180;
  o.seed = seed;
  o.end_ms = kEnd;
  return o;
}

std::vector<Event> AllEvents(Store& store) {
  std::vector<Event> out;
  store.ForEachEvent(0, [&](const Event& e) {
    out.push_back(e);
    return true;
  });
  return out;
}

bool AtNight(int64_t ts) {
  int hour = static_cast<int>((ts % kDayMs) / (3600 * 1000));
  return hour >= 22 || hour < 3;
}

// One generated world shared by the behavioural tests: generating it in a
// Debug build takes a moment.
class DemoWorldTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    store_ = OpenStore(dir_->file("demo.db")).release();
    ASSERT_NE(store_, nullptr);
    summary_ = new DemoSummary();
    Status s = GenerateDemo(*store_, Small(), summary_);
    ASSERT_TRUE(s.ok()) << s.message();
    events_ = new std::vector<Event>(AllEvents(*store_));
  }
  static void TearDownTestSuite() {
    delete events_;
    delete summary_;
    delete store_;
    delete dir_;
  }

  static double Trait(const std::string& customer, const std::string& trait) {
    auto truth = store_->Truth(customer);
    auto it = truth.find(trait);
    return it == truth.end() ? -1 : it->second;
  }

  static TempDir* dir_;
  static Store* store_;
  static DemoSummary* summary_;
  static std::vector<Event>* events_;
};

TempDir* DemoWorldTest::dir_ = nullptr;
Store* DemoWorldTest::store_ = nullptr;
DemoSummary* DemoWorldTest::summary_ = nullptr;
std::vector<Event>* DemoWorldTest::events_ = nullptr;

TEST_F(DemoWorldTest, CountsMatchSummaryAndIdsAreDense) {
  EXPECT_EQ(store_->Count("customers"), 400);
  EXPECT_EQ(store_->Count("items"), 120);
  EXPECT_EQ(store_->Count("events"), summary_->events);
  EXPECT_EQ(static_cast<int64_t>(events_->size()), summary_->events);
  // Roughly 50 events a customer: 3000 customers give 100k-200k.
  EXPECT_GT(summary_->events, 400 * 25);
  EXPECT_LT(summary_->events, 400 * 80);
  EXPECT_TRUE(store_->GetCustomer("c1").has_value());
  EXPECT_TRUE(store_->GetCustomer("c400").has_value());
  EXPECT_FALSE(store_->GetCustomer("c401").has_value());
  EXPECT_FALSE(store_->GetCustomer("c0").has_value());
}

TEST_F(DemoWorldTest, EventsReferenceKnownCustomersAndItemsInsideTheWindow) {
  std::set<std::string> items;
  for (const Item& it : store_->LoadItems()) items.insert(it.id);
  ASSERT_EQ(items.size(), 120u);
  std::set<std::string> customers;
  for (int i = 1; i <= 400; ++i) customers.insert("c" + std::to_string(i));
  int64_t prev = 0;
  for (const Event& e : *events_) {
    ASSERT_TRUE(customers.count(e.customer_id)) << e.customer_id;
    ASSERT_TRUE(items.count(e.item_id)) << e.item_id;
    ASSERT_GE(e.ts_ms, kEnd - 180 * kDayMs);
    ASSERT_LT(e.ts_ms, kEnd);
    ASSERT_GE(e.ts_ms, prev) << "events are written in time order";
    prev = e.ts_ms;
  }
}

TEST_F(DemoWorldTest, FunnelNarrowsFromViewsToReturns) {
  auto n = [&](const char* type) {
    auto it = summary_->events_by_type.find(type);
    return it == summary_->events_by_type.end() ? 0 : it->second;
  };
  EXPECT_GT(n("view"), n("click"));
  EXPECT_GT(n("click"), n("add_to_cart"));
  EXPECT_GT(n("add_to_cart"), n("purchase"));
  EXPECT_GT(n("purchase"), n("return"));
  EXPECT_GT(n("return"), 0);
  EXPECT_LT(n("purchase") * 5, n("view"));
  for (const Event& e : *events_) {
    if (e.type != "purchase") continue;
    auto props = json::parse(e.properties_json);
    double discount = props.at("discount").get<double>();
    EXPECT_GE(discount, 0.0);
    EXPECT_LE(discount, 0.5);
    EXPECT_GE(e.quantity, 1);
    EXPECT_GT(e.value, 0);
  }
}

TEST_F(DemoWorldTest, CatalogHasTheTenCategoriesAndGatedPregnancyItems) {
  std::set<std::string> categories;
  int sensitive = 0;
  for (const Item& it : store_->LoadItems()) {
    categories.insert(it.category);
    EXPECT_FALSE(it.title.empty());
    EXPECT_GT(it.description.size(), it.title.size());
    EXPECT_GT(it.price, 0);
    auto attrs = json::parse(it.attributes_json);
    double margin = attrs.at("margin").get<double>();
    EXPECT_GE(margin, 0.05);
    EXPECT_LE(margin, 0.45);
    EXPECT_TRUE(attrs.at("tags").is_array());
    if (attrs.contains("sensitive")) {
      ++sensitive;
      EXPECT_EQ(attrs["sensitive"], "pregnancy");
      EXPECT_TRUE(it.category == "home" || it.category == "beauty") << it.category;
    }
  }
  std::set<std::string> expected(DemoCategories().begin(), DemoCategories().end());
  EXPECT_EQ(categories, expected);
  EXPECT_EQ(expected.size(), 10u);
  EXPECT_GE(sensitive, 2);
}

TEST_F(DemoWorldTest, CustomersHaveAttributesConsentAndTraits) {
  int under_21 = 0, personalised = 0;
  for (int i = 1; i <= 400; ++i) {
    std::string id = "c" + std::to_string(i);
    auto c = store_->GetCustomer(id);
    ASSERT_TRUE(c.has_value());
    auto attrs = json::parse(c->attributes_json);
    int age = attrs.at("age").get<int>();
    EXPECT_GE(age, 18);
    EXPECT_LE(age, 75);
    under_21 += age < 21;
    EXPECT_TRUE(attrs.at("city").is_string());
    EXPECT_TRUE(attrs.at("segment").is_string());
    EXPECT_TRUE(attrs.at("signup_ms").is_number());
    auto consent = json::parse(c->consent_json);
    personalised += consent.at("personalization").get<bool>();
    EXPECT_TRUE(consent.at("email").is_boolean());
    EXPECT_TRUE(consent.at("sensitive").is_boolean());
    auto truth = store_->Truth(id);
    for (const std::string& trait : DemoTraits()) {
      ASSERT_TRUE(truth.count(trait)) << id << " lacks " << trait;
      EXPECT_GE(truth[trait], 0.0);
      EXPECT_LE(truth[trait], 1.0);
    }
    bool has_brand = false;
    for (const auto& [k, v] : truth) has_brand |= k.rfind("favourite_brand:", 0) == 0;
    EXPECT_EQ(has_brand, truth["brand_passionate"] == 1.0) << id;
  }
  EXPECT_GT(under_21, 0);
  EXPECT_GT(personalised, 400 * 0.88);
  EXPECT_LT(personalised, 400);
}

// `tailor simulate` regenerates the hidden traits without the events: they
// must be exactly the truth rows GenerateDemo wrote, whatever days and end.
TEST_F(DemoWorldTest, HiddenTraitsMatchTheTruthRows) {
  DemoOptions o = Small();
  o.days = 3;
  o.end_ms = 0;
  const std::vector<DemoCustomerTruth> traits = DemoHiddenTraits(o);
  ASSERT_EQ(traits.size(), 400u);
  int fans_of_top = 0;
  for (const DemoCustomerTruth& t : traits) {
    EXPECT_EQ(t.deal_seeker, Trait(t.id, "deal_seeker")) << t.id;
    EXPECT_EQ(t.night_owl, Trait(t.id, "night_owl")) << t.id;
    EXPECT_EQ(t.big_spender, Trait(t.id, "big_spender")) << t.id;
    EXPECT_EQ(t.gift_buyer, Trait(t.id, "gift_buyer")) << t.id;
    EXPECT_EQ(t.churn_risk, Trait(t.id, "churn_risk")) << t.id;
    EXPECT_EQ(t.sessions_per_week, Trait(t.id, "sessions_per_week")) << t.id;
    ASSERT_EQ(t.category_weight.size(), DemoCategories().size());
    // Every category keeps a little weight; the persona's favourites lead.
    for (double w : t.category_weight) EXPECT_GT(w, 0) << t.id;
    fans_of_top += *std::max_element(t.category_weight.begin(), t.category_weight.end()) >= 3;
  }
  EXPECT_GT(fans_of_top, 300);
  EXPECT_TRUE(DemoHiddenTraits(DemoOptions{.customers = 0}).empty());
}

TEST_F(DemoWorldTest, NightOwlsShopAtNightOthersDoNot) {
  std::map<std::string, std::pair<int, int>> by_customer;  // night, total
  for (const Event& e : *events_) {
    auto& [night, total] = by_customer[e.customer_id];
    night += AtNight(e.ts_ms);
    ++total;
  }
  int64_t owl_night = 0, owl_total = 0, other_night = 0, other_total = 0;
  for (const auto& [id, counts] : by_customer) {
    if (Trait(id, "night_owl") >= 0.5) {
      owl_night += counts.first;
      owl_total += counts.second;
    } else {
      other_night += counts.first;
      other_total += counts.second;
    }
  }
  ASSERT_GT(owl_total, 500);
  ASSERT_GT(other_total, 500);
  EXPECT_GT(static_cast<double>(owl_night) / owl_total, 0.6);
  EXPECT_LT(static_cast<double>(other_night) / other_total, 0.15);
}

TEST_F(DemoWorldTest, DealSeekersBuyDiscountedAndBigSpendersBuyPricier) {
  std::map<std::string, double> price;
  for (const Item& it : store_->LoadItems()) price[it.id] = it.price;
  double deal_sum = 0, other_sum = 0;
  int deal_n = 0, other_n = 0;
  std::map<std::string, std::vector<double>> ratio_by_group;  // category-relative price
  std::map<std::string, std::vector<double>> category_prices;
  for (const Item& it : store_->LoadItems()) category_prices[it.category].push_back(it.price);
  for (const Event& e : *events_) {
    if (e.type != "purchase") continue;
    double d = json::parse(e.properties_json).at("discount").get<double>();
    if (Trait(e.customer_id, "deal_seeker") >= 0.5) {
      deal_sum += d;
      ++deal_n;
    } else {
      other_sum += d;
      ++other_n;
    }
  }
  ASSERT_GT(deal_n, 30);
  ASSERT_GT(other_n, 30);
  EXPECT_GT(deal_sum / deal_n, 1.5 * (other_sum / other_n));

  double big = 0, small = 0;
  int big_n = 0, small_n = 0;
  for (const Event& e : *events_) {
    if (e.type != "view") continue;
    if (Trait(e.customer_id, "big_spender") >= 0.5) {
      big += price[e.item_id];
      ++big_n;
    } else {
      small += price[e.item_id];
      ++small_n;
    }
  }
  ASSERT_GT(big_n, 100);
  EXPECT_GT(big / big_n, small / small_n);
}

TEST_F(DemoWorldTest, ChurnersGoQuietAndBrandFansStayLoyal) {
  std::map<std::string, std::string> brand;
  for (const Item& it : store_->LoadItems()) brand[it.id] = it.brand;
  int64_t recent_cut = kEnd - 60 * kDayMs;
  int churners = 0, churner_recent = 0;
  std::set<std::string> active_recently;
  for (const Event& e : *events_)
    if (e.ts_ms >= recent_cut) active_recently.insert(e.customer_id);
  int fan_on_brand = 0, fan_total = 0;
  for (int i = 1; i <= 400; ++i) {
    std::string id = "c" + std::to_string(i);
    auto truth = store_->Truth(id);
    if (truth["churn_risk"] >= 0.5) {
      ++churners;
      churner_recent += active_recently.count(id);
    }
  }
  EXPECT_GT(churners, 10);
  EXPECT_EQ(churner_recent, 0);
  EXPECT_GT(active_recently.size(), 200u);

  for (const Event& e : *events_) {
    if (e.type != "view" || Trait(e.customer_id, "brand_passionate") != 1.0) continue;
    auto truth = store_->Truth(e.customer_id);
    ++fan_total;
    fan_on_brand += truth.count("favourite_brand:" + brand[e.item_id]) > 0;
  }
  ASSERT_GT(fan_total, 200);
  EXPECT_GT(static_cast<double>(fan_on_brand) / fan_total, 0.5);
}

TEST_F(DemoWorldTest, GiftBuyersBuyToysAndBooksBeforeChristmas) {
  std::map<std::string, std::string> category;
  for (const Item& it : store_->LoadItems()) category[it.id] = it.category;
  const int64_t from = *parse_iso8601_ms("2025-12-01T00:00:00Z");
  const int64_t to = *parse_iso8601_ms("2025-12-24T00:00:00Z");
  int gift = 0, gift_toys = 0, other = 0, other_toys = 0;
  for (const Event& e : *events_) {
    if (e.type != "view" || e.ts_ms < from || e.ts_ms >= to) continue;
    bool toys = category[e.item_id] == "toys" || category[e.item_id] == "books";
    if (Trait(e.customer_id, "gift_buyer") >= 0.5) {
      ++gift;
      gift_toys += toys;
    } else {
      ++other;
      other_toys += toys;
    }
  }
  ASSERT_GT(gift, 50);
  EXPECT_GT(static_cast<double>(gift_toys) / gift, 1.5 * other_toys / std::max(other, 1));
}

TEST(DemoWorld, SameSeedSameWorldOtherSeedOtherWorld) {
  TempDir dir;
  auto a = OpenStore(dir.file("a.db"));
  auto b = OpenStore(dir.file("b.db"));
  auto c = OpenStore(dir.file("c.db"));
  DemoOptions o = Small(11);
  o.customers = 120;
  o.items = 60;
  o.days = 90;
  ASSERT_TRUE(GenerateDemo(*a, o, nullptr).ok());
  ASSERT_TRUE(GenerateDemo(*b, o, nullptr).ok());
  o.seed = 12;
  ASSERT_TRUE(GenerateDemo(*c, o, nullptr).ok());

  auto key = [](const Event& e) {
    return e.customer_id + "|" + e.type + "|" + e.item_id + "|" + e.channel + "|" +
           std::to_string(e.ts_ms) + "|" + std::to_string(e.value) + "|" + e.properties_json;
  };
  auto ea = AllEvents(*a), eb = AllEvents(*b), ec = AllEvents(*c);
  ASSERT_EQ(ea.size(), eb.size());
  ASSERT_FALSE(ea.empty());
  for (size_t i = 0; i < ea.size(); ++i) ASSERT_EQ(key(ea[i]), key(eb[i])) << i;
  auto ia = a->LoadItems(), ib = b->LoadItems(), ic = c->LoadItems();
  ASSERT_EQ(ia.size(), ib.size());
  for (size_t i = 0; i < ia.size(); ++i) {
    EXPECT_EQ(ia[i].title, ib[i].title);
    EXPECT_EQ(ia[i].description, ib[i].description);
    EXPECT_EQ(ia[i].price, ib[i].price);
    EXPECT_EQ(ia[i].attributes_json, ib[i].attributes_json);
  }
  EXPECT_EQ(a->GetCustomer("c7")->attributes_json, b->GetCustomer("c7")->attributes_json);
  EXPECT_EQ(a->Truth("c7"), b->Truth("c7"));

  bool differs = ea.size() != ec.size();
  for (size_t i = 0; !differs && i < ea.size(); ++i) differs = key(ea[i]) != key(ec[i]);
  EXPECT_TRUE(differs);
  int same_titles = 0;
  for (size_t i = 0; i < ia.size() && i < ic.size(); ++i) same_titles += ia[i].title == ic[i].title;
  EXPECT_LT(same_titles, static_cast<int>(ia.size()) / 2);
}

TEST(DemoWorld, RejectsTooFewItems) {
  TempDir dir;
  auto store = OpenStore(dir.file("x.db"));
  DemoOptions o = Small();
  o.items = 5;
  Status s = GenerateDemo(*store, o, nullptr);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("items"), std::string::npos);
  EXPECT_EQ(store->Count("customers"), 0);
}

TEST(DemoWorld, ReportsProgress) {
  TempDir dir;
  auto store = OpenStore(dir.file("p.db"));
  DemoOptions o = Small();
  o.customers = 50;
  o.items = 20;
  std::set<std::string> stages;
  int64_t last_done = 0, last_total = 0;
  Status s =
      GenerateDemo(*store, o, nullptr, [&](std::string_view stage, int64_t done, int64_t total) {
        stages.insert(std::string(stage));
        if (stage == "writing") {
          last_done = done;
          last_total = total;
        }
      });
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_TRUE(stages.count("events"));
  EXPECT_TRUE(stages.count("writing"));
  EXPECT_EQ(last_done, last_total);
  EXPECT_GT(last_total, 70);
}

}  // namespace
}  // namespace tailor::ingest

namespace tailor::ingest {
namespace {

TEST(DemoChat, LinesAreDeterministicDistinctAndLabelledWithConfiguredIntents) {
  const std::vector<ChatLine> a = DemoChatLines(42), b = DemoChatLines(42);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].text, b[i].text);
    EXPECT_EQ(a[i].label, b[i].label);
  }
  EXPECT_NE(DemoChatLines(7)[0].text + DemoChatLines(7)[1].text, a[0].text + a[1].text);
  // Every label is an intent of the shipped config/intents.yaml, or oos.
  const std::string yaml =
      testing::ReadFile(std::string(TAILOR_SOURCE_DIR) + "/config/intents.yaml");
  std::map<std::string, int> per_label;
  std::set<std::string> texts;
  for (const ChatLine& l : a) {
    ++per_label[l.label];
    EXPECT_TRUE(texts.insert(l.text).second) << "repeated: " << l.text;
    EXPECT_FALSE(l.text.empty());
  }
  for (const std::string& intent : DemoChatIntents()) {
    EXPECT_NE(yaml.find("\n  " + intent + ":\n"), std::string::npos) << intent;
    EXPECT_EQ(per_label[intent], 60) << intent;
  }
  EXPECT_EQ(per_label["oos"], 360);
  EXPECT_EQ(per_label.size(), DemoChatIntents().size() + 1);
}

TEST(DemoChat, CsvQuotesWhatNeedsIt) {
  testing::TempDir dir;
  std::string err;
  ASSERT_TRUE(WriteChatCsv(dir.file("c.csv"),
                           {{"plain", "a"}, {"with, comma", "b"}, {"say \"hi\"", "c"}}, &err))
      << err;
  EXPECT_EQ(testing::ReadFile(dir.file("c.csv")),
            "text,label\nplain,a\n\"with, comma\",b\n\"say \"\"hi\"\"\",c\n");
  EXPECT_FALSE(WriteChatCsv(dir.file("no/such/dir/c.csv"), {}, &err));
  EXPECT_NE(err.find("cannot write"), std::string::npos);
}

}  // namespace
}  // namespace tailor::ingest
