// How well predicted probabilities match observed outcomes: a reliability
// table of 10 equal-width bins over [0, 1] (mean predicted, observed rate,
// count) and the expected calibration error
//   ECE = sum over bins of count/N x |observed rate - mean predicted|.
// A calibrated P has ECE near 0; `tailor eval` reports both on held-out
// responses.
#pragma once

#include <nlohmann/json.hpp>

#include <array>
#include <cstddef>
#include <utility>
#include <vector>

namespace tailor::learning {

struct ReliabilityBin {
  double lo = 0, hi = 0;      // the bin's range of predictions
  double mean_predicted = 0;  // 0 when empty
  double observed_rate = 0;   // 0 when empty
  size_t count = 0;
};

struct CalibrationReport {
  std::array<ReliabilityBin, 10> bins;
  double ece = 0;
  double brier = 0;     // mean (p - y)^2
  double log_loss = 0;  // mean -log likelihood, p clamped to [1e-12, 1 - 1e-12]
  double mean_predicted = 0, observed_rate = 0;
  size_t count = 0;
};

// pairs: (predicted probability, outcome). Predictions outside [0, 1] are
// clamped; NaN predictions are skipped.
CalibrationReport Calibration(const std::vector<std::pair<double, bool>>& pairs);

// {"count","ece","brier","log_loss","mean_predicted","observed_rate",
//  "bins":[{"lo","hi","mean_predicted","observed_rate","count"}]}
nlohmann::json CalibrationJson(const CalibrationReport& r);

}  // namespace tailor::learning
