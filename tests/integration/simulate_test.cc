// `tailor simulate` end to end: a tiny simulation (2 days, 200 customers)
// against a real tailord started by the simulator, checked through its JSON
// report and through the store it leaves behind.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cstdlib>
#include <set>
#include <string>

#include "support/tailord.h"
#include "support/temp_dir.h"

namespace tailor::testing {
namespace {

using nlohmann::json;

int Shell(const std::string& cmd, const std::string& log) {
  int rc = std::system((cmd + " >" + log + " 2>&1").c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

// One integer from the store (-1 when the query fails, e.g. a missing table).
int64_t Scalar(const std::string& db, const std::string& sql) {
  sqlite3* h = nullptr;
  int64_t out = -1;
  if (sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(h, sql.c_str(), -1, &st, nullptr) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
      out = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
  }
  sqlite3_close(h);
  return out;
}

TEST(Simulate, TinyRunDrivesARealTailordAndStoresWhatItCaused) {
  TempDir dir;
  const std::string store = dir.file("sim.db"), out = dir.file("sim.json"),
                    log = dir.file("sim.log");
  const std::string cmd = TailorBin() + " simulate --days 2 --customers 200 --items 120" +
                          " --history-days 60 --seed 3 --new-offer-day 2 --store " + store +
                          " --config " + TAILOR_SOURCE_DIR + "/config --plugin-dir " +
                          TAILOR_PLUGIN_DIR + " --json " + out;
  ASSERT_EQ(Shell(cmd, log), 0) << ReadFile(log);
  const std::string printed = ReadFile(log);
  json r = json::parse(ReadFile(out), nullptr, false);
  ASSERT_TRUE(r.is_object()) << printed;

  // The report's shape, as the issue defines it.
  ASSERT_TRUE(r["arms"].is_array());
  std::set<std::string> names;
  int64_t decisions = 0, clicks = 0;
  for (const json& a : r["arms"]) {
    names.insert(a.value("arm", ""));
    for (const char* k : {"decisions", "impressions", "clicks", "conversions"})
      EXPECT_TRUE(a[k].is_number_integer()) << k << " in " << a.dump();
    for (const char* k : {"ctr", "conversion_rate", "revenue", "revenue_per_decision"})
      EXPECT_TRUE(a[k].is_number()) << k << " in " << a.dump();
    ASSERT_EQ(a["ctr_by_day"].size(), 2u);
    ASSERT_EQ(a["revenue_per_decision_by_day"].size(), 2u);
    EXPECT_EQ(a["errors"], 0) << a.dump() << "\n" << printed;
    EXPECT_GT(a["decisions"].get<int64_t>(), 0) << a.dump();
    // K = 1: every decision showed one offer.
    EXPECT_EQ(a["impressions"], a["decisions"]) << a.dump();
    EXPECT_LE(a["clicks"].get<int64_t>(), a["impressions"].get<int64_t>());
    EXPECT_LE(a["conversions"].get<int64_t>(), a["clicks"].get<int64_t>());
    decisions += a["decisions"].get<int64_t>();
    clicks += a["clicks"].get<int64_t>();
  }
  EXPECT_EQ(names,
            (std::set<std::string>{"random", "popularity", "tailor-greedy", "tailor", "oracle"}));
  EXPECT_GT(clicks, 0) << printed;
  EXPECT_EQ(r["new_offer"]["added_on_day"], 2);
  EXPECT_EQ(r["new_offer"]["share_of_best_segment_by_day"].size(), 1u);
  EXPECT_EQ(r["last_days"]["arms"].size(), 5u);
  EXPECT_EQ(r["targets"].size(), 5u);
  for (const json& t : r["targets"]) EXPECT_TRUE(t["pass"].is_boolean()) << t.dump();
  EXPECT_NE(printed.find("targets"), std::string::npos) << printed;

  // The store kept what the run caused: every decision, and the responses
  // naming their decision.
  EXPECT_EQ(Scalar(store, "SELECT count(*) FROM decisions WHERE placement LIKE 'sim_%'"),
            decisions);
  EXPECT_EQ(Scalar(store,
                   "SELECT count(*) FROM events WHERE type = 'click' AND decision_id != '' "
                   "AND offer_id != ''"),
            clicks);
  EXPECT_GT(Scalar(store, "SELECT count(*) FROM events WHERE type = 'dismiss'"), 0);
  // The new offer was added to the simulation's catalog and shown.
  EXPECT_GT(Scalar(store,
                   "SELECT count(*) FROM decisions WHERE response LIKE "
                   "'%o_sim_new_books%'"),
            0);
  // Where the engine joins responses to decisions (store migration 5), they were joined.
  if (Scalar(store, "SELECT count(*) FROM sqlite_master WHERE name = 'outcomes'") == 1) {
    EXPECT_GT(Scalar(store, "SELECT count(*) FROM outcomes"), 0);
  }
}

// A store made from another seed is refused: the simulator would otherwise
// draw responses from the wrong customers' traits.
TEST(Simulate, RefusesAStoreOfAnotherSeed) {
  TempDir dir;
  const std::string store = dir.file("demo.db"), log = dir.file("sim.log");
  ASSERT_EQ(Shell(TailorBin() + " demo --store " + store +
                      " --customers 30 --items 40 --days 20 --seed 9",
                  log),
            0)
      << ReadFile(log);
  EXPECT_NE(Shell(TailorBin() + " simulate --days 1 --seed 8 --store " + store + " --config " +
                      TAILOR_SOURCE_DIR + "/config --plugin-dir " + TAILOR_PLUGIN_DIR,
                  log),
            0);
  EXPECT_NE(ReadFile(log).find("is not the demo world of --seed 8"), std::string::npos)
      << ReadFile(log);
}

}  // namespace
}  // namespace tailor::testing
