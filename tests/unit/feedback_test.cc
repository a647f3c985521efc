// The feedback contract's join (feedback/attribution.h) and its tables in the
// store: by decision id, by window, bounds, explicit impressions, restart.
#include "feedback/attribution.h"

#include <gtest/gtest.h>

#include <mutex>

#include "feedback/loop.h"
#include "store/store.h"
#include "support/temp_dir.h"

namespace tailor {
namespace {

using testing::TempDir;

constexpr int64_t kHour = 3600 * 1000;
constexpr int64_t kT0 = 1'700'000'000'000;

Impression Imp(const std::string& decision, int position, const std::string& offer,
               const std::string& item, int64_t ts, const std::string& customer = "c1",
               const std::string& placement = "home") {
  Impression m;
  m.decision_id = decision;
  m.position = position;
  m.customer_id = customer;
  m.placement = placement;
  m.channel = "web";
  m.offer_id = offer;
  m.item_id = item;
  m.category = "toys";
  m.ts_ms = ts;
  return m;
}

Event Ev(const std::string& type, const std::string& offer, const std::string& item, int64_t ts,
         const std::string& decision = "", const std::string& customer = "c1") {
  Event e;
  e.customer_id = customer;
  e.type = type;
  e.offer_id = offer;
  e.item_id = item;
  e.decision_id = decision;
  e.ts_ms = ts;
  return e;
}

std::unique_ptr<Store> OpenStore(const std::string& path) {
  std::string err;
  Store::Options o;
  o.path = path;
  auto s = Store::Open(o, &err);
  EXPECT_NE(s, nullptr) << err;
  return s;
}

TEST(Attribution, KindsOfResponses) {
  using K = Outcome::Kind;
  EXPECT_EQ(Attribution::KindOf("click"), K::kClick);
  EXPECT_EQ(Attribution::KindOf("offer_click"), K::kClick);
  EXPECT_EQ(Attribution::KindOf("convert"), K::kConversion);
  EXPECT_EQ(Attribution::KindOf("purchase"), K::kConversion);
  EXPECT_EQ(Attribution::KindOf("dismiss"), K::kDismiss);
  EXPECT_FALSE(Attribution::KindOf("view").has_value());
  EXPECT_FALSE(Attribution::KindOf("impression").has_value());
}

TEST(Attribution, JoinsByDecisionId) {
  Attribution a(nullptr, {});
  a.Shown(
      {Imp("d1", 1, "o1", "", kT0), Imp("d1", 2, "o2", "i2", kT0), Imp("d1", 3, "o3", "", kT0)});
  // A decision id joins whatever its age: three days later, past any window.
  auto o = a.Join(Ev("offer_click", "o2", "", kT0 + 72 * kHour, "d1"));
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->kind, Outcome::Kind::kClick);
  EXPECT_TRUE(o->by_decision_id);
  EXPECT_EQ(o->impression.decision_id, "d1");
  EXPECT_EQ(o->impression.position, 2);
  EXPECT_EQ(o->impression.offer_id, "o2");
  EXPECT_EQ(o->event_type, "offer_click");
  // An unknown decision and another customer's decision join nothing.
  EXPECT_FALSE(a.Join(Ev("click", "o2", "", kT0, "d9")).has_value());
  EXPECT_FALSE(a.Join(Ev("click", "o2", "", kT0, "d1", "c2")).has_value());
  // A decision id naming an offer the decision did not show joins nothing.
  EXPECT_FALSE(a.Join(Ev("click", "o7", "", kT0, "d1")).has_value());
  EXPECT_EQ(a.counts().joined_by_decision, 1u);
  EXPECT_EQ(a.counts().unjoined, 3u);
}

TEST(Attribution, DecisionIdAloneJoinsItsOnlyCandidate) {
  Attribution a(nullptr, {});
  a.Shown({Imp("d1", 1, "o1", "", kT0)});
  a.Shown({Imp("d2", 1, "o1", "", kT0), Imp("d2", 2, "o2", "", kT0)});
  auto o = a.Join(Ev("dismiss", "", "", kT0 + 1000, "d1"));
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->kind, Outcome::Kind::kDismiss);
  EXPECT_EQ(o->impression.offer_id, "o1");
  // Ambiguous: d2 showed two.
  EXPECT_FALSE(a.Join(Ev("dismiss", "", "", kT0 + 1000, "d2")).has_value());
}

TEST(Attribution, JoinsByWindowWithValue) {
  Attribution a(nullptr, {});
  a.Shown({Imp("d1", 1, "o1", "", kT0)});
  Event e = Ev("convert", "o1", "", kT0 + kHour);
  e.value = 30;
  e.seq = 77;
  auto o = a.Join(e);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->kind, Outcome::Kind::kConversion);
  EXPECT_FALSE(o->by_decision_id);
  EXPECT_EQ(o->value, 30);
  EXPECT_EQ(o->event_seq, 77);
  EXPECT_EQ(o->impression.decision_id, "d1");
  EXPECT_EQ(a.counts().joined_by_window, 1u);
}

TEST(Attribution, OutsideTheWindowIsNotJoined) {
  Attribution a(nullptr, {});
  a.SetWindows({{"short", 2 * kHour}});
  a.Shown({Imp("d1", 1, "o1", "", kT0, "c1", "short")});
  a.Shown({Imp("d2", 1, "o1", "", kT0, "c2", "home")});  // default 24 h
  EXPECT_FALSE(a.Join(Ev("click", "o1", "", kT0 + 3 * kHour)).has_value());
  EXPECT_TRUE(a.Join(Ev("click", "o1", "", kT0 + 3 * kHour, "", "c2")).has_value());
  EXPECT_FALSE(a.Join(Ev("click", "o1", "", kT0 + 25 * kHour, "", "c2")).has_value());
  // Within the window it joins; an event stamped well before the decision
  // does not answer it.
  EXPECT_TRUE(a.Join(Ev("click", "o1", "", kT0 + kHour)).has_value());
  EXPECT_FALSE(a.Join(Ev("click", "o1", "", kT0 - kHour)).has_value());
}

TEST(Attribution, LatestDecisionWins) {
  Attribution a(nullptr, {});
  a.Shown({Imp("d1", 1, "o1", "", kT0)});
  a.Shown({Imp("d2", 1, "o5", "", kT0 + 10 * 60000), Imp("d2", 2, "o1", "", kT0 + 10 * 60000)});
  a.Shown({Imp("d3", 1, "o6", "", kT0 + 15 * 60000)});  // later, but not o1
  auto o = a.Join(Ev("click", "o1", "", kT0 + 20 * 60000));
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->impression.decision_id, "d2");
  EXPECT_EQ(o->impression.position, 2);
}

TEST(Attribution, PurchaseOfAPromotedItemIsTheOffersConversion) {
  Attribution a(nullptr, {});
  a.Shown({Imp("d1", 1, "o_toys", "i7", kT0), Imp("d1", 2, "o_books", "i9", kT0)});
  Event e = Ev("purchase", "", "i7", kT0 + kHour);
  e.value = 49.9;
  auto o = a.Join(e);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->kind, Outcome::Kind::kConversion);
  EXPECT_EQ(o->impression.offer_id, "o_toys");
  EXPECT_DOUBLE_EQ(o->value, 49.9);
  // An item nobody promoted or showed joins nothing.
  EXPECT_FALSE(a.Join(Ev("purchase", "", "i8", kT0 + kHour)).has_value());
}

TEST(Attribution, RepeatedResponsesAreMarked) {
  Attribution a(nullptr, {});
  a.Shown({Imp("d1", 1, "o1", "", kT0)});
  auto first = a.Join(Ev("click", "o1", "", kT0 + 1000, "d1"));
  auto second = a.Join(Ev("click", "o1", "", kT0 + 2000));
  auto conv = a.Join(Ev("convert", "o1", "", kT0 + 3000));
  ASSERT_TRUE(first && second && conv);
  EXPECT_TRUE(first->first_of_kind);
  EXPECT_FALSE(second->first_of_kind);
  EXPECT_TRUE(conv->first_of_kind);  // another kind
}

TEST(Attribution, BoundsDropOldestImpressionsAndCustomers) {
  Attribution::Options opt;
  opt.per_customer = 2;
  opt.max_impressions = 4;
  opt.shards = 1;
  Attribution a(nullptr, opt);
  a.Shown({Imp("d1", 1, "o1", "", kT0)});
  a.Shown({Imp("d2", 1, "o2", "", kT0 + 1)});
  a.Shown({Imp("d3", 1, "o3", "", kT0 + 2)});
  EXPECT_EQ(a.size(), 2u);
  EXPECT_EQ(a.counts().dropped, 1u);
  EXPECT_FALSE(a.Join(Ev("click", "o1", "", kT0 + 10)).has_value());  // dropped, no store
  EXPECT_TRUE(a.Join(Ev("click", "o3", "", kT0 + 10)).has_value());
  // Three more customers: the least recently active ones go.
  for (int i = 2; i <= 4; ++i)
    a.Shown({Imp("e" + std::to_string(i), 1, "o1", "", kT0 + 100 + i, "c" + std::to_string(i))});
  EXPECT_LE(a.size(), 4u);
  EXPECT_FALSE(a.Join(Ev("click", "o3", "", kT0 + 200)).has_value());  // c1 was dropped
  EXPECT_TRUE(a.Join(Ev("click", "o1", "", kT0 + 200, "", "c4")).has_value());
}

TEST(Attribution, DroppedImpressionsAreFoundInTheStore) {
  TempDir dir;
  auto store = OpenStore(dir.file("t.db"));
  Attribution::Options opt;
  opt.per_customer = 1;
  opt.max_impressions = 1;
  opt.shards = 1;
  Attribution a(store.get(), opt);
  a.Shown({Imp("d1", 1, "o1", "i1", kT0)});
  a.Shown({Imp("d2", 1, "o2", "", kT0 + 1, "c2")});  // drops c1 from memory
  store->Flush();
  auto by_window = a.Join(Ev("purchase", "", "i1", kT0 + kHour));
  ASSERT_TRUE(by_window.has_value());
  EXPECT_EQ(by_window->impression.decision_id, "d1");
  EXPECT_GE(a.counts().store_lookups, 1u);
  a.Shown({Imp("d3", 1, "o3", "", kT0 + 2, "c3")});  // drops c1 again
  auto by_id = a.Join(Ev("click", "o1", "", kT0 + kHour, "d1"));
  ASSERT_TRUE(by_id.has_value());
  EXPECT_EQ(by_id->impression.offer_id, "o1");
}

TEST(Attribution, ExplicitImpressionsJoinOnlyOnceReported) {
  TempDir dir;
  auto store = OpenStore(dir.file("t.db"));
  Attribution a(store.get(), {});
  a.Offered({Imp("d1", 1, "o1", "", kT0), Imp("d1", 2, "o2", "", kT0)});
  EXPECT_FALSE(a.Join(Ev("click", "o1", "", kT0 + 1000)).has_value());  // never rendered
  // The app reports o2's render; o1 stays unshown.
  auto shown = a.Confirm(Ev("impression", "o2", "", kT0 + 5000, "d1"));
  ASSERT_EQ(shown.size(), 1u);
  EXPECT_EQ(shown[0].offer_id, "o2");
  EXPECT_EQ(shown[0].ts_ms, kT0 + 5000);  // the render's time
  EXPECT_TRUE(a.Confirm(Ev("impression", "o2", "", kT0 + 6000, "d1")).empty());  // once
  EXPECT_FALSE(a.Join(Ev("click", "o1", "", kT0 + 7000)).has_value());
  auto o = a.Join(Ev("click", "o2", "", kT0 + 7000));
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->impression.position, 2);
  store->Flush();
  auto stored = store->ImpressionsOf("d1");
  ASSERT_EQ(stored.size(), 2u);
  EXPECT_FALSE(stored[0].shown);
  EXPECT_TRUE(stored[1].shown);
  EXPECT_EQ(stored[1].ts_ms, kT0 + 5000);
}

TEST(Attribution, ExplicitImpressionWithoutOfferShowsTheWholeDecision) {
  Attribution a(nullptr, {});
  a.Offered({Imp("d1", 1, "o1", "", kT0), Imp("d1", 2, "o2", "", kT0)});
  EXPECT_EQ(a.Confirm(Ev("impression", "", "", kT0 + 10, "d1")).size(), 2u);
  EXPECT_TRUE(a.Join(Ev("click", "o1", "", kT0 + 20)).has_value());
  // An impression event without a decision id confirms nothing.
  a.Offered({Imp("d2", 1, "o3", "", kT0)});
  EXPECT_TRUE(a.Confirm(Ev("impression", "o3", "", kT0 + 10)).empty());
}

TEST(FeedbackStore, ImpressionsAndOutcomesRoundTrip) {
  TempDir dir;
  auto store = OpenStore(dir.file("t.db"));
  EXPECT_EQ(store->Count("impressions"), 0);
  Attribution a(store.get(), {});
  Impression m = Imp("d1", 1, "o1", "i1", kT0);
  m.propensity = 0.25;
  m.explore = true;
  m.p_click = 0.04;
  m.segment = "web|young";
  m.features = {1.5f, -2.0f, 0.125f};
  a.Shown({m, Imp("d1", 2, "o2", "", kT0)});
  Event e = Ev("purchase", "o1", "", kT0 + kHour, "d1");
  e.value = 12.5;
  e.seq = 5;
  ASSERT_TRUE(a.Join(e).has_value());
  store->Flush();
  EXPECT_EQ(store->Count("impressions"), 2);
  EXPECT_EQ(store->Count("outcomes"), 1);
  auto outs = store->OutcomesOf("d1");
  ASSERT_EQ(outs.size(), 1u);
  const Outcome& o = outs[0];
  EXPECT_EQ(o.kind, Outcome::Kind::kConversion);
  EXPECT_EQ(o.event_type, "purchase");
  EXPECT_EQ(o.value, 12.5);
  EXPECT_EQ(o.event_seq, 5);
  EXPECT_TRUE(o.by_decision_id);
  // The whole impression comes back, as learning needs it.
  EXPECT_EQ(o.impression.segment, "web|young");
  EXPECT_EQ(o.impression.features, (std::vector<float>{1.5f, -2.0f, 0.125f}));
  EXPECT_DOUBLE_EQ(o.impression.propensity, 0.25);
  EXPECT_TRUE(o.impression.explore);
  EXPECT_DOUBLE_EQ(o.impression.p_click, 0.04);
  int visited = 0;
  EXPECT_EQ(store->ForEachOutcome(kT0,
                                  [&](const Outcome& x) {
                                    visited += x.impression.features.size() == 3;
                                    return true;
                                  }),
            1);
  EXPECT_EQ(visited, 1);
  EXPECT_EQ(store->ForEachOutcome(kT0 + 2 * kHour, [](const Outcome&) { return true; }), 0);
  // Logging the same decision's impressions again keeps the first.
  Impression again = m;
  again.segment = "other";
  store->LogImpressions({again});
  store->Flush();
  EXPECT_EQ(store->ImpressionsOf("d1")[0].segment, "web|young");
}

TEST(FeedbackStore, AppendEventReportsItsSeq) {
  TempDir dir;
  auto store = OpenStore(dir.file("t.db"));
  int64_t a = 0, b = 0;
  ASSERT_TRUE(store->AppendEvent(Ev("view", "", "i1", kT0), &a).get().ok());
  ASSERT_TRUE(store->AppendEvent(Ev("view", "", "i2", kT0), &b).get().ok());
  EXPECT_GT(a, 0);
  EXPECT_EQ(b, a + 1);
}

TEST(Attribution, RebuildAfterRestartKeepsJoins) {
  TempDir dir;
  const std::string path = dir.file("t.db");
  {
    auto store = OpenStore(path);
    Attribution a(store.get(), {});
    a.Shown({Imp("d1", 1, "o1", "i1", kT0)});
    a.Shown({Imp("d0", 1, "o1", "", kT0 - 48 * kHour)});  // outside any window
    a.Offered({Imp("d2", 1, "o2", "", kT0)});
    ASSERT_TRUE(a.Join(Ev("click", "o1", "", kT0 + 1000, "d1")).has_value());
  }  // the store drains its queue on close
  auto store = OpenStore(path);
  Attribution b(store.get(), {});
  EXPECT_EQ(b.Rebuild(kT0 + kHour), 2);  // d1 and d2, not d0
  auto again = b.Join(Ev("click", "o1", "", kT0 + 2000));
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->impression.decision_id, "d1");
  EXPECT_FALSE(again->first_of_kind);  // the click before the restart counts
  EXPECT_EQ(b.Confirm(Ev("impression", "o2", "", kT0 + 3000, "d2")).size(), 1u);
  EXPECT_EQ(b.counts().store_lookups, 0u);  // all from memory
}

TEST(Attribution, ConfirmFindsDecisionsMadeBeforeARestartInTheStore) {
  TempDir dir;
  auto store = OpenStore(dir.file("t.db"));
  {
    Attribution a(store.get(), {});
    a.Offered({Imp("d2", 1, "o2", "", kT0)});
  }
  store->Flush();
  Attribution b(store.get(), {});  // no rebuild: memory is empty
  ASSERT_EQ(b.Confirm(Ev("impression", "o2", "", kT0 + 3000, "d2")).size(), 1u);
  EXPECT_TRUE(b.Join(Ev("click", "o2", "", kT0 + 4000)).has_value());
}

TEST(FeedbackLoop, OnDecideMakesImpressionEventsExplicitWaits) {
  TempDir dir;
  auto store = OpenStore(dir.file("t.db"));
  std::mutex mu;
  std::vector<Event> durable;
  std::vector<Outcome> observed;
  PlacementConfig home, app;
  home.name = "home";
  app.name = "app";
  app.impressions = PlacementConfig::Impressions::kExplicit;
  app.attribution_hours = 1;
  {
    FeedbackLoop loop(store.get(), {}, [&](const Event& e) {
      std::lock_guard lock(mu);
      durable.push_back(e);
    });
    loop.Configure({{"home", home}, {"app", app}});
    loop.SetObserver([&](const Outcome& o) { observed.push_back(o); });
    auto events = loop.Decided(home, {Imp("d1", 1, "o1", "i1", kT0), Imp("d1", 2, "", "i2", kT0)});
    ASSERT_EQ(events.size(), 2u);
    EXPECT_EQ(events[0].type, "impression");
    EXPECT_EQ(events[0].offer_id, "o1");
    EXPECT_EQ(events[0].item_id, "");  // the offer, not its promoted item
    EXPECT_EQ(events[0].decision_id, "d1");
    EXPECT_EQ(events[0].channel, "web");
    EXPECT_EQ(events[1].item_id, "i2");
    // Explicit: nothing until the app reports; anonymous: nothing at all.
    EXPECT_TRUE(loop.Decided(app, {Imp("d2", 1, "o2", "", kT0, "c1", "app")}).empty());
    EXPECT_TRUE(loop.Decided(home, {Imp("d3", 1, "o3", "", kT0, "")}).empty());
    EXPECT_FALSE(loop.Observe(Ev("click", "o2", "", kT0 + 1000)).has_value());
    EXPECT_FALSE(loop.Observe(Ev("impression", "o2", "", kT0 + 1000, "d2")).has_value());
    // The explicit placement's window is an hour from the render.
    EXPECT_FALSE(loop.Observe(Ev("click", "o2", "", kT0 + 1000 + 2 * kHour)).has_value());
    EXPECT_TRUE(loop.Observe(Ev("click", "o2", "", kT0 + 2000)).has_value());
    Event conv = Ev("purchase", "", "i1", kT0 + 3000);
    conv.value = 9;
    EXPECT_TRUE(loop.Observe(conv).has_value());
    ASSERT_EQ(observed.size(), 2u);
    EXPECT_EQ(observed[1].impression.offer_id, "o1");
    nlohmann::json out = loop.OutcomesJson("d1");
    ASSERT_EQ(out.size(), 1u) << out.dump();
    EXPECT_EQ(out[0]["event"], "purchase");
    EXPECT_EQ(out[0]["kind"], "conversion");
    EXPECT_EQ(out[0]["offer"], "o1");
    EXPECT_EQ(out[0]["value"], 9.0);
    EXPECT_EQ(out[0]["position"], 1);
    EXPECT_EQ(out[0]["joined_by"], "window");
    EXPECT_EQ(loop.CountsJson()["impression_events"], 2);
  }  // the loop drains before it goes
  std::lock_guard lock(mu);
  ASSERT_EQ(durable.size(), 2u);
  EXPECT_EQ(durable[0].decision_id, "d1");
  store->Flush();
  EXPECT_EQ(store->Count("events"), 2);  // the two impression events, not the explicit one
}

}  // namespace
}  // namespace tailor
