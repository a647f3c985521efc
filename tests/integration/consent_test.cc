// Consent on every path that uses behavioural data (README § Consent), with a
// real tailord: plugin observe, journeys and their outbound steps, decisions
// per channel. (Training is checked on the store: store_test.cc.)
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <set>

#include "store/store.h"
#include "support/tailord.h"
#include "support/temp_dir.h"
#include "support/world.h"

namespace tailor::testing {
namespace {

using nlohmann::json;

class Consent : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = dir_.file("tailor.db");
    MakeSmallWorld(store_);
    WorldAdditions more;
    for (const auto& [id, consent] : std::vector<std::pair<std::string, std::string>>{
             {"yes", "{}"},
             {"noemail", R"({"email":false})"},
             {"noprof", R"({"profiling":false})"},
             {"noperso", R"({"personalization":false})"},
             {"later", "{}"}})
      more.customers.push_back(Customer{id, "{}", consent, 0, 0});
    AddToWorld(store_, more);
    const std::string journeys = dir_.file("journeys");
    std::filesystem::create_directories(journeys);
    WriteFile(journeys + "/follow_up.yaml", R"(
name: follow_up
stages:
  - name: bought
    steps:
      - {name: thanks, delay: 1s, channel: email, offer: o1}
entry:
  - {event: purchase, category: laptops, stage: bought}
)");
    config_ = SmallConfig(dir_.path(), ShippedPluginYaml("popularity"), "journeys: journeys\n");
  }

  json Event(Client& c, const std::string& who, const std::string& type) {
    json r = c.Call({{"v", 1},
                     {"type", "event"},
                     {"id", "e"},
                     {"customer", who},
                     {"event", type},
                     {"item", "i1"}});  // i1: a laptop in the test world
    EXPECT_EQ(r["ok"], true) << r.dump();
    return r;
  }
  int ObserveCalls(Client& c) {
    json s = c.Call({{"v", 1}, {"type", "stats"}, {"id", "s"}});
    return s["stats"]["plugins"]["popularity"]["observe_calls"].get<int>();
  }
  json Stats(Client& c) { return c.Call({{"v", 1}, {"type", "stats"}, {"id", "s"}})["stats"]; }
  bool Personalised(Client& c, const std::string& who, const std::string& channel) {
    json r = c.Call({{"v", 1},
                     {"type", "decide"},
                     {"id", "d"},
                     {"customer", who},
                     {"channel", channel},
                     {"placement", "home"}});
    EXPECT_FALSE(r.contains("error")) << r.dump();
    return r.value("personalised", true);
  }
  // The journey_steps rows of a customer: {step payload's "cancelled" or "sent"}.
  std::vector<std::string> StepFates(const std::string& who) {
    sqlite3* db = nullptr;
    std::vector<std::string> out;
    EXPECT_EQ(sqlite3_open_v2(store_.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db,
                       "SELECT coalesce(json_extract(payload, '$.cancelled'), "
                       "CASE WHEN sent_ms IS NULL THEN 'pending' ELSE 'sent' END) "
                       "FROM journey_steps WHERE customer_id=? ORDER BY id",
                       -1, &st, nullptr);
    sqlite3_bind_text(st, 1, who.c_str(), -1, SQLITE_TRANSIENT);
    while (sqlite3_step(st) == SQLITE_ROW)
      out.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
  }

  TempDir dir_;
  std::string store_, config_;
};

TEST_F(Consent, BehaviourOfCustomersWhoSaidNoFeedsNoModelAndNoJourney) {
  Tailord d({config_, store_, {}});
  ASSERT_TRUE(d.running()) << d.Log();
  Subscriber sub(d.outbound(), 3000);
  Client c(d.requests());
  const int before = ObserveCalls(c);
  for (const char* who : {"noperso", "noprof"}) {
    Event(c, who, "view");
    Event(c, who, "purchase");
  }
  EXPECT_EQ(ObserveCalls(c), before) << "a plugin observed a customer who said no";
  EXPECT_EQ(Stats(c)["counters"].value("consent.events_not_learned", 0), 4);
  for (const char* who : {"yes", "noemail", "later"}) Event(c, who, "purchase");
  EXPECT_EQ(ObserveCalls(c), before + 3);

  // Journeys: only those who allow it entered.
  for (const char* who : {"noperso", "noprof"}) {
    json p = c.Call({{"v", 1}, {"type", "profile.get"}, {"id", "p"}, {"customer", who}});
    EXPECT_TRUE(p["profile"]["journeys"].empty()) << who << ": " << p.dump();
    EXPECT_TRUE(StepFates(who).empty()) << who;
  }
  json p = c.Call({{"v", 1}, {"type", "profile.get"}, {"id", "p"}, {"customer", "yes"}});
  EXPECT_EQ(p["profile"]["journeys"]["follow_up"], "bought") << p.dump();

  // Consent is read again when a step is due: "later" withdraws it meanwhile.
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(store_.c_str(), &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    ASSERT_EQ(sqlite3_exec(db,
                           "UPDATE customers SET consent='{\"personalization\":false}' "
                           "WHERE id='later'",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  std::set<std::string> reached;
  while (std::optional<std::string> m = sub.Next())
    reached.insert(json::parse(*m)["customer"].get<std::string>());
  EXPECT_EQ(reached, std::set<std::string>{"yes"});
  EXPECT_EQ(StepFates("yes"), std::vector<std::string>{"sent"});
  EXPECT_EQ(StepFates("noemail"), std::vector<std::string>{"no consent for email"});
  EXPECT_EQ(StepFates("later"), std::vector<std::string>{"no consent for personalization"});
}

TEST_F(Consent, DecisionsArePersonalisedOnlyWhereAllowed) {
  Tailord d({config_, store_, {}});
  ASSERT_TRUE(d.running()) << d.Log();
  Client c(d.requests());
  EXPECT_TRUE(Personalised(c, "yes", "email"));
  EXPECT_TRUE(Personalised(c, "noemail", "web"));
  EXPECT_FALSE(Personalised(c, "noemail", "email")) << "a channel refused is not personalised";
  EXPECT_FALSE(Personalised(c, "noperso", "web"));
  EXPECT_TRUE(Personalised(c, "noprof", "web")) << "profiling: false does not refuse decisions";
}

}  // namespace
}  // namespace tailor::testing
