// `tailor simulate` end to end: a tiny simulation (2 days, 200 customers)
// against a real tailord started by the simulator, checked through its JSON
// report and through the store it leaves behind.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cstdlib>
#include <map>
#include <set>
#include <string>

#include "support/tailord.h"
#include "support/temp_dir.h"

namespace tailor::testing {
namespace {

using nlohmann::json;

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
std::string TinyScenario(const TempDir& dir, const std::string& scenario, int days) {
  return TailorBin() + " simulate --scenario " + scenario + " --days " + std::to_string(days) +
         " --customers 300 --items 120 --history-days 60 --seed 4 --store " + dir.file("sim.db") +
         " --config " + TAILOR_SOURCE_DIR + "/config --plugin-dir " + TAILOR_PLUGIN_DIR +
         " --work-dir " + dir.file("work") + " --json " + dir.file("sim.json");
}

// The discount scenario: three arms priced as documented, the engine pricing
// only the tailor arm's offers within their ranges, and the disparity cap
// between age bands holding.
TEST(Simulate, DiscountScenarioPricesOnlyTheTailorArmWithinTheGuardrails) {
  TempDir dir;
  const std::string log = dir.file("sim.log");
  // The segment from a customer attribute (the default is the DNA trait).
  ASSERT_EQ(Shell(TinyScenario(dir, "discount", 3) + " --pricing-features segment", log), 0)
      << ReadFile(log);
  const json r = json::parse(ReadFile(dir.file("sim.json")), nullptr, false);
  ASSERT_TRUE(r.is_object()) << ReadFile(log);
  EXPECT_EQ(r["config"]["scenario"], "discount");
  const json& d = r["discount"];
  std::map<std::string, json> arms;
  for (const json& a : d["arms"]) arms[a["arm"]] = a;
  ASSERT_EQ(arms.size(), 3u) << d.dump();
  EXPECT_EQ(arms["no-discount"]["avg_discount"].get<double>(), 0);
  EXPECT_NEAR(arms["fixed-discount"]["avg_discount"].get<double>(), 0.15, 1e-9);
  const double tailor = arms["tailor"]["avg_discount"].get<double>();
  EXPECT_GE(tailor, 0);
  EXPECT_LE(tailor, 0.3);
  EXPECT_GT(d["engine"]["priced"].get<int64_t>(), 0);
  EXPECT_LE(arms["tailor"]["age_band"]["ratio"].get<double>(), 1.25);
  for (const auto& [name, a] : arms) EXPECT_GT(a["decisions"].get<int64_t>(), 0) << name;
  // Only the tailor arm's impressions carry a discount, each one of the levels.
  const std::string db = dir.file("sim.db");
  EXPECT_GT(Scalar(db, "SELECT count(*) FROM impressions WHERE discount > 0"), 0);
  EXPECT_EQ(Scalar(db,
                   "SELECT count(*) FROM impressions WHERE discount > 0 AND placement <> "
                   "'sim_tailor'"),
            0);
  EXPECT_EQ(Scalar(db,
                   "SELECT count(*) FROM impressions WHERE discount > 0 AND "
                   "abs(discount * 10 - round(discount * 10)) > 1e-9"),
            0);
  EXPECT_EQ(d["targets"].size(), 4u);
  EXPECT_EQ(d["pricing"]["features"], "segment");
  EXPECT_NE(ReadFile(dir.file("work") + "/config/tailor.yaml").find("features: [segment]"),
            std::string::npos);
}

// The experiment scenario: the engine splits one placement's customers into
// the control and tailor arms of experiment sim_ab, and the store records it.
TEST(Simulate, ExperimentScenarioLetsTheEngineSplitTheCustomers) {
  TempDir dir;
  const std::string log = dir.file("sim.log");
  ASSERT_EQ(Shell(TinyScenario(dir, "experiment", 2), log), 0) << ReadFile(log);
  const std::string db = dir.file("sim.db");
  const int64_t all = Scalar(db, "SELECT count(*) FROM decisions");
  const int64_t control = Scalar(db,
                                 "SELECT count(*) FROM decisions WHERE experiment = 'sim_ab' "
                                 "AND arm = 'control'");
  const int64_t tailor = Scalar(db,
                                "SELECT count(*) FROM decisions WHERE experiment = 'sim_ab' "
                                "AND arm = 'tailor'");
  EXPECT_GT(control, 0);
  EXPECT_GT(tailor, 0);
  EXPECT_EQ(control + tailor, all);
  // A customer stays in one arm.
  EXPECT_EQ(Scalar(db,
                   "SELECT count(*) FROM (SELECT customer_id FROM decisions GROUP BY "
                   "customer_id HAVING count(DISTINCT arm) > 1)"),
            0);
  EXPECT_NE(ReadFile(log).find("--experiment sim_ab"), std::string::npos);
}

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
