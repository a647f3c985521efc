// Suppression policies (N dismissals / impressions without a click within W
// days suppress for D days from the crossing event) and a decide request's
// own filters, without tailord.
#include "decision/suppression.h"

#include <gtest/gtest.h>

#include "common/time.h"

namespace tailor {
namespace {

constexpr int64_t kHour = 3'600'000;
constexpr int64_t kDay = 24 * kHour;
constexpr int64_t kNow = 1'790'000'000'000;

SuppressionPolicy Rejects(int64_t n = 3, int64_t within = 7, int64_t suppress = 5) {
  SuppressionPolicy p;
  p.name = "rejects";
  p.trigger = SuppressionPolicy::Trigger::kDismissals;
  p.threshold = n;
  p.within_days = within;
  p.suppress_days = suppress;
  return p;
}

SuppressionPolicy Fatigue(int64_t n = 4, int64_t within = 7, int64_t suppress = 3) {
  SuppressionPolicy p = Rejects(n, within, suppress);
  p.name = "fatigue";
  p.trigger = SuppressionPolicy::Trigger::kImpressionsWithoutClick;
  return p;
}

struct Ev {
  const char* type;
  const char* offer;
  const char* item;
  int64_t ts;
};

Profile ProfileWith(std::initializer_list<Ev> events, int64_t horizon = kNow - 400 * kDay) {
  EventHistory::Builder b;
  for (const Ev& e : events) b.Add(e.type, e.offer, e.item, e.ts);
  Profile p;
  p.known = true;
  p.history = b.Build(horizon);
  return p;
}

CandidateRef OfferRef(std::string_view id, std::string_view category = "toys") {
  return CandidateRef{id, "", category};
}

TEST(Suppression, ThreeDismissalsWithinTheWindowSuppressForDaysFromTheThird) {
  Suppression s({Rejects()});
  const int64_t third = kNow - 1 * kDay;
  Profile p = ProfileWith({{"dismiss", "o_a", "", kNow - 4 * kDay},
                           {"dismiss", "o_a", "", kNow - 2 * kDay},
                           {"dismiss", "o_a", "", third}});
  auto v = s.Veto(p, OfferRef("o_a"), "home", kNow);
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->policy, 0u);
  EXPECT_EQ(v->until_ms, third + 5 * kDay);
  EXPECT_EQ(v->note, "suppressed by policy 'rejects': 3 dismissals within 7 days, until " +
                         format_iso8601_ms(third + 5 * kDay));
  EXPECT_EQ(s.counter(0), "suppression.rejects");
  // Other offers are not touched.
  EXPECT_FALSE(s.Veto(p, OfferRef("o_b"), "home", kNow).has_value());
  // Suppressed up to the last millisecond of the D days, back after it.
  EXPECT_TRUE(s.Veto(p, OfferRef("o_a"), "home", third + 5 * kDay - 1).has_value());
  EXPECT_FALSE(s.Veto(p, OfferRef("o_a"), "home", third + 5 * kDay).has_value());
}

TEST(Suppression, BelowTheThresholdOrSpreadWiderThanTheWindowDoesNotSuppress) {
  Suppression s({Rejects()});
  Profile two = ProfileWith({{"dismiss", "o_a", "", kNow - 2 * kDay},  //
                             {"dismiss", "o_a", "", kNow - 1 * kDay}});
  EXPECT_FALSE(s.Veto(two, OfferRef("o_a"), "home", kNow).has_value());
  // Three dismissals, but the first and third are 8 days apart (> 7).
  Profile spread = ProfileWith({{"dismiss", "o_a", "", kNow - 9 * kDay},
                                {"dismiss", "o_a", "", kNow - 3 * kDay},
                                {"dismiss", "o_a", "", kNow - 1 * kDay}});
  EXPECT_FALSE(s.Veto(spread, OfferRef("o_a"), "home", kNow).has_value());
  // Clicks and impressions are not dismissals.
  Profile other = ProfileWith({{"click", "o_a", "", kNow - 3 * kDay},
                               {"impression", "o_a", "", kNow - 2 * kDay},
                               {"impression", "o_a", "", kNow - 1 * kDay}});
  EXPECT_FALSE(s.Veto(other, OfferRef("o_a"), "home", kNow).has_value());
}

// A replay at an earlier "ts" sees the past as it was: dismissals after now
// do not count yet.
TEST(Suppression, EventsAfterNowDoNotCount) {
  Suppression s({Rejects()});
  Profile p = ProfileWith({{"dismiss", "o_a", "", kNow - 1 * kDay},
                           {"dismiss", "o_a", "", kNow - 1 * kHour},
                           {"dismiss", "o_a", "", kNow + 1 * kHour}});
  EXPECT_FALSE(s.Veto(p, OfferRef("o_a"), "home", kNow).has_value());
  EXPECT_TRUE(s.Veto(p, OfferRef("o_a"), "home", kNow + 2 * kHour).has_value());
}

// A later dismissal that again leaves N within W days starts the D days
// afresh: the latest crossing sets the end.
TEST(Suppression, ALaterCrossingExtendsTheSuppression) {
  Suppression s({Rejects(3, 7, 2)});
  Profile p = ProfileWith({{"dismiss", "o_a", "", kNow - 6 * kDay},
                           {"dismiss", "o_a", "", kNow - 6 * kDay + kHour},
                           {"dismiss", "o_a", "", kNow - 5 * kDay},    // crossed: until -3d
                           {"dismiss", "o_a", "", kNow - 1 * kDay}});  // 3 within 7d again
  auto v = s.Veto(p, OfferRef("o_a"), "home", kNow);
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->until_ms, kNow + 1 * kDay);
  // Between the two suppressions it was shown.
  EXPECT_FALSE(s.Veto(p, OfferRef("o_a"), "home", kNow - 2 * kDay).has_value());
}

TEST(Suppression, ImpressionsWithoutAClickAndAClickResetsThem) {
  Suppression s({Fatigue(4, 7, 3)});
  Profile p = ProfileWith({{"impression", "o_a", "", kNow - 5 * kDay},
                           {"impression", "o_a", "", kNow - 4 * kDay},
                           {"impression", "o_a", "", kNow - 3 * kDay},
                           {"impression", "o_a", "", kNow - 2 * kDay}});
  auto v = s.Veto(p, OfferRef("o_a"), "home", kNow);
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->until_ms, kNow + 1 * kDay);
  EXPECT_NE(v->note.find("4 impressions without a click within 7 days"), std::string::npos)
      << v->note;
  // A click (click or offer_click) between them resets the count.
  for (const char* click : {"click", "offer_click"}) {
    Profile clicked = ProfileWith({{"impression", "o_a", "", kNow - 5 * kDay},
                                   {"impression", "o_a", "", kNow - 4 * kDay},
                                   {click, "o_a", "", kNow - 4 * kDay + kHour},
                                   {"impression", "o_a", "", kNow - 3 * kDay},
                                   {"impression", "o_a", "", kNow - 2 * kDay}});
    EXPECT_FALSE(s.Veto(clicked, OfferRef("o_a"), "home", kNow).has_value()) << click;
  }
}

TEST(Suppression, ItemsAreCountedByTheirItemId) {
  Suppression s({Rejects(2, 7, 5)});
  Profile p = ProfileWith({{"dismiss", "", "i7", kNow - 2 * kDay},  //
                           {"dismiss", "", "i7", kNow - 1 * kDay}});
  EXPECT_TRUE(s.Veto(p, CandidateRef{"", "i7", "toys"}, "recs", kNow).has_value());
  EXPECT_FALSE(s.Veto(p, CandidateRef{"", "i8", "toys"}, "recs", kNow).has_value());
}

TEST(Suppression, PoliciesCoverOnlyTheirOffersItemsCategoriesAndPlacements) {
  Profile p = ProfileWith(
      {{"dismiss", "o_a", "", kNow - 1 * kDay}, {"dismiss", "", "i7", kNow - 1 * kDay}});
  SuppressionPolicy offers = Rejects(1, 7, 5);
  offers.offers = {"o_b", "o_a"};
  SuppressionPolicy items = Rejects(1, 7, 5);
  items.items = {"i7"};
  SuppressionPolicy toys = Rejects(1, 7, 5);
  toys.categories = {"toys"};
  SuppressionPolicy home = Rejects(1, 7, 5);
  home.placements = {"home"};

  const CandidateRef oa = OfferRef("o_a", "toys"), i7{"", "i7", "toys"};
  EXPECT_TRUE(Suppression({offers}).Veto(p, oa, "home", kNow).has_value());
  EXPECT_FALSE(Suppression({offers}).Veto(p, i7, "recs", kNow).has_value());  // not an offer
  EXPECT_TRUE(Suppression({items}).Veto(p, i7, "recs", kNow).has_value());
  EXPECT_FALSE(Suppression({items}).Veto(p, oa, "home", kNow).has_value());  // promotes no item
  EXPECT_TRUE(Suppression({toys}).Veto(p, oa, "home", kNow).has_value());
  EXPECT_FALSE(Suppression({toys}).Veto(p, OfferRef("o_a", "books"), "home", kNow).has_value());
  EXPECT_TRUE(Suppression({home}).Veto(p, oa, "home", kNow).has_value());
  EXPECT_FALSE(Suppression({home}).Veto(p, oa, "checkout", kNow).has_value());
  // The first policy that suppresses names itself.
  home.name = "home_rejects";
  auto v = Suppression({toys, home}).Veto(p, OfferRef("o_a", "books"), "home", kNow);
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->policy, 1u);
  EXPECT_NE(v->note.find("'home_rejects'"), std::string::npos);
}

TEST(Suppression, BuildRejectsUnknownOffersWithTheirPosition) {
  Catalog cat;
  Offer o;
  o.id = "o_a";
  cat.offers.push_back(o);
  cat.offer_index["o_a"] = 0;
  SuppressionPolicy p = Rejects();
  p.offers = {"o_a", "o_zz"};
  p.offers_where = "t.yaml:4:13";
  std::vector<std::string> errors;
  EXPECT_EQ(Suppression::Build({p}, cat, &errors), nullptr);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0], "t.yaml:4:13: suppression[0].offers: unknown offer 'o_zz' (known: o_a)");
  p.offers = {"o_a"};
  errors.clear();
  EXPECT_NE(Suppression::Build({p}, cat, &errors), nullptr);
  EXPECT_TRUE(errors.empty());
}

// The times suppression reads: every role of the id and the tail applied
// after the load, ascending, bounded on both sides.
TEST(Suppression, HistoryTimesMergeRolesAndTheTail) {
  EventHistory::Builder b;
  b.Add("dismiss", "o_a", "", kNow - 3 * kDay);
  b.Add("dismiss", "o_x", "o_a", kNow - 2 * kDay);  // o_a as an item
  b.Add("dismiss", "o_a", "", kNow - 5 * kDay);
  b.Add("dismiss", "o_b", "", kNow - 1 * kDay);
  EventHistory h = b.Build(kNow - 400 * kDay);
  h.Add("dismiss", "o_a", "", kNow - 4 * kDay);
  h.Add("dismiss", "o_a", "", kNow + 1 * kDay);
  std::vector<int64_t> t{42};
  h.Times("dismiss", "o_a", kNow - 4 * kDay, kNow, &t);
  EXPECT_EQ(t, (std::vector<int64_t>{kNow - 4 * kDay, kNow - 3 * kDay, kNow - 2 * kDay}));
  h.Times("dismiss", "o_c", kNow - 40 * kDay, kNow, &t);
  EXPECT_TRUE(t.empty());
}

TEST(RequestFilter, NoFiltersPassEverything) {
  DecideRequest req;
  RequestFilter f(req);
  EXPECT_FALSE(f.active());
  EXPECT_EQ(f.Veto(OfferRef("o_a")), "");
}

TEST(RequestFilter, ExcludeNamesOffersOrTheirItemsOrItems) {
  DecideRequest req;
  req.exclude = {"o_b", "i7"};
  RequestFilter f(req);
  EXPECT_TRUE(f.active());
  EXPECT_EQ(f.Veto(OfferRef("o_b")), "excluded by request: exclude names offer 'o_b'");
  EXPECT_EQ(f.Veto(CandidateRef{"o_c", "i7", "toys"}),
            "excluded by request: exclude names item 'i7'");
  EXPECT_EQ(f.Veto(CandidateRef{"", "i7", "toys"}), "excluded by request: exclude names item 'i7'");
  EXPECT_EQ(f.Veto(OfferRef("o_a")), "");
  EXPECT_EQ(f.Veto(CandidateRef{"", "i8", "toys"}), "");
}

TEST(RequestFilter, IncludeAndExcludeCategories) {
  DecideRequest req;
  req.include_categories = {"toys", "books"};
  req.exclude_categories = {"books"};
  RequestFilter f(req);
  EXPECT_EQ(f.Veto(OfferRef("o_a", "toys")), "");
  EXPECT_EQ(f.Veto(OfferRef("o_a", "books")),
            "excluded by request: category 'books' is in exclude_categories");
  EXPECT_EQ(f.Veto(CandidateRef{"", "i1", "garden"}),
            "excluded by request: category 'garden' is not in include_categories");
  EXPECT_EQ(f.Veto(OfferRef("o_a", "")),
            "excluded by request: no category, and include_categories is set");
  DecideRequest only_exclude;
  only_exclude.exclude_categories = {"garden"};
  RequestFilter g(only_exclude);
  EXPECT_EQ(g.Veto(OfferRef("o_a", "")), "");  // no category: nothing to exclude it by
  EXPECT_NE(g.Veto(CandidateRef{"", "i1", "garden"}), "");
}

}  // namespace
}  // namespace tailor
