// Off-policy evaluation: what a candidate policy would have earned on the
// decisions a logging policy made, from the logging policy's propensities.
//
// Pure and engine-independent: the caller (tools/eval_policy.cc) replays each
// logged decision through the candidate and hands over one OpeSample per
// decision; Evaluate returns the three estimators with 95% intervals.
//
// Per decision i, with logged action a_i, logged propensity mu_i =
// mu(a_i | x_i) > 0, reward r_i, and the candidate's probability of the
// logged action pi_i = pi(a_i | x_i):
//   w_i   = pi_i / mu_i                        importance weight
//   IPS   = mean(w_i r_i)                      unbiased when mu > 0 wherever pi > 0
//   SNIPS = sum(w_i r_i) / sum(w_i)            biased O(1/n), invariant to scaling w
//   DR    = mean(dm_i + w_i (r_i - qlog_i))    qlog_i = q(x_i, a_i), the direct
//                                              model's reward of the logged action;
//                                              dm_i = E_pi q(x_i, .), its reward
//                                              under the candidate
// DR is unbiased when either the propensities or the model are right; with a
// perfect model (q = the expected reward) its terms vary only with the
// reward's own noise and x.
//
// Intervals (95%, normal): IPS and DR by the CLT on their per-decision terms
// (mean +- 1.96 sd / sqrt(n)); SNIPS by the delta method for a ratio:
// se^2 = sum(w_i^2 (r_i - SNIPS)^2) / (sum w_i)^2.
//
// A stochastic candidate may pass its sampled pick instead of its
// probabilities: pi_i = 1 when its sampled pick is the logged action, else 0,
// and dm_i = q of its sampled pick. Both are unbiased for the exact values
// (their expectation over the candidate's draw), at some extra variance.
//
// Effective sample size: ESS = (sum w)^2 / sum w^2, the number of decisions
// an on-policy sample of the same precision would hold. Overlap is called
// poor (a warning, never an error) when ESS < kMinEssFraction x decisions or
// ESS < kMinEss: the normal interval then understates the error.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace tailor::learning {

struct OpeSample {
  double weight = 0;        // pi(a | x) / mu(a | x) of the logged action a
  double reward = 0;        // what the logged action earned
  double dm_logged = 0;     // the direct model's reward of the logged action
  double dm_candidate = 0;  // the direct model's reward under the candidate
};

struct OpeEstimate {
  double value = 0;
  double se = 0;
  double lo = 0, hi = 0;  // the 95% interval
};

struct OpeResult {
  OpeEstimate ips, snips, dr;
  double ess = 0;
  // E[w] = 1 when the propensities are right and the logger showed every
  // action the candidate picks; weight_se is its standard error.
  double weight_mean = 0, weight_se = 0;
  size_t decisions = 0;
  size_t matched = 0;  // decisions with weight > 0
  // Matched decisions with a non-zero reward: below kMinEvents the normal
  // interval of a rare outcome (conversions, revenue) is unreliable.
  size_t matched_events = 0;
};

constexpr double kZ95 = 1.959963984540054;
// Overlap thresholds (documented in README § Off-policy evaluation).
constexpr double kMinEssFraction = 0.02;
constexpr double kMinEss = 30;
constexpr size_t kMinEvents = 10;

OpeResult Evaluate(std::span<const OpeSample> samples);

// ESS = (sum w)^2 / sum w^2 (0 when every weight is 0).
double EffectiveSampleSize(std::span<const OpeSample> samples);

// Whether ESS is below the overlap thresholds for this many decisions.
bool PoorOverlap(double ess, size_t decisions);

// {"value", "ci": [lo, hi], "se"}.
nlohmann::json OpeEstimateJson(const OpeEstimate& e);

}  // namespace tailor::learning
