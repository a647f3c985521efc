// Rules' history.* through the real service (issue 12.4): the shipped
// frequency cap ("at most 3 impressions of one offer in 7 days") holds for a
// customer whose impressions are older than their last recent_events (50)
// events, on a fresh profile load and on a cached profile that events update.
#include <gtest/gtest.h>

#include <string>

#include "common/time.h"
#include "support/tailord.h"
#include "support/temp_dir.h"
#include "support/world.h"

namespace tailor::testing {
namespace {

using nlohmann::json;

constexpr int64_t kDay = 86'400'000;

// The frequency_cap notes on o_phone_upgrade in the decision's stored trace.
std::string CapNotes(Client& c, const std::string& customer, const std::string& id) {
  json r = c.Call({{"v", 1},
                   {"type", "decide"},
                   {"id", id},
                   {"customer", customer},
                   {"channel", "web"},
                   {"placement", "home"}});
  EXPECT_FALSE(r.contains("error")) << r.dump();
  json ex = c.Call({{"v", 1}, {"type", "explain"}, {"id", "x" + id}, {"decision", r["decision"]}});
  EXPECT_TRUE(ex.contains("explain")) << ex.dump();
  std::string notes;
  for (const json& t : ex["explain"]["trace"]["entries"]) {
    if (t.value("offer", "") != "o_phone_upgrade") continue;
    for (const json& n : t["why"].value("rules", json::array()))
      if (n.get<std::string>().rfind("frequency_cap: ", 0) == 0)
        notes += t["status"].get<std::string>() + " " + n.get<std::string>() + "\n";
  }
  return notes;
}

// impressions of o_phone_upgrade 6 days ago, then 200 newer views.
void SendHistory(Client& c, const std::string& customer, int impressions) {
  const int64_t now = now_ms();
  auto send = [&](json e) {
    e["v"] = 1;
    e["type"] = "event";
    e["id"] = "e";
    e["customer"] = customer;
    json ack = c.Call(e);
    ASSERT_EQ(ack["ok"], true) << ack.dump();
  };
  for (int i = 0; i < impressions; ++i)
    send({{"event", "impression"}, {"offer", "o_phone_upgrade"}, {"ts", now - 6 * kDay + i}});
  for (int i = 0; i < 200; ++i)
    send({{"event", "view"}, {"item", "i" + std::to_string(2 + i % 20)}, {"ts", now - 200 + i}});
}

TEST(HistoryService, FrequencyCapSeesImpressionsOlderThanTheLastFiftyEvents) {
  TempDir dir;
  const std::string store = dir.file("tailor.db");
  MakeSmallWorld(store);
  Tailord d({"", store, {}});
  ASSERT_TRUE(d.running()) << d.Log();
  Client c(d.requests());

  // h1: cached before its events, so the events update the cached profile.
  EXPECT_EQ(CapNotes(c, "h1", "d0"), "");
  SendHistory(c, "h1", 3);
  // h2: first loaded after its events. h3: two impressions, under the cap.
  SendHistory(c, "h2", 3);
  SendHistory(c, "h3", 2);

  // h1's first decision came before h1 was known: not personalised, so it
  // recorded no impression (an unknown customer is not made known by a decide).
  EXPECT_EQ(CapNotes(c, "h1", "d1"), "suppressed frequency_cap: shown 3 times in 7 days (cap 3)\n");
  EXPECT_EQ(CapNotes(c, "h2", "d2"), "suppressed frequency_cap: shown 3 times in 7 days (cap 3)\n");
  EXPECT_EQ(CapNotes(c, "h3", "d3"), "");
}

}  // namespace
}  // namespace tailor::testing
