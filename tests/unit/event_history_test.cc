// EventHistory (what rules' history.* answer from) and the store's profile
// load of it: exact windows, beyond the last recent_events events.
#include "model/event_history.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cstdio>
#include <map>

#include "common/time.h"
#include "decision/profile_cache.h"
#include "store/store.h"
#include "support/temp_dir.h"

namespace tailor {
namespace {

using testing::TempDir;

constexpr int64_t kHour = 3'600'000;
constexpr int64_t kDay = 24 * kHour;
constexpr int64_t kNow = 1'790'000'000'000;  // a fixed "now", mid-day UTC

TEST(EventHistory, CountsByTypeAndIdWithinTheWindow) {
  EventHistory::Builder b;
  b.Add("view", "", "i1", kNow - 1 * kDay);
  b.Add("view", "", "i1", kNow - 3 * kDay);
  b.Add("view", "", "i2", kNow - 2 * kDay);
  b.Add("impression", "o1", "", kNow - 5 * kDay);
  b.Add("purchase", "o1", "i1", kNow - 8 * kDay);
  EventHistory h = b.Build(kNow - 400 * kDay);
  EXPECT_EQ(h.Count("view", "", kNow - 30 * kDay), 3);
  EXPECT_EQ(h.Count("view", "i1", kNow - 30 * kDay), 2);
  EXPECT_EQ(h.Count("view", "i1", kNow - 2 * kDay), 1);
  EXPECT_EQ(h.Count("view", "i3", kNow - 30 * kDay), 0);
  EXPECT_EQ(h.Count("impression", "o1", kNow - 7 * kDay), 1);
  // An event naming an offer and an item is found by either, once.
  EXPECT_EQ(h.Count("purchase", "o1", kNow - 9 * kDay), 1);
  EXPECT_EQ(h.Count("purchase", "i1", kNow - 9 * kDay), 1);
  EXPECT_EQ(h.Count("purchase", "", kNow - 9 * kDay), 1);
  EXPECT_EQ(h.Count("click", "", kNow - 9 * kDay), 0);
  EXPECT_EQ(h.Newest("view", "i1"), kNow - 1 * kDay);
  EXPECT_EQ(h.Newest("view", ""), kNow - 1 * kDay);
  EXPECT_FALSE(h.Newest("click", "").has_value());
  EXPECT_EQ(h.times(), 11u);  // 4 + 2 + 2 + 3: the type's total and each id
}

// The window boundary is exact to the millisecond: at or after since counts.
TEST(EventHistory, TwelveHourWindowIsExactAtTheBoundary) {
  EventHistory::Builder b;
  const int64_t since = kNow - 12 * kHour;
  b.Add("impression", "o1", "", since - 1);
  b.Add("impression", "o1", "", since);
  b.Add("impression", "o1", "", since + 1);
  b.Add("impression", "o1", "", since - kDay);  // same hour of the day before
  EventHistory h = b.Build(kNow - 400 * kDay);
  EXPECT_EQ(h.Count("impression", "o1", since), 2);
  EXPECT_EQ(h.Count("impression", "o1", since + 1), 1);
  EXPECT_EQ(h.Count("impression", "o1", since + 2), 0);
  EXPECT_EQ(h.Count("impression", "o1", since - 1), 3);
}

// history.bought asks "was this item purchased": an offer that happens to
// share the id does not count, and category lookups see every item.
TEST(EventHistory, ItemsAreToldApartFromOffers) {
  EventHistory::Builder b;
  b.Add("purchase", "x", "", kNow - kDay);
  b.Add("purchase", "", "i2", kNow - 3 * kDay);
  b.Add("purchase", "o9", "i3", kNow - 2 * kDay);
  b.Add("purchase", "", "i2", kNow - 5 * kDay);
  EventHistory h = b.Build(kNow - 400 * kDay);
  EXPECT_FALSE(h.NewestItem("purchase", "x").has_value());
  EXPECT_EQ(h.Newest("purchase", "x"), kNow - kDay);
  EXPECT_EQ(h.NewestItem("purchase", "i2"), kNow - 3 * kDay);
  EXPECT_EQ(h.NewestItem("purchase", "i3"), kNow - 2 * kDay);
  std::map<std::string, int64_t> seen;
  h.ForEachItem("purchase", [&](std::string_view id, int64_t ts) {
    seen[std::string(id)] = std::max(seen[std::string(id)], ts);
    return true;
  });
  EXPECT_EQ(seen,
            (std::map<std::string, int64_t>{{"i2", kNow - 3 * kDay}, {"i3", kNow - 2 * kDay}}));
}

// Events applied after the load (the profile cache) count like loaded ones,
// before and after the tail is merged, and copies do not share the tail.
TEST(EventHistory, AppliedEventsCountAndCopiesStayApart) {
  EventHistory::Builder b;
  for (int i = 0; i < 10; ++i) b.Add("view", "", "i1", kNow - kDay - i);
  EventHistory h = b.Build(kNow - 400 * kDay);
  EventHistory before = h;
  for (int i = 0; i < 100; ++i) {
    h.Add("view", "", i % 2 ? "i1" : "i2", kNow - i * kHour);
    ASSERT_EQ(h.Count("view", "", kNow - 400 * kDay), 11 + i);
  }
  EXPECT_EQ(h.Count("view", "i1", kNow - 400 * kDay), 60);
  EXPECT_EQ(h.Count("view", "i2", kNow - 10 * kHour), 6);  // i = 0, 2, ..., 10
  EXPECT_EQ(h.Newest("view", "i2"), kNow);
  EXPECT_EQ(before.Count("view", "", kNow - 400 * kDay), 10);
  // Before the horizon: a fresh load would not hold it either.
  h.Add("view", "", "i1", kNow - 500 * kDay);
  EXPECT_EQ(h.Count("view", "", INT64_MIN), 110);
}

// --- Through the store ------------------------------------------------------

std::unique_ptr<Store> OpenStore(const std::string& path) {
  std::string err;
  Store::Options o;
  o.path = path;
  auto s = Store::Open(o, &err);
  EXPECT_NE(s, nullptr) << err;
  return s;
}

Event MakeEvent(const std::string& type, const std::string& offer, const std::string& item,
                int64_t ts) {
  Event e;
  e.customer_id = "c1";
  e.type = type;
  e.offer_id = offer;
  e.item_id = item;
  e.ts_ms = ts;
  return e;
}

// The case: 500 events of one customer in 30 days, with recent_events
// at 50. The recent list holds 50; the history holds all of them.
TEST(StoreHistory, FiveHundredEventsAreAllHeldWhateverTheRecentLimit) {
  TempDir dir;
  auto s = OpenStore(dir.file("t.db"));
  s->AppendEvent(MakeEvent("purchase", "", "i_old", kNow - 40 * kDay));
  for (int i = 0; i < 500; ++i)
    s->AppendEvent(MakeEvent(i % 5 ? "view" : "impression", i % 5 ? "" : "o1",
                             "i" + std::to_string(i % 7), kNow - i * (29 * kDay / 500)));
  s->Flush();
  Profile p = s->LoadProfile("c1", 50);
  ASSERT_EQ(p.recent.size(), 50u);
  EXPECT_EQ(p.history.Count("view", "", kNow - 30 * kDay) +
                p.history.Count("impression", "", kNow - 30 * kDay),
            500);
  EXPECT_EQ(p.history.Count("impression", "o1", kNow - 30 * kDay), 100);
  EXPECT_EQ(p.history.NewestItem("purchase", "i_old"), kNow - 40 * kDay);
  EXPECT_EQ(p.history.Count("purchase", "i_old", kNow - 60 * kDay), 1);
  EXPECT_EQ(p.history.Count("purchase", "i_old", kNow - 30 * kDay), 0);
  // The same with no recent events at all.
  EXPECT_EQ(s->LoadProfile("c1", 0).history.Count("view", "", kNow - 30 * kDay), 400);
}

// The bound: events older than history_days before the newest event are not
// loaded; the horizon says where the history starts.
TEST(StoreHistory, LoadKeepsHistoryDaysBeforeTheNewestEvent) {
  TempDir dir;
  auto s = OpenStore(dir.file("t.db"));
  s->AppendEvent(MakeEvent("view", "", "i1", kNow - 20 * kDay));
  s->AppendEvent(MakeEvent("view", "", "i1", kNow - 5 * kDay));
  s->AppendEvent(MakeEvent("view", "", "i1", kNow));
  s->Flush();
  Profile p = s->LoadProfile("c1", 50, 10);
  EXPECT_EQ(p.history.horizon_ms(), kNow - 10 * kDay);  // kNow is before the wall clock
  EXPECT_EQ(p.history.Count("view", "", INT64_MIN), 2);
  EXPECT_EQ(s->LoadProfile("c1", 50).history.Count("view", "", INT64_MIN), 3);
  EXPECT_EQ(p.counts["view"], 3);  // all-time counts are not bounded
}

// Events reaching a cached profile (the service's path between loads) are
// in its history at once, past the recent limit, as a fresh load would be.
TEST(StoreHistory, CachedProfilesCountAppliedEvents) {
  TempDir dir;
  auto s = OpenStore(dir.file("t.db"));
  s->AppendEvent(MakeEvent("view", "", "i1", kNow - 2 * kDay));
  s->Flush();
  ProfileCache cache(10);
  cache.Put("c1", std::make_shared<const Profile>(s->LoadProfile("c1", 5)), cache.Epoch("c1"));
  for (int i = 0; i < 100; ++i) {
    Event e = MakeEvent("impression", "o1", "", kNow - i * kHour);
    cache.ApplyEvent(e, 5);
    s->AppendEvent(e);
  }
  s->Flush();
  auto cached = cache.Get("c1");
  ASSERT_NE(cached, nullptr);
  EXPECT_EQ(cached->recent.size(), 5u);
  EXPECT_EQ(cached->history.Count("impression", "o1", kNow - 7 * kDay), 100);
  EXPECT_EQ(cached->history.Count("impression", "o1", kNow - 12 * kHour), 13);  // i = 0..12
  EXPECT_EQ(cached->history.Count("view", "", kNow - 7 * kDay), 1);
  Profile fresh = s->LoadProfile("c1", 5);
  EXPECT_EQ(fresh.history.Count("impression", "o1", kNow - 12 * kHour), 13);
}

// The history is derived from the events rows alone (no second copy in
// another table): deleting a customer's events, as erasure does, leaves no
// history behind on the next load, and other customers keep theirs.
TEST(StoreHistory, ErasingTheEventsErasesTheHistory) {
  TempDir dir;
  auto s = OpenStore(dir.file("t.db"));
  for (int i = 0; i < 100; ++i) s->AppendEvent(MakeEvent("view", "", "i1", kNow - i * kHour));
  Event other = MakeEvent("view", "", "i1", kNow);
  other.customer_id = "c2";
  s->AppendEvent(other);
  s->Flush();
  ASSERT_EQ(s->LoadProfile("c1", 50).history.Count("view", "i1", INT64_MIN), 100);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(dir.file("t.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(
      sqlite3_exec(db, "DELETE FROM events WHERE customer_id='c1'", nullptr, nullptr, nullptr),
      SQLITE_OK);
  sqlite3_close(db);
  Profile p = s->LoadProfile("c1", 50);
  EXPECT_EQ(p.history.Count("view", "", INT64_MIN), 0);
  EXPECT_EQ(p.history.times(), 0u);
  EXPECT_FALSE(p.history.Newest("view", "i1").has_value());
  EXPECT_EQ(s->LoadProfile("c2", 50).history.Count("view", "i1", INT64_MIN), 1);
}

}  // namespace
}  // namespace tailor
