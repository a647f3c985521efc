// `tailor eval calibration`: how well a learning placement's P(click) matched
// what customers did. Every logged impression carries the click model's P at
// decision time, made before its response was known, so the logged
// impressions are held-out predictions (prequential evaluation); an
// impression counts as clicked when a click was joined to it.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "commands.h"
#include "common/time.h"
#include "learning/calibration.h"
#include "model/feedback.h"
#include "store/store.h"

namespace tailor::cli {
namespace {

struct CalibrationArgs {
  std::string store;
  std::string placement;
  double since_days = 0;  // 0: every stored impression
  std::string json_out;
};

std::string Key(const Impression& m) { return m.decision_id + "#" + std::to_string(m.position); }

void RunCalibration(const CalibrationArgs& a) {
  Store::Options so;
  so.path = a.store;
  so.start_writer = false;
  so.read_only = true;
  std::string err;
  auto store = Store::Open(so, &err);
  if (!store) throw CLI::RuntimeError(err, 2);
  const int64_t since =
      a.since_days > 0 ? now_ms() - static_cast<int64_t>(a.since_days * 86400000.0) : 0;
  std::set<std::string> clicked;
  store->ForEachOutcome(since, [&](const Outcome& o) {
    if (o.kind == Outcome::Kind::kClick) clicked.insert(Key(o.impression));
    return true;
  });
  std::vector<std::pair<double, bool>> pairs;
  store->ForEachImpression(since, [&](const Impression& m) {
    // Impressions without features come from placements that do not learn.
    if (!m.shown || m.features.empty()) return true;
    if (!a.placement.empty() && m.placement != a.placement) return true;
    pairs.emplace_back(m.p_click, clicked.count(Key(m)) > 0);
    return true;
  });
  if (pairs.empty())
    throw CLI::RuntimeError("no learning impressions in " + a.store +
                                (a.placement.empty() ? "" : " for placement " + a.placement),
                            1);
  const learning::CalibrationReport r = learning::Calibration(pairs);
  std::printf("P(click) of %zu impressions%s: mean predicted %.4f, observed %.4f\n", r.count,
              a.placement.empty() ? "" : (" on " + a.placement).c_str(), r.mean_predicted,
              r.observed_rate);
  std::printf("ECE %.4f   Brier %.4f   log loss %.4f\n\n", r.ece, r.brier, r.log_loss);
  std::printf("%-13s %10s %10s %8s\n", "P bin", "predicted", "observed", "count");
  for (const learning::ReliabilityBin& b : r.bins) {
    if (b.count == 0) continue;
    std::printf("[%.1f, %.1f)    %10.4f %10.4f %8zu\n", b.lo, b.hi, b.mean_predicted,
                b.observed_rate, b.count);
  }
  if (!a.json_out.empty()) {
    std::ofstream out(a.json_out);
    out << learning::CalibrationJson(r).dump(2) << "\n";
    if (!out) throw CLI::RuntimeError("cannot write " + a.json_out, 2);
  }
}

}  // namespace

void RegisterEvalCalibration(CLI::App& eval) {
  auto a = std::make_shared<CalibrationArgs>();
  CLI::App* c = eval.add_subcommand(
      "calibration", "Calibration of learned P(click) on the logged, joined impressions");
  c->add_option("--store", a->store, "the store of a tailord (or tailor simulate)")->required();
  c->add_option("--placement", a->placement, "one placement (default: every learning one)");
  c->add_option("--since-days", a->since_days, "only impressions of the last N days");
  c->add_option("--json", a->json_out, "write the report as JSON here");
  c->callback([a] { RunCalibration(*a); });
}

}  // namespace tailor::cli
