// `tailor eval propensity`: the DNA plugin's propensity models on any
// delimited file with a header: gradient-boosted trees (XGBoost, the served
// model) against the regularised logistic regression (the explainable
// baseline). Numeric and categorical columns are detected from the training
// file. Reports AUC, log loss, calibration error and training time for both.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <sstream>

#include "commands.h"
#include "common/time.h"
#include "dna/gbdt.h"
#include "dna/tabular.h"
#include "runtime.h"

namespace tailor::cli {
namespace {

using nlohmann::json;

struct EvalPropensityArgs {
  std::string train, test, label, positive, drop, sep = "auto", json_out;
  double l2 = 1.0;
  dna::GbdtOptions gbdt;
};

char SepOf(const std::string& s) {
  if (s == "auto") return 0;
  if (s == "tab" || s == "\\t") return '\t';
  if (s.size() == 1) return s[0];
  Fail("--sep: expected auto, tab or one character, got '" + s + "'", 2);
}

void RunEvalPropensity(const EvalPropensityArgs& a) {
  dna::Table train, test;
  std::vector<float> ytr, yte;
  std::vector<std::string> skip = {a.label};
  std::stringstream ds(a.drop);
  for (std::string c; std::getline(ds, c, ',');)
    if (!c.empty()) skip.push_back(c);
  try {
    train = dna::ReadTable(a.train, SepOf(a.sep));
    test = dna::ReadTable(a.test, SepOf(a.sep));
    ytr = dna::Labels(train, a.label, a.positive);
    yte = dna::Labels(test, a.label, a.positive);
  } catch (const std::exception& e) {
    Fail(e.what(), 2);
  }
  for (size_t k = 1; k < skip.size(); ++k) {
    if (std::find(train.columns.begin(), train.columns.end(), skip[k]) == train.columns.end())
      Fail("--drop: no column '" + skip[k] + "' in " + a.train, 2);
  }
  const dna::Encoder enc = dna::Encoder::Fit(train, skip);
  dna::Matrix xtr, xte;
  try {
    xtr = enc.Transform(train);
    xte = enc.Transform(test);
  } catch (const std::exception& e) {
    Fail(std::string(a.test) + ": " + e.what(), 2);
  }
  std::cerr << a.train << ": " << train.rows.size() << " rows, separator '"
            << (train.sep == '\t' ? std::string("\\t") : std::string(1, train.sep)) << "', "
            << enc.numeric_columns() << " numeric + " << enc.categorical_columns()
            << " categorical columns -> " << enc.feature_names().size() << " features\n";

  std::cerr << "training gradient-boosted trees (XGBoost)...\n";
  int64_t t0 = mono_ns();
  const dna::Gbdt gbdt = dna::Gbdt::Train(xtr, ytr, a.gbdt, [](int r, double ll) {
    if (r % 10 == 0) std::fprintf(stderr, "\r  round %d  holdout logloss %.5f", r, ll);
  });
  const double gbdt_s = static_cast<double>(mono_ns() - t0) / 1e9;
  std::fprintf(stderr, "\n  %d rounds kept (early stopping), %.2f s\n", gbdt.rounds(), gbdt_s);

  std::cerr << "training logistic regression (L2 " << a.l2 << ")...\n";
  t0 = mono_ns();
  const dna::Logistic lr = dna::Logistic::Train(xtr, ytr, a.l2);
  const double lr_s = static_cast<double>(mono_ns() - t0) / 1e9;

  // Latency of one row at a time, as the plugin scores one customer.
  std::vector<double> us;
  dna::Matrix one;
  one.rows = 1;
  one.cols = xte.cols;
  for (size_t i = 0; i < std::min<size_t>(xte.rows, 2000); ++i) {
    one.v.assign(xte.row(i), xte.row(i) + xte.cols);
    const int64_t s = mono_ns();
    (void)gbdt.Predict(one);
    us.push_back(static_cast<double>(mono_ns() - s) / 1e3);
  }
  std::sort(us.begin(), us.end());
  const double predict_us = us.empty() ? 0 : us[us.size() / 2];
  const double predict_p99_us = us.empty() ? 0 : us[us.size() * 99 / 100];

  const std::vector<double> pg = gbdt.Predict(xte), pl = lr.Predict(xte);
  auto metrics = [&](const std::vector<double>& p, double secs) {
    return json{{"auc", dna::Auc(yte, p)},
                {"logloss", dna::LogLoss(yte, p)},
                {"calibration_error", dna::CalibrationError(yte, p)},
                {"train_seconds", secs}};
  };
  const json g = metrics(pg, gbdt_s), l = metrics(pl, lr_s);
  double base_rate = 0;
  for (float v : ytr) base_rate += v;
  base_rate /= static_cast<double>(ytr.size());

  std::printf("%-30s %8s %8s %8s %9s\n", "model", "AUC", "logloss", "ECE", "train s");
  auto row = [](const char* name, const json& m) {
    std::printf("%-30s %8.4f %8.4f %8.4f %9.2f\n", name, m["auc"].get<double>(),
                m["logloss"].get<double>(), m["calibration_error"].get<double>(),
                m["train_seconds"].get<double>());
  };
  row("gbdt (XGBoost, served)", g);
  row("logistic (L2, baseline)", l);
  std::printf(
      "test: %zu rows, positive rate %.4f (train %.4f); gbdt predict %.1f us/row median, "
      "%.1f us p99 (one row per call)\n",
      yte.size(), std::accumulate(yte.begin(), yte.end(), 0.0) / static_cast<double>(yte.size()),
      base_rate, predict_us, predict_p99_us);

  if (!a.json_out.empty()) {
    json out = g;
    out["model"] = "gbdt";
    out["rounds"] = gbdt.rounds();
    out["predict_us"] = predict_us;
    out["predict_p99_us"] = predict_p99_us;
    out["gbdt_options"] = {{"max_depth", a.gbdt.max_depth},
                           {"eta", a.gbdt.eta},
                           {"min_child_weight", a.gbdt.min_child_weight},
                           {"subsample", a.gbdt.subsample},
                           {"colsample", a.gbdt.colsample},
                           {"lambda", a.gbdt.lambda},
                           {"alpha", a.gbdt.alpha},
                           {"gamma", a.gbdt.gamma},
                           {"early_stopping", a.gbdt.early_stopping},
                           {"seed", a.gbdt.seed}};
    out["baseline_logistic"] = l;
    out["test_rows"] = yte.size();
    out["train_rows"] = ytr.size();
    out["features"] = enc.feature_names().size();
    out["dropped"] = std::vector<std::string>(skip.begin() + 1, skip.end());
    std::ofstream f(a.json_out);
    f << out.dump(2) << "\n";
    if (!f) Fail("cannot write " + a.json_out);
  }
}

}  // namespace

void RegisterEvalPropensity(CLI::App& eval) {
  auto a = std::make_shared<EvalPropensityArgs>();
  CLI::App* c =
      eval.add_subcommand("propensity", "Propensity models (XGBoost vs logistic): AUC, log loss");
  c->add_option("--train", a->train, "training file with a header")
      ->required()
      ->check(CLI::ExistingFile);
  c->add_option("--test", a->test, "test file, same columns")->required()->check(CLI::ExistingFile);
  c->add_option("--label", a->label, "label column")->required();
  c->add_option("--positive", a->positive, "label value of the positive class")->required();
  c->add_option("--drop", a->drop, "comma-separated columns to leave out (e.g. leaks)");
  c->add_option("--sep", a->sep, "separator: auto, tab or one character")->capture_default_str();
  c->add_option("--json", a->json_out, "write the metrics as JSON here");
  c->add_option("--l2", a->l2, "logistic L2 strength")->capture_default_str();
  c->add_option("--max-depth", a->gbdt.max_depth, "tree depth")->capture_default_str();
  c->add_option("--eta", a->gbdt.eta, "boosting learning rate")->capture_default_str();
  c->add_option("--min-child-weight", a->gbdt.min_child_weight, "minimum hessian per leaf")
      ->capture_default_str();
  c->add_option("--subsample", a->gbdt.subsample, "rows sampled per tree")->capture_default_str();
  c->add_option("--colsample", a->gbdt.colsample, "features sampled per tree")
      ->capture_default_str();
  c->add_option("--lambda", a->gbdt.lambda, "L2 on leaf weights")->capture_default_str();
  c->add_option("--alpha", a->gbdt.alpha, "L1 on leaf weights")->capture_default_str();
  c->add_option("--gamma", a->gbdt.gamma, "minimum loss reduction to split")->capture_default_str();
  c->add_option("--max-rounds", a->gbdt.max_rounds, "boosting rounds at most")
      ->capture_default_str();
  c->add_option("--early-stopping", a->gbdt.early_stopping,
                "stop after this many rounds without a held-out improvement")
      ->capture_default_str();
  c->add_option("--seed", a->gbdt.seed, "seed of the holdout and of row / feature sampling")
      ->capture_default_str();
  c->add_option("--threads", a->gbdt.threads, "XGBoost threads")->capture_default_str();
  c->callback([a] { RunEvalPropensity(*a); });
}

}  // namespace tailor::cli
