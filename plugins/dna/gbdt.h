// Propensity models for tabular data, shared by the DNA plugin and `tailor
// eval propensity`:
// - Gbdt: gradient-boosted trees through XGBoost's C API (binary:logistic),
//   early stopping and Platt calibration on a held-out tenth of the training
//   rows, per-feature contributions (TreeSHAP) for explanations;
// - Logistic: L2-regularised logistic regression on standardised features,
//   fitted by Newton's method: the explainable baseline.
// Missing values are NaN (trees route them; the logistic imputes the mean).
//
// Thread safety: Predict/Contributions on a trained model may be called
// concurrently (Gbdt serialises its XGBoost calls with a mutex).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "dna/tabular.h"

namespace tailor::dna {

struct GbdtOptions {
  int max_rounds = 1000;
  int early_stopping = 50;  // rounds without a held-out improvement
  double eta = 0.05;
  int max_depth = 4;
  double min_child_weight = 5;
  double subsample = 0.8;
  double colsample = 0.8;
  double lambda = 1.0;  // L2 on leaf weights
  double alpha = 0.0;   // L1 on leaf weights
  double gamma = 0.0;   // minimum loss reduction to split
  int threads = 2;
  uint64_t seed = 7;
  double holdout = 0.1;  // share of rows for early stopping and calibration
  // After early stopping, retrain on every row for the chosen number of
  // rounds (scaled by 1 / (1 - holdout)); calibration stays the holdout's.
  bool refit = true;
};

class Gbdt {
 public:
  Gbdt();
  ~Gbdt();
  Gbdt(Gbdt&&) noexcept;
  Gbdt& operator=(Gbdt&&) noexcept;

  // Throws std::runtime_error with XGBoost's message on failure.
  static Gbdt Train(const Matrix& x, const std::vector<float>& y, const GbdtOptions& options,
                    const std::function<void(int round, double holdout_logloss)>& progress = {});
  bool trained() const;
  int rounds() const { return rounds_; }

  // Calibrated P(y = 1) for every row.
  std::vector<double> Predict(const Matrix& x) const;
  // Per-feature contributions to the raw margin of each row (cols + 1 values
  // per row; the last is the bias), row-major.
  std::vector<float> Contributions(const Matrix& x) const;

  std::string Serialize() const;  // opaque bytes, versioned
  static Gbdt Deserialize(const std::string& bytes);

 private:
  std::vector<float> Margins(const Matrix& x) const;
  // XGBoosterPredict with option_mask on x, under the lock; what names it in errors.
  std::vector<float> Run(const Matrix& x, int option_mask, const char* what) const;
  void* booster_ = nullptr;  // BoosterHandle, owned
  size_t cols_ = 0;
  int rounds_ = 0;
  double platt_a_ = 1, platt_b_ = 0;  // p = sigmoid(a * margin + b)
  std::unique_ptr<std::mutex> mu_;
};

class Logistic {
 public:
  static Logistic Train(const Matrix& x, const std::vector<float>& y, double l2 = 1.0);
  std::vector<double> Predict(const Matrix& x) const;
  double PredictRow(const float* row) const;
  // coefficient_j * standardised x_j for one row (the explanation).
  void Contributions(const float* row, std::vector<float>* out) const;
  const std::vector<double>& coefficients() const { return w_; }

  std::string Serialize() const;
  static Logistic Deserialize(const std::string& bytes);

 private:
  std::vector<double> mean_, scale_, w_;
  double b_ = 0;
};

double Sigmoid(double z);

}  // namespace tailor::dna
