#include "learning/response_model.h"

#include <algorithm>
#include <cmath>

#include "learning/response_stats.h"

namespace tailor::learning {

// The prior: Platt scaling of the plugins' blend to P(click), fitted once on
// the demo world's history by tools/fit_response_prior.py: `tailor demo`
// (seed 42), the last day held out, plugins trained on the rest, `tailor
// decide` on placement home for a random sample of customers; a (customer,
// offer) pair is a positive when the customer clicked, carted or bought in
// the offer's category on the held-out day; a, b by Newton's method.
//   python3 tools/fit_response_prior.py --build build --customers 300 --jobs 3
// Fit of 2026-12-07 (demo ending that day): 300 customers, 3001 pairs, 40
// positive (base rate 1.3%, mean blend 0.28); few positives, so the slope is
// rough: the model replaces it as soon as a placement has responses.
const double kPriorSlope = 4.07;
const double kPriorIntercept = -5.61;

namespace {

double Sigmoid(double z) {
  if (z >= 0) return 1.0 / (1.0 + std::exp(-z));
  double e = std::exp(z);
  return e / (1.0 + e);
}

}  // namespace

double PriorClickProbability(double blend) {
  return Sigmoid(kPriorSlope * blend + kPriorIntercept);
}

double PredictClick(const ModelWeights& m, const float* x, size_t n) {
  size_t k = std::min(n, m.w.size());
  double z = 0;
  for (size_t i = 0; i < k; ++i) z += static_cast<double>(m.w[i]) * x[i];
  return Sigmoid(z);
}

ResponseModel::ResponseModel(size_t features, ModelOptions options)
    : n_(std::max<size_t>(features, FeatureLayout::kBlend + 1)),
      options_(options),
      w_(n_, 0.0),
      w0_(n_, 0.0),
      g2_(n_, 0.0) {
  w0_[FeatureLayout::kBias] = options.prior_intercept;
  w0_[FeatureLayout::kBlend] = options.prior_slope;
  w_ = w0_;
  std::lock_guard lock(mu_);
  Publish();
}

double ResponseModel::Predict(const float* x) const {
  auto w = weights();
  return PredictClick(*w, x, n_);
}

void ResponseModel::Step(const float* x, size_t n, bool y, double weight) {
  size_t k = std::min(n, n_);
  double z = 0;
  for (size_t i = 0; i < k; ++i) z += w_[i] * x[i];
  double err = (Sigmoid(z) - (y ? 1.0 : 0.0)) * weight;
  for (size_t i = 0; i < n_; ++i) {
    double xi = i < k ? x[i] : 0.0;
    double g = err * xi + options_.l2 * (w_[i] - w0_[i]);
    if (g == 0) continue;
    g2_[i] += g * g;
    w_[i] -= options_.learning_rate * g / (std::sqrt(g2_[i]) + 1e-8);
  }
  ++examples_;
  positives_ += y ? 1 : 0;
}

void ResponseModel::Publish() {
  auto m = std::make_shared<ModelWeights>();
  m->w.assign(w_.begin(), w_.end());
  m->examples = examples_;
  m->positives = positives_;
  published_.store(std::move(m));
}

void ResponseModel::Train(const std::vector<Example>& examples) {
  std::lock_guard lock(mu_);
  for (const Example& e : examples) Step(e.x.data(), e.x.size(), e.clicked, e.weight);
  Publish();
}

std::string ResponseModel::PendingKey(const Impression& imp) {
  std::string k = imp.decision_id;
  k += '\x1f';
  k.append(ResponseKey(imp));
  return k;
}

void ResponseModel::Observe(const Impression& imp) {
  if (imp.features.empty()) return;
  std::lock_guard lock(mu_);
  std::string key = PendingKey(imp);
  if (pending_at_.count(key)) return;  // the same impression twice
  // Full: the oldest becomes a negative early rather than memory growing.
  bool trained = false;
  while (pending_.size() >= options_.max_pending && !pending_.empty()) {
    Pending& p = pending_.front();
    if (!p.done) {
      Step(p.x.data(), p.x.size(), false, 1.0);
      pending_at_.erase(p.key);
      trained = true;
    }
    pending_.pop_front();
    ++popped_;
  }
  pending_at_.emplace(key, popped_ + pending_.size());
  pending_.push_back(Pending{std::move(key), imp.ts_ms, imp.features, false});
  if (trained) Publish();
}

void ResponseModel::Observe(const Outcome& out) {
  if (out.kind != options_.positive) return;  // not what this model predicts
  std::lock_guard lock(mu_);
  auto it = pending_at_.find(PendingKey(out.impression));
  if (it != pending_at_.end()) {
    Pending& p = pending_[it->second - popped_];
    Step(p.x.data(), p.x.size(), true, 1.0);
    p.done = true;
    p.x = {};
    pending_at_.erase(it);
    Publish();
  }
  // Otherwise the impression was never pending (no features, or reported
  // only with the click) or was already trained as a negative: its click
  // came after the label window, which is what the window means.
}

size_t ResponseModel::Flush(int64_t now_ms) {
  std::lock_guard lock(mu_);
  size_t trained = 0;
  while (!pending_.empty()) {
    Pending& p = pending_.front();
    if (!p.done) {
      if (p.ts_ms > now_ms - options_.label_window_ms) break;
      Step(p.x.data(), p.x.size(), false, 1.0);
      pending_at_.erase(p.key);
      ++trained;
    }
    pending_.pop_front();
    ++popped_;
  }
  if (trained) Publish();
  return trained;
}

size_t ResponseModel::pending() const {
  std::lock_guard lock(mu_);
  return pending_at_.size();
}

}  // namespace tailor::learning
