#include <gtest/gtest.h>

#include <vector>

#include "common/time.h"
#include "decision/profile_cache.h"
#include "metrics/metrics.h"

namespace tailor {
namespace {

std::shared_ptr<const Profile> MakeProfile(const std::string& id) {
  auto p = std::make_shared<Profile>();
  p->known = true;
  p->customer.id = id;
  return p;
}

TEST(ProfileCache, EvictsLeastRecentlyUsed) {
  ProfileCache cache(2, 1);
  cache.Put("a", MakeProfile("a"), cache.Epoch("a"));
  cache.Put("b", MakeProfile("b"), cache.Epoch("b"));
  ASSERT_NE(cache.Get("a"), nullptr);  // a is now the most recent
  cache.Put("c", MakeProfile("c"), cache.Epoch("c"));
  EXPECT_EQ(cache.Get("b"), nullptr);
  EXPECT_NE(cache.Get("a"), nullptr);
  EXPECT_NE(cache.Get("c"), nullptr);
  EXPECT_EQ(cache.size(), 2u);
}

TEST(ProfileCache, EventsUpdateCachedProfilesAndBoundRecent) {
  ProfileCache cache(10, 1);
  cache.Put("a", MakeProfile("a"), cache.Epoch("a"));
  for (int i = 0; i < 5; ++i) {
    Event e;
    e.customer_id = "a";
    e.type = "click";
    e.item_id = "i" + std::to_string(i);
    e.ts_ms = 100 + i;
    cache.ApplyEvent(e, 3);
  }
  auto p = cache.Get("a");
  EXPECT_EQ(p->counts.at("click"), 5);
  ASSERT_EQ(p->recent.size(), 3u);
  EXPECT_EQ(p->recent.back().item_id, "i4");
  EXPECT_EQ(p->last_seen_ms, 104);
}

TEST(ProfileCache, ABatchOfSeveralCustomersEventsIsAppliedToEach) {
  ProfileCache cache(10, 1);
  cache.Put("a", MakeProfile("a"), cache.Epoch("a"));
  cache.Put("b", MakeProfile("b"), cache.Epoch("b"));
  std::vector<Event> events;
  for (const char* who : {"a", "a", "b", "a"}) {
    Event& e = events.emplace_back();
    e.customer_id = who;
    e.type = "impression";
    e.offer_id = "o" + std::to_string(events.size());
    e.ts_ms = 200 + static_cast<int64_t>(events.size());
  }
  const uint64_t before = cache.Epoch("a");
  cache.ApplyEvents(events, 2);
  auto a = cache.Get("a");
  EXPECT_EQ(a->counts.at("impression"), 3);
  ASSERT_EQ(a->recent.size(), 2u);  // trimmed once, newest kept, in order
  EXPECT_EQ(a->recent[0].offer_id, "o2");
  EXPECT_EQ(a->recent[1].offer_id, "o4");
  EXPECT_EQ(a->history.Count("impression", "o1", 0), 1);
  EXPECT_EQ(a->last_seen_ms, 204);
  EXPECT_EQ(cache.Get("b")->counts.at("impression"), 1);
  EXPECT_GT(cache.Epoch("a"), before);  // a load racing the batch is dropped
}

TEST(ProfileCache, StaleLoadIsDroppedWhenAnEventRacedIt) {
  ProfileCache cache(10, 1);
  uint64_t epoch = cache.Epoch("a");
  Event e;
  e.customer_id = "a";
  e.type = "view";
  cache.ApplyEvent(e, 10);  // lands between the load and the Put
  cache.Put("a", MakeProfile("a"), epoch);
  EXPECT_EQ(cache.Get("a"), nullptr);
}

TEST(LatencyHistogram, PercentilesAreWithinBucketPrecision) {
  LatencyHistogram h;
  for (int i = 1; i <= 1000; ++i) h.Record(i);
  EXPECT_EQ(h.count(), 1000u);
  EXPECT_NEAR(h.Percentile(0.5), 500, 500 * 0.13);
  EXPECT_NEAR(h.Percentile(0.99), 990, 990 * 0.13);
  EXPECT_GE(h.Percentile(0.99), h.Percentile(0.5));
  EXPECT_NEAR(h.Mean(), 500.5, 1e-9);
  LatencyHistogram empty;
  EXPECT_EQ(empty.Percentile(0.5), 0);
}

TEST(Counters, AddAndSnapshot) {
  Counters c;
  c.Add("requests.decide");
  c.Add("requests.decide", 2);
  EXPECT_EQ(c.Get("requests.decide"), 3u);
  EXPECT_EQ(c.Get("missing"), 0u);
  EXPECT_EQ(c.Snapshot().size(), 1u);
}

TEST(Time, ParsesAndFormatsIso8601) {
  EXPECT_EQ(parse_iso8601_ms("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(parse_iso8601_ms("2026-11-23T21:15:00.250Z"), 1795468500250);
  EXPECT_EQ(parse_iso8601_ms("2026-11-23T22:15:00+01:00"), 1795468500000);
  EXPECT_EQ(parse_iso8601_ms("2026-11-23"), 1795392000000);
  EXPECT_FALSE(parse_iso8601_ms("23/11/2026").has_value());
  EXPECT_FALSE(parse_iso8601_ms("2026-13-01").has_value());
  EXPECT_EQ(format_iso8601_ms(1795468500250), "2026-11-23T21:15:00.250Z");
}

}  // namespace
}  // namespace tailor
