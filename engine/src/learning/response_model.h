// The calibrated P: per placement, an online logistic regression over the
// candidate features of learning/features.h giving P(click | shown).
//
// Before any response it answers the documented prior, the plugins' blend
// mapped to a click probability by Platt scaling,
//   P = sigmoid(kPriorSlope * blend + kPriorIntercept),
// because the weights start there: w[bias] = kPriorIntercept, w[blend] =
// kPriorSlope, all others 0. Training is MAP with an L2 penalty towards
// those starting weights, so a placement with few responses stays near the
// prior and one with many follows its data.
//
// Training is deterministic: per-coordinate AdaGrad SGD over examples in the
// order given. Labels arrive late, so Observe keeps each impression pending
// until it is clicked (trained as a positive at once) or its label window
// passes without a click (trained as a negative by Flush). A replay of the
// stored impressions and outcomes followed by Flush(now) rebuilds the model.
//
// Threads: the decide path reads a published immutable weight snapshot
// (weights(): one atomic shared_ptr load per decision, then a dot product per
// candidate); training holds a mutex and publishes a fresh snapshot after
// each Train / Flush / click.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "learning/features.h"
#include "model/feedback.h"

namespace tailor::learning {

// The prior's Platt constants (see response_model.cc for how they were
// fitted and the command that reproduces them).
extern const double kPriorSlope;
extern const double kPriorIntercept;

// sigmoid(kPriorSlope * blend + kPriorIntercept).
double PriorClickProbability(double blend);

struct ModelWeights {
  std::vector<float> w;
  int64_t examples = 0;  // trained so far
  int64_t positives = 0;
};

// P = sigmoid(w . x); x has w.size() entries (a shorter x: the missing read 0).
double PredictClick(const ModelWeights& m, const float* x, size_t n);

struct Example {
  std::vector<float> x;
  bool clicked = false;
  double weight = 1.0;
};

struct ModelOptions {
  // The starting (and L2 anchor) weights: bias and blend slope. The click
  // model starts at the Platt prior; another model (conversion given a click)
  // may start at a constant rate.
  double prior_intercept = kPriorIntercept;
  double prior_slope = kPriorSlope;
  double learning_rate = 0.1;  // AdaGrad step
  double l2 = 1e-4;            // towards the prior weights, per example
  // An impression with no click this long after it is a negative.
  int64_t label_window_ms = 24LL * 3600 * 1000;
  // Pending impressions kept at most; older ones become negatives early.
  size_t max_pending = 1 << 20;
  // The outcome that labels a pending impression positive: a click for the
  // click model, a conversion for a model of conversion given a click.
  Outcome::Kind positive = Outcome::Kind::kClick;
};

class ResponseModel {
 public:
  ResponseModel(size_t features, ModelOptions options = {});
  ResponseModel(const ResponseModel&) = delete;
  ResponseModel& operator=(const ResponseModel&) = delete;

  // The snapshot to score a decision's candidates with (never null).
  std::shared_ptr<const ModelWeights> weights() const { return published_.load(); }
  // One-off convenience: weights() then PredictClick.
  double Predict(const float* x) const;

  // Trains on examples in order and publishes.
  void Train(const std::vector<Example>& examples);

  // Online labelling (see the header comment). Impressions without features
  // (Impression::features empty) are ignored.
  void Observe(const Impression& imp);
  void Observe(const Outcome& out);
  // Trains the pending impressions older than now_ms - label_window_ms as
  // negatives; returns how many.
  size_t Flush(int64_t now_ms);

  size_t features() const { return n_; }
  size_t pending() const;

 private:
  void Step(const float* x, size_t n, bool y, double weight);  // mu_ held
  void Publish();                                              // mu_ held
  static std::string PendingKey(const Impression& imp);

  const size_t n_;
  const ModelOptions options_;
  mutable std::mutex mu_;
  std::vector<double> w_, w0_, g2_;
  int64_t examples_ = 0, positives_ = 0;
  struct Pending {
    std::string key;
    int64_t ts_ms;
    std::vector<float> x;
    bool done;
  };
  std::deque<Pending> pending_;                         // in arrival order
  std::unordered_map<std::string, size_t> pending_at_;  // key -> index + popped_
  size_t popped_ = 0;
  std::atomic<std::shared_ptr<const ModelWeights>> published_;
};

}  // namespace tailor::learning
