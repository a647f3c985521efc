// The simulator's true response model (engine/src/sim/response_model.h,
// docs/simulate.md): the shape the documentation promises.
#include "sim/response_model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "ingest/demo_world.h"

namespace tailor::sim {
namespace {

TrueCustomer Fan(double toys_weight) {
  TrueCustomer c;
  c.id = "c1";
  c.categories = {"phones", "toys", "books"};
  c.category_weight = {2.0, toys_weight, 0.2};
  c.deal_seeker = 0.2;
  c.night_owl = 0.1;
  c.big_spender = 0.2;
  c.sessions_per_week = 0.7;
  return c;
}

TrueOffer MakeOffer(const std::string& id, const std::string& category, double value,
                    double discount = 0) {
  TrueOffer o;
  o.id = id;
  o.category = category;
  o.value = value;
  o.discount = discount;
  return o;
}

TEST(SimResponse, ClickAndConversionRiseWithCategoryWeight) {
  const TrueOffer toys = MakeOffer("o_toys", "toys", 20);
  Exposure x;
  double last_click = 0, last_convert = 0, last_dismiss = 1;
  for (double w : {0.2, 0.5, 1.0, 1.5, 2.0}) {
    const Response r = TrueResponse(Fan(w), toys, x);
    EXPECT_GT(r.p_click, last_click) << "weight " << w;
    EXPECT_GT(r.p_convert, last_convert) << "weight " << w;
    EXPECT_LT(r.p_dismiss, last_dismiss) << "weight " << w;
    EXPECT_GT(r.p_click, 0);
    EXPECT_LT(r.p_click, 1);
    EXPECT_NEAR(r.expected_value, r.p_click * r.p_convert * 20, 1e-12);
    last_click = r.p_click;
    last_convert = r.p_convert;
    last_dismiss = r.p_dismiss;
  }
  // The affinity is the weight over the customer's largest: it stops at 1.
  EXPECT_EQ(TrueResponse(Fan(4.0), toys, x).p_click, TrueResponse(Fan(2.0), toys, x).p_click);
  // Category weight is the strongest factor: a fan clicks several times as often.
  EXPECT_GT(TrueResponse(Fan(2.0), toys, x).p_click, 5 * TrueResponse(Fan(0.1), toys, x).p_click);
}

TEST(SimResponse, FatigueAndPositionLowerTheClick) {
  const TrueCustomer c = Fan(2.0);
  const TrueOffer toys = MakeOffer("o_toys", "toys", 20);
  Exposure fresh;
  Exposure tired = fresh;
  tired.fatigue = 1;
  Exposure very_tired = fresh;
  very_tired.fatigue = 3;
  EXPECT_LT(TrueResponse(c, toys, tired).p_click, TrueResponse(c, toys, fresh).p_click);
  EXPECT_LT(TrueResponse(c, toys, very_tired).p_click, TrueResponse(c, toys, tired).p_click);
  EXPECT_NEAR(TrueResponse(c, toys, tired).p_click / TrueResponse(c, toys, fresh).p_click,
              ModelConstants::kFatigueFactor, 1e-12);
  // Fatigue does not change what a click converts to.
  EXPECT_EQ(TrueResponse(c, toys, tired).p_convert, TrueResponse(c, toys, fresh).p_convert);
  Exposure second = fresh;
  second.position = 2;
  EXPECT_LT(TrueResponse(c, toys, second).p_click, TrueResponse(c, toys, fresh).p_click);
  // Fatigue halves in a day and is never negative.
  EXPECT_NEAR(FatigueDecay(2.0, 24 * 3'600'000LL), 1.0, 1e-12);
  EXPECT_EQ(FatigueDecay(2.0, 0), 2.0);
  EXPECT_EQ(FatigueDecay(-1.0, 1000), 0.0);
}

TEST(SimResponse, DiscountNightAndValueFollowTheTraits) {
  TrueCustomer seeker = Fan(2.0), payer = Fan(2.0);
  seeker.deal_seeker = 0.9;
  payer.deal_seeker = 0.0;
  const TrueOffer deal = MakeOffer("o_deal", "toys", 20, 0.35);
  const TrueOffer plain = MakeOffer("o_plain", "toys", 20, 0.0);
  Exposure x;
  // A discount lifts deal seekers much more than others.
  const double lift_seeker =
      TrueResponse(seeker, deal, x).p_click / TrueResponse(seeker, plain, x).p_click;
  const double lift_payer =
      TrueResponse(payer, deal, x).p_click / TrueResponse(payer, plain, x).p_click;
  EXPECT_GT(lift_seeker, 2.0);
  EXPECT_NEAR(lift_payer, 1.0, 1e-12);

  // At night, night owls click more and others less.
  TrueCustomer owl = Fan(2.0), lark = Fan(2.0);
  owl.night_owl = 0.9;
  lark.night_owl = 0.0;
  Exposure noon, night;
  night.hour = 23;
  EXPECT_GT(TrueResponse(owl, plain, night).p_click, TrueResponse(owl, plain, noon).p_click);
  EXPECT_LT(TrueResponse(lark, plain, night).p_click, TrueResponse(lark, plain, noon).p_click);
  EXPECT_TRUE(IsNight(23));
  EXPECT_TRUE(IsNight(2));
  EXPECT_FALSE(IsNight(3));
  EXPECT_FALSE(IsNight(21));

  // Big spenders convert on dear offers; others are put off by the price.
  TrueCustomer big = Fan(2.0), thrifty = Fan(2.0);
  big.big_spender = 1.0;
  thrifty.big_spender = 0.0;
  const TrueOffer dear = MakeOffer("o_dear", "toys", 150);
  EXPECT_GT(TrueResponse(big, dear, x).p_convert, 2 * TrueResponse(thrifty, dear, x).p_convert);
}

TEST(SimResponse, OraclePicksTheHighestExpectedValue) {
  const TrueCustomer c = Fan(4.0);  // toys first, phones half as much, books barely
  const std::vector<TrueOffer> offers = {
      MakeOffer("o_books", "books", 8), MakeOffer("o_phone", "phones", 120),
      MakeOffer("o_toys", "toys", 20), MakeOffer("o_content", "", 15)};
  std::vector<double> ev;
  for (const TrueOffer& o : offers) ev.push_back(TrueResponse(c, o, Exposure{}).expected_value);
  const std::vector<size_t> top = OracleTopK(c, offers, 12, {}, offers.size());
  ASSERT_EQ(top.size(), offers.size());
  for (size_t i = 1; i < top.size(); ++i) EXPECT_GE(ev[top[i - 1]], ev[top[i]]);
  const size_t best = static_cast<size_t>(std::max_element(ev.begin(), ev.end()) - ev.begin());
  EXPECT_EQ(OracleTopK(c, offers, 12, {}, 1), std::vector<size_t>{best});
  EXPECT_EQ(OracleTopK(c, offers, 12, {}, 0).size(), 0u);

  // Enough fatigue on the best offer hands the first place to another.
  std::vector<double> fatigue(offers.size(), 0.0);
  fatigue[best] = 20;
  const std::vector<size_t> tired = OracleTopK(c, offers, 12, fatigue, 1);
  ASSERT_EQ(tired.size(), 1u);
  EXPECT_NE(tired[0], best);
}

TEST(SimResponse, VisitsAndHoursFollowTheTraits) {
  TrueCustomer owl = Fan(1.0), lark = Fan(1.0);
  owl.night_owl = 0.95;
  lark.night_owl = 0.0;
  int owl_nights = 0, lark_nights = 0;
  for (uint64_t i = 0; i < 2000; ++i) {
    Rng a(1, 7, i), b(1, 8, i);
    owl_nights += IsNight(VisitHour(owl, a));
    lark_nights += IsNight(VisitHour(lark, b));
  }
  EXPECT_GT(owl_nights, 1500);
  EXPECT_LT(lark_nights, 100);
  EXPECT_NEAR(VisitsPerDay(owl, 10), 10 * 0.7 / 7, 1e-12);
  // Poisson visits average their rate.
  double sum = 0;
  for (uint64_t i = 0; i < 20000; ++i) {
    Rng r(3, 9, i);
    sum += r.Poisson(0.8);
  }
  EXPECT_NEAR(sum / 20000, 0.8, 0.03);
  // The arm hash is stable and seeded.
  EXPECT_EQ(StableHash("c42", 1), StableHash("c42", 1));
  EXPECT_NE(StableHash("c42", 1), StableHash("c42", 2));
  EXPECT_NE(StableHash("c42", 1), StableHash("c43", 1));
}

// The simulator reads the demo world's hidden traits from the generator: they
// must be the ones GenerateDemo writes as truth rows (checked in
// demo_world_test against a store); here, that they are deterministic.
TEST(SimResponse, DemoHiddenTraitsAreDeterministicPerSeed) {
  ingest::DemoOptions o;
  o.customers = 50;
  o.items = 60;
  o.seed = 5;
  const auto a = ingest::DemoHiddenTraits(o);
  const auto b = ingest::DemoHiddenTraits(o);
  ASSERT_EQ(a.size(), 50u);
  ASSERT_EQ(b.size(), 50u);
  std::set<double> deal;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].id, "c" + std::to_string(i + 1));
    EXPECT_EQ(a[i].deal_seeker, b[i].deal_seeker);
    EXPECT_EQ(a[i].category_weight, b[i].category_weight);
    EXPECT_EQ(a[i].category_weight.size(), ingest::DemoCategories().size());
    deal.insert(a[i].deal_seeker);
  }
  EXPECT_GT(deal.size(), 40u);  // drawn per customer
  o.seed = 6;
  EXPECT_NE(ingest::DemoHiddenTraits(o)[0].deal_seeker, a[0].deal_seeker);
}

}  // namespace
}  // namespace tailor::sim
