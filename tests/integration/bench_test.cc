// `tailor bench` end to end at a tiny size: it builds its worlds, starts real
// tailord processes and a bare ZeroMQ echo, and writes every figure the
// issue's JSON names. Figures are not judged here (benchmarks print them);
// what is checked is that each scenario really ran.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "support/tailord.h"
#include "support/temp_dir.h"

namespace tailor::testing {
namespace {

using nlohmann::json;

TEST(Bench, EveryScenarioRunsAgainstARealTailordAndAnEcho) {
  TempDir dir;
  const std::string out = dir.file("bench.json"), plot = dir.file("scaling.svg"),
                    log = dir.file("bench.log");
  const std::string cmd = TailorBin() + " bench --quick --customers 200 --items 1100" +
                          " --cold-customers 1500 -n 60 --config " + TAILOR_SOURCE_DIR +
                          "/config --plugin-dir " + TAILOR_PLUGIN_DIR + " --json " + out +
                          " --plot " + plot;
  ASSERT_EQ(Shell(cmd, log), 0) << ReadFile(log);
  json r = json::parse(ReadFile(out), nullptr, false);
  ASSERT_TRUE(r.is_object()) << ReadFile(log);

  std::set<std::string> names;
  for (const json& s : r["scenarios"]) {
    const std::string name = s.value("name", "");
    names.insert(name);
    for (const char* k : {"p50_us", "p90_us", "p99_us", "p999_us", "throughput_rps", "echo_p50_us",
                          "echo_p99_us", "echo_throughput_rps", "rss_mb"})
      EXPECT_GT(s.value(k, 0.0), 0) << k << " in " << s.dump();
    EXPECT_LE(s["p50_us"].get<double>(), s["p99_us"].get<double>()) << s.dump();
    EXPECT_EQ(s.value("failures", -1), 0) << s.dump();
  }
  EXPECT_EQ(names, (std::set<std::string>{"offers-100", "items-1000", "items-10000", "clients-8",
                                          "cold"}));
  for (const json& s : r["scenarios"]) {
    if (s["name"] == "offers-100") {
      EXPECT_EQ(s["candidates"], 100);
    }
    if (s["name"] == "items-10000") {
      EXPECT_EQ(s["candidates"], 1100);  // the whole catalog
    }
    if (s["name"] == "clients-8") {
      EXPECT_EQ(s["clients"], 8);
    }
    if (s["name"] == "cold") {
      EXPECT_EQ(s["first_touches"], 1500);
      EXPECT_GT(s["warm_p99_us"].get<double>(), 0);
    }
  }
  const json& e = r["events"];
  EXPECT_GT(e["acked_per_s"].get<double>(), 0);
  EXPECT_EQ(e["acked_failed_batches"], 0);
  EXPECT_EQ(e["pull_stored"], e["events"]);  // every fire-and-forget event was stored
  EXPECT_GT(e["decide_p99_while_ingesting_us"].get<double>(), 0);
  EXPECT_GT(r["start"]["with_models_s"].get<double>(), 0);
  EXPECT_GT(r["start"]["without_models_s"].get<double>(), 0);
  // Small, main and cold worlds, two placements each.
  ASSERT_EQ(r["scaling"].size(), 6u);
  EXPECT_EQ(r["scaling"][0]["customers"], 100);
  EXPECT_EQ(r["scaling"][5]["customers"], 1700);
  ASSERT_TRUE(r["targets"].is_array());
  EXPECT_GE(r["targets"].size(), 13u);
  EXPECT_NE(ReadFile(plot).find("<svg"), std::string::npos);
  EXPECT_NE(ReadFile(log).find("offers-100"), std::string::npos);  // the table
}

}  // namespace
}  // namespace tailor::testing
