// Outbound delivery (README § Outbound delivery), with a real tailord: a
// journey step that falls due while nobody listens is not lost; it is
// published again with backoff until a consumer acknowledges it, survives a
// restart, and outbound.pending hands it to a consumer that was away.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <set>
#include <thread>

#include "support/tailord.h"
#include "support/temp_dir.h"
#include "support/world.h"

namespace tailor::testing {
namespace {

using nlohmann::json;

class Outbound : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = dir_.file("tailor.db");
    MakeSmallWorld(store_);
    const std::string journeys = dir_.file("journeys");
    std::filesystem::create_directories(journeys);
    WriteFile(journeys + "/follow_up.yaml", R"(
name: follow_up
stages:
  - name: bought
    steps:
      - {name: thanks, delay: 1s, channel: email, offer: o1}
entry:
  - {event: purchase, stage: bought}
)");
  }
  std::string Config(const std::string& delivery) {
    return SmallConfig(dir_.path(), ShippedPluginYaml("popularity"),
                       "journeys: journeys\nservice:\n  outbound_delivery: " + delivery + "\n");
  }
  void Purchase(Client& c, const std::string& who) {
    json r = c.Call({{"v", 1},
                     {"type", "event"},
                     {"id", "e"},
                     {"customer", who},
                     {"event", "purchase"},
                     {"item", "i1"}});
    ASSERT_EQ(r["ok"], true) << r.dump();
  }
  json Pending(Client& c, int64_t after = 0, int limit = 100) {
    return c.Call(
        {{"v", 1}, {"type", "outbound.pending"}, {"id", "p"}, {"after", after}, {"limit", limit}});
  }
  // Waits until outbound.pending lists n messages (the step is due after 1 s
  // and taken within 100 ms of that).
  json WaitForPending(Client& c, size_t n) {
    json r;
    for (int i = 0; i < 100; ++i) {
      r = Pending(c);
      if (r["outbound"]["messages"].size() >= n) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return r;
  }

  TempDir dir_;
  std::string store_;
};

TEST_F(Outbound, AMessageNobodyHeardIsKeptResentAndHandedOverUntilAcknowledged) {
  const std::string config = Config("{acks: true, retry_after_s: 1, max_retry_s: 1}");
  int64_t id = 0;
  {
    Tailord d({config, store_, {}});
    ASSERT_TRUE(d.running()) << d.Log();
    Client c(d.requests());
    Purchase(c, "c1");
    // Nobody subscribes while the step falls due and is first published.
    json pending = WaitForPending(c, 1);
    ASSERT_EQ(pending["outbound"]["messages"].size(), 1u) << pending.dump();
    const json& m = pending["outbound"]["messages"][0];
    EXPECT_EQ(m["customer"], "c1");
    EXPECT_EQ(m["step"], "thanks");
    EXPECT_EQ(pending["outbound"]["more"], false);
    id = m["id"].get<int64_t>();

    // A subscriber that joins later still gets it: it is published again.
    Subscriber sub(d.outbound(), 4000);
    std::optional<std::string> again = sub.Next();
    ASSERT_TRUE(again.has_value()) << "not published again within 4 s";
    EXPECT_EQ(json::parse(*again)["id"], id);
    json stats = c.Call({{"v", 1}, {"type", "stats"}, {"id", "s"}})["stats"];
    EXPECT_EQ(stats["outbound"]["unacked"], 1) << stats["outbound"].dump();
    EXPECT_GE(stats["counters"].value("outbound.redelivered", 0), 1);
    EXPECT_EQ(d.Terminate(), 0) << d.Log();
  }
  {
    // Unacknowledged across a restart: still pending, still re-sent.
    Tailord d({config, store_, {}});
    ASSERT_TRUE(d.running()) << d.Log();
    Client c(d.requests());
    json pending = Pending(c);
    ASSERT_EQ(pending["outbound"]["messages"].size(), 1u) << pending.dump();
    EXPECT_EQ(pending["outbound"]["messages"][0]["id"], id);
    EXPECT_GE(pending["outbound"]["messages"][0]["attempts"].get<int>(), 2);
    Subscriber sub(d.outbound(), 4000);
    ASSERT_TRUE(sub.Next().has_value()) << "not re-sent after the restart";

    // Acknowledged: gone from pending, and no longer published.
    json ack = c.Call({{"v", 1}, {"type", "outbound.ack"}, {"id", "a"}, {"ids", {id, 999999}}});
    EXPECT_EQ(ack["acked"], 2) << ack.dump();
    EXPECT_TRUE(Pending(c)["outbound"]["messages"].empty());
    Subscriber quiet(d.outbound(), 2500);
    while (std::optional<std::string> m = quiet.Next())
      EXPECT_NE(json::parse(*m)["id"], id) << "published after its ack";
    json stats = c.Call({{"v", 1}, {"type", "stats"}, {"id", "s"}})["stats"];
    EXPECT_EQ(stats["outbound"]["unacked"], 0);
    EXPECT_EQ(stats["counters"].value("outbound.acked", 0), 2);
  }
}

TEST_F(Outbound, PendingPagesByIdAndAMessageIsGivenUpAfterItsLastAttempt) {
  Tailord d(
      {Config("{acks: true, retry_after_s: 1, max_retry_s: 1, max_attempts: 2}"), store_, {}});
  ASSERT_TRUE(d.running()) << d.Log();
  Client c(d.requests());
  for (const char* who : {"c1", "c2", "c3"}) Purchase(c, who);
  json all = WaitForPending(c, 3);
  ASSERT_EQ(all["outbound"]["messages"].size(), 3u) << all.dump();
  // Pages: two, then the rest after the last id seen.
  json first = Pending(c, 0, 2);
  ASSERT_EQ(first["outbound"]["messages"].size(), 2u);
  EXPECT_EQ(first["outbound"]["more"], true);
  json rest = Pending(c, first["outbound"]["messages"][1]["id"].get<int64_t>(), 2);
  ASSERT_EQ(rest["outbound"]["messages"].size(), 1u);
  EXPECT_EQ(rest["outbound"]["more"], false);
  std::set<int64_t> ids;
  for (const json* page : {&first, &rest})
    for (const json& m : (*page)["outbound"]["messages"]) ids.insert(m["id"].get<int64_t>());
  EXPECT_EQ(ids.size(), 3u);

  // Two attempts, then given up: health says so, pending still lists them.
  // (The three were taken a moment apart, so they are given up one by one.)
  json health;
  for (int i = 0; i < 60; ++i) {
    health = c.Call({{"v", 1}, {"type", "health"}, {"id", "h"}})["health"];
    if (health["problems"].dump().find("3 outbound messages given up") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(health["status"], "degraded") << health.dump();
  EXPECT_NE(health["problems"].dump().find("3 outbound messages given up"), std::string::npos)
      << health.dump();
  EXPECT_EQ(Pending(c)["outbound"]["messages"].size(), 3u);
  std::vector<int64_t> acks(ids.begin(), ids.end());
  c.Call({{"v", 1}, {"type", "outbound.ack"}, {"id", "a"}, {"ids", acks}});
  health = c.Call({{"v", 1}, {"type", "health"}, {"id", "h"}})["health"];
  EXPECT_EQ(health["status"], "ok") << health.dump();
}

TEST_F(Outbound, WithoutAcksAMessageIsPublishedOnceAndNotKept) {
  Tailord d({Config("{acks: false}"), store_, {}});
  ASSERT_TRUE(d.running()) << d.Log();
  Subscriber sub(d.outbound(), 5000);
  Client c(d.requests());
  Purchase(c, "c1");
  std::optional<std::string> m = sub.Next();
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(json::parse(*m)["customer"], "c1");
  EXPECT_TRUE(Pending(c)["outbound"]["messages"].empty());
  json stats = c.Call({{"v", 1}, {"type", "stats"}, {"id", "s"}})["stats"];
  EXPECT_EQ(stats["outbound"]["acks"], false);
  EXPECT_EQ(stats["outbound"]["unacked"], 0);
}

TEST_F(Outbound, TheExampleConsumerGetsWhatItMissedAndAcknowledgesIt) {
  Tailord d({Config("{acks: true, retry_after_s: 60}"), store_, {}});
  ASSERT_TRUE(d.running()) << d.Log();
  Client c(d.requests());
  Purchase(c, "c1");
  ASSERT_EQ(WaitForPending(c, 1)["outbound"]["messages"].size(), 1u);  // sent, nobody heard
  const std::string log = dir_.file("consumer.log");
  ASSERT_EQ(Shell("/usr/bin/python3 " + std::string(TAILOR_SOURCE_DIR) +
                      "/tools/outbound_consumer.py --requests " + d.requests() + " --outbound " +
                      d.outbound() + " --max 1 --timeout 10",
                  log),
            0)
      << ReadFile(log);
  EXPECT_NE(ReadFile(log).find("c1"), std::string::npos) << ReadFile(log);
  EXPECT_NE(ReadFile(log).find("1 messages handled and acknowledged"), std::string::npos);
  EXPECT_TRUE(Pending(c)["outbound"]["messages"].empty());
}

TEST_F(Outbound, MalformedAcksNameTheField) {
  Tailord d({Config("{acks: true}"), store_, {}});
  ASSERT_TRUE(d.running()) << d.Log();
  Client c(d.requests());
  for (const json& bad : {json{{"v", 1}, {"type", "outbound.ack"}},
                          json{{"v", 1}, {"type", "outbound.ack"}, {"ids", json::array()}},
                          json{{"v", 1}, {"type", "outbound.ack"}, {"ids", {1, "x"}}},
                          json{{"v", 1}, {"type", "outbound.ack"}, {"ids", {-3}}}}) {
    json r = c.Call(bad);
    EXPECT_EQ(r["error"]["code"], "bad_request") << bad.dump() << " -> " << r.dump();
    EXPECT_EQ(r["error"]["field"], "ids") << r.dump();
  }
  json r = c.Call({{"v", 1}, {"type", "outbound.pending"}, {"limit", 0}});
  EXPECT_EQ(r["error"]["field"], "limit") << r.dump();
  r = c.Call({{"v", 1}, {"type", "outbound.pending"}, {"after", -1}});
  EXPECT_EQ(r["error"]["field"], "after") << r.dump();
}

}  // namespace
}  // namespace tailor::testing
