// `tailor report`'s figures: per arm (or placement) KPIs with intervals and
// uplift against the control, the sample-ratio-mismatch check, a customer
// lifetime value proxy, the per-offer funnel and per-rule effects, all read
// from the decision log (docs/report.md). Memory is bounded by arms x days,
// offers and rules, never by decisions or customers: the store streams.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "store/store.h"

namespace tailor::report {

struct ReportOptions {
  KpiWindow window;
  // kAuto groups by arm when any decision in the window has one, else by
  // placement (how `tailor simulate` separates its arms).
  enum class GroupBy { kAuto, kArm, kPlacement };
  GroupBy by = GroupBy::kAuto;
  // The arm every other is compared with; empty: an arm named "control",
  // else "holdout", else none (no uplift).
  std::string control;
  // Expected traffic shares for the SRM check (arm -> share, any scale);
  // empty: equal shares. An arm missing here is expected to get nothing.
  std::map<std::string, double> expected_shares;
  // Called now and then with (done, total, stage) while the store streams.
  std::function<void(int64_t, int64_t, const char*)> progress;
};

// The report as JSON (the schema is docs/report.md's). Empty JSON with *err
// set when the store cannot be read or --control names no arm.
nlohmann::json BuildReport(Store& store, const ReportOptions& options, std::string* err);

// The SRM check flags a split whose p-value is below this.
constexpr double kSrmAlpha = 0.001;

// Where a suppressed candidate's veto came from, from its trace note:
// kind is rule, journey, policy, sensitive, request or engine.
struct VetoSource {
  std::string kind;
  std::string name;
};
VetoSource ClassifyVeto(std::string_view note);

}  // namespace tailor::report
