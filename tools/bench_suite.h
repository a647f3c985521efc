// `tailor bench` with no subcommand: every scenario in one run (bench_suite.cc).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace tailor::cli {

struct BenchSuiteArgs {
  std::string json_out, plot, config = "config/tailor.yaml", work_dir, plugin_dir, tailord;
  // An earlier tailord (and its plugins) measured on the same world in the
  // same run, for a before/after table; empty: none.
  std::string baseline_tailord, baseline_plugin_dir;
  // Scenario names to run (offers-100, items-1000, items-10000, clients-8,
  // events, scaling, cold, start, baseline); empty: all of them.
  std::vector<std::string> only;
  bool quick = false;
  int customers = 0, items = 0, cold_customers = 0, requests = 0;  // 0: the mode's default
};

void RunBenchSuite(const BenchSuiteArgs& a);

// The scaling curve as an SVG chart: p50 by candidates, and by customers.
void WriteScalingPlot(const nlohmann::json& results, const std::string& path);

}  // namespace tailor::cli
