// `tailor report`: the KPI report marketers read (docs/report.md). Reads the
// decision log of a store, writes the figures as JSON and as one
// self-contained HTML page, and prints a short headline table.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "commands.h"
#include "common/time.h"
#include "experiments/shadow_estimate.h"
#include "progress.h"
#include "report/fairness.h"
#include "report/html.h"
#include "report/kpi.h"
#include "runtime.h"

namespace tailor::cli {
namespace {

struct ReportArgs {
  std::string store, experiment, by = "auto", control, since, until, html, json, expect;
  std::string protected_attrs = "age_band,gender";
  std::string mode = "live";
  bool shadow = false, fairness = false;
  double max_disparity = report::kDefaultMaxDisparity;
};

int64_t ParseTime(const std::string& flag, const std::string& text) {
  auto ms = parse_iso8601_ms(text);
  if (!ms) Fail(flag + ": '" + text + "' is not an ISO 8601 time (e.g. 2026-03-01T00:00:00Z)");
  return *ms;
}

// "a=0.5,b=0.5" -> {a: 0.5, b: 0.5}.
std::map<std::string, double> ParseShares(const std::string& text) {
  std::map<std::string, double> out;
  std::stringstream ss(text);
  std::string part;
  while (std::getline(ss, part, ',')) {
    const size_t eq = part.find('=');
    char* end = nullptr;
    const double v = eq == std::string::npos ? -1 : std::strtod(part.c_str() + eq + 1, &end);
    if (eq == std::string::npos || eq == 0 || end == part.c_str() + eq + 1 || *end || !(v >= 0))
      Fail("--expect: '" + part + "' is not ARM=SHARE (e.g. --expect control=0.5,tailor=0.5)");
    out[part.substr(0, eq)] = v;
  }
  return out;
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << text;
  if (!f.good()) Fail(path + ": cannot write");
}

std::string Percent(double r) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f%%", r * 100);
  return buf;
}

// The headline table on stdout: one line per arm.
void PrintHeadline(const nlohmann::json& r) {
  std::printf("%-22s %9s %10s %11s %22s %9s %10s %26s\n", "arm", "customers", "decisions",
              "impressions", "CTR [95% CI]", "conv", "rev/cust", "CTR uplift [95% CI] p");
  for (const nlohmann::json& a : r["arms"]) {
    const std::string ctr =
        Percent(a["ctr"]) + " [" + Percent(a["ctr_ci"][0]) + ", " + Percent(a["ctr_ci"][1]) + "]";
    std::string up = a["control"].get<bool>() ? "(control)" : "-";
    if (a["uplift"].is_object()) {
      char buf[96];
      const nlohmann::json& u = a["uplift"];
      std::snprintf(buf, sizeof buf, "%+.2fpp [%+.2f, %+.2f] %.3g", u["ctr"].get<double>() * 100,
                    u["ci"][0].get<double>() * 100, u["ci"][1].get<double>() * 100,
                    u["p"].get<double>());
      up = buf;
    }
    std::printf("%-22s %9lld %10lld %11lld %22s %9s %10.2f %26s\n",
                a["arm"].get<std::string>().c_str(), a["customers"].get<long long>(),
                a["decisions"].get<long long>(), a["impressions"].get<long long>(), ctr.c_str(),
                Percent(a["conversion_rate"]).c_str(), a["revenue_per_customer"].get<double>(),
                up.c_str());
  }
  const nlohmann::json& s = r["srm"];
  std::printf(
      "sample ratio: chi2 %.3f, df %d, p %.4g%s\n", s["chi2"].get<double>(), s["df"].get<int>(),
      s["p"].get<double>(),
      s["flagged"].get<bool>() ? "  ** SAMPLE RATIO MISMATCH: the split is broken **" : "  (ok)");
}

void PrintShadow(const nlohmann::json& estimate) {
  std::printf("\nshadow mode: served (observed) and Tailor's picks (model, calibrated)\n");
  std::printf("%-22s %10s %9s %10s %10s %12s %12s %14s %14s\n", "placement", "decisions",
              "agreement", "served CTR", "model CTR", "Tailor model", "Tailor calib",
              "top CTR agreed", "top CTR other");
  for (const auto& [name, p] : estimate["placements"].items())
    std::printf("%-22s %10lld %9s %10s %10s %12s %12s %14s %14s\n", name.c_str(),
                p["decisions"].get<long long>(), Percent(p["agreement"]).c_str(),
                Percent(p["served"]["ctr"]).c_str(), Percent(p["served"]["model_ctr"]).c_str(),
                Percent(p["tailor"]["ctr"]).c_str(), Percent(p["tailor"]["calibrated_ctr"]).c_str(),
                Percent(p["top_agreed"]["ctr"]).c_str(),
                Percent(p["top_disagreed"]["ctr"]).c_str());
}

void RunReport(const ReportArgs& a) {
  if (!std::filesystem::exists(a.store)) Fail("--store: " + a.store + " does not exist");
  if (a.html.empty() && a.json.empty()) Fail("give --html OUT.html and/or --json OUT.json");
  Store::Options so;
  so.path = a.store;
  // Not read-only: a store written before the arm columns (migration 6) is
  // migrated first, as tailord would. Nothing else is written.
  so.start_writer = false;
  std::string err;
  auto store = Store::Open(so, &err);
  if (!store) Fail(a.store + ": " + err);

  report::ReportOptions opt;
  opt.window.experiment = a.experiment;
  const std::string mode = a.shadow ? "shadow" : a.mode;
  opt.window.mode = mode == "all" ? "" : mode;
  if (!a.since.empty()) opt.window.since_ms = ParseTime("--since", a.since);
  if (!a.until.empty()) opt.window.until_ms = ParseTime("--until", a.until);
  if (opt.window.until_ms <= opt.window.since_ms) Fail("--until must be after --since");
  opt.by = a.by == "arm"         ? report::ReportOptions::GroupBy::kArm
           : a.by == "placement" ? report::ReportOptions::GroupBy::kPlacement
                                 : report::ReportOptions::GroupBy::kAuto;
  opt.control = a.control;
  if (!a.expect.empty()) opt.expected_shares = ParseShares(a.expect);
  Progress progress("report");
  opt.progress = [&](int64_t done, int64_t total, const char* stage) {
    progress.Update(
        done, total,
        stage == std::string("decisions") ? "decisions" : std::string("decisions, ") + stage);
  };
  const int64_t t0 = mono_ns();
  nlohmann::json r = report::BuildReport(*store, opt, &err);
  if (r.is_null()) Fail(err);
  char summary[96];
  std::snprintf(summary, sizeof summary, "%lld decisions in %.1f s",
                static_cast<long long>(r["decisions"].get<int64_t>()),
                static_cast<double>(mono_ns() - t0) / 1e9);
  progress.Done(summary);
  std::string extra_html;
  if (a.fairness) {
    std::vector<std::string> attrs;
    std::stringstream ss(a.protected_attrs);
    for (std::string attr; std::getline(ss, attr, ',');)
      if (!attr.empty()) attrs.push_back(attr);
    r["fairness"] =
        report::Fairness(*store, opt.window.since_ms, opt.window.until_ms, attrs, a.max_disparity);
    extra_html += report::FairnessHtml(r["fairness"]);
  }
  if (mode != "live") {
    r["shadow_estimate"] =
        experiments::ShadowSummary(*store, opt.window.since_ms, opt.window.until_ms);
    extra_html = report::ShadowHtml(r["shadow_estimate"]) + extra_html;
  }
  if (!a.json.empty()) WriteFile(a.json, r.dump(2) + "\n");
  if (!a.html.empty()) WriteFile(a.html, report::RenderHtml(r, extra_html));
  PrintHeadline(r);
  if (r.contains("shadow_estimate")) PrintShadow(r["shadow_estimate"]);
}

}  // namespace

void RegisterReport(CLI::App& app) {
  auto a = std::make_shared<ReportArgs>();
  CLI::App* s = app.add_subcommand(
      "report", "KPI report from a store's decision log: arms, uplift, funnel, rules (HTML, JSON)");
  s->add_option("--store", a->store, "the store (SQLite file) to read")->required();
  s->add_option("--experiment", a->experiment, "only this experiment's decisions");
  s->add_option("--by", a->by, "group by arm or placement (auto: arm when decisions have one)")
      ->check(CLI::IsMember({"auto", "arm", "placement"}))
      ->capture_default_str();
  s->add_option("--control", a->control,
                "the arm to compare with (default: an arm named control, else holdout)");
  s->add_option("--since", a->since, "first decision time (ISO 8601, inclusive)");
  s->add_option("--until", a->until, "end of the window (ISO 8601, exclusive)");
  s->add_option("--expect", a->expect,
                "expected traffic shares for the SRM check, ARM=SHARE,... (default: equal)");
  s->add_option("--mode", a->mode,
                "live: decisions Tailor served; shadow: decisions where the application served "
                "its own choice, with an estimate of what Tailor's picks would have achieved; "
                "all: both (an experiment with a `control: app` arm)")
      ->check(CLI::IsMember({"live", "shadow", "all"}))
      ->capture_default_str();
  s->add_flag("--shadow", a->shadow, "the same as --mode shadow");
  s->add_flag("--fairness", a->fairness,
              "add per protected group offer rates, discounts, conversion and disparity ratios");
  s->add_option("--protected", a->protected_attrs,
                "the protected attributes --fairness compares, comma-separated")
      ->capture_default_str();
  s->add_option("--max-disparity", a->max_disparity,
                "the cap --fairness marks breaches against (the config's pricing.max_disparity)")
      ->check(CLI::Range(1.0, 100.0))
      ->capture_default_str();
  s->add_option("--html", a->html, "write the report page here");
  s->add_option("--json", a->json, "write the figures here");
  s->callback([a] { RunReport(*a); });
}

}  // namespace tailor::cli
