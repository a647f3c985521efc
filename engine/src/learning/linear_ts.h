// Linear Thompson sampling (Agrawal and Goyal 2013): one Bayesian linear
// model per arm (an offer) over the decision's context features.
//
// Model of arm a: reward = x . theta_a + noise, prior theta_a ~ N(0, I /
// prior_precision). After updates (x_t, r_t, w_t):
//   A = prior_precision I + sum w_t x_t x_t^T,  b = sum w_t r_t x_t,
//   mu = A^-1 b,  and Thompson draws theta ~ N(mu, v^2 A^-1), v = noise_sd.
// A's Cholesky factor L is kept current by a rank-one update per Update
// (O(d^2)), never refactored.
//
// A decision needs only the scalar x . theta for its own context x, and for
// theta ~ N(mu, v^2 A^-1) that is exactly N(x . mu, v^2 |L^-1 x|^2): Predict
// returns that mean and standard deviation (one triangular solve, O(d^2)),
// and the policy draws the scalar, so a draw costs O(1) instead of O(d^2).
// SampleTheta draws the whole vector (tests, offline tools).
//
// Include a constant 1 feature (FeatureLayout::kBias) so that an arm learns
// its base rate. Rewards are clicks (0/1) by default; the policy clamps a
// drawn prediction to [0, 1] and uses it in place of P.
//
// Thread safety: each arm has a shared_mutex; Predict and SampleTheta take it
// shared (decisions run concurrently), Update exclusive. LinearTsModel keeps
// arms by id; an arm, once created, lives as long as the model, so pointers
// from Arm()/Find() stay valid.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>

#include "learning/random.h"

namespace tailor::learning {

class LinearTsArm {
 public:
  explicit LinearTsArm(size_t dim, double prior_precision = 1.0, double noise_sd = 0.5);
  ~LinearTsArm();
  LinearTsArm(const LinearTsArm&) = delete;
  LinearTsArm& operator=(const LinearTsArm&) = delete;

  // Adds one observation with weight w > 0. False (and no change) when x has
  // the wrong length or x, reward or weight is not finite.
  bool Update(std::span<const float> x, double reward, double weight = 1.0);

  // Adds a reward to an observation Update already counted (with reward 0):
  // b += reward x, A unchanged. Responses arrive after their impression.
  bool AddReward(std::span<const float> x, double reward);

  struct Prediction {
    double mean = 0;  // x . mu
    double sd = 0;    // noise_sd * sqrt(x^T A^-1 x)
  };
  // False when x has the wrong length.
  bool Predict(std::span<const float> x, Prediction* out) const;

  // theta ~ N(mu, v^2 A^-1) into out (dim() values). False on a wrong length.
  bool SampleTheta(Rng& rng, std::span<double> out) const;

  size_t dim() const { return dim_; }
  uint64_t updates() const;

 private:
  struct State;  // Eigen lives in linear_ts.cc only
  const size_t dim_;
  const double noise_sd_;
  mutable std::shared_mutex mu_;
  std::unique_ptr<State> s_;
};

class LinearTsModel {
 public:
  explicit LinearTsModel(size_t dim, double prior_precision = 1.0, double noise_sd = 0.5);

  // The arm of an id, created with the model's prior on first use.
  LinearTsArm& Arm(std::string_view id);
  // nullptr when the id has no arm yet (the policy then falls back to the
  // candidate's Beta posterior).
  const LinearTsArm* Find(std::string_view id) const;
  size_t dim() const { return dim_; }

 private:
  const size_t dim_;
  const double prior_precision_, noise_sd_;
  mutable std::shared_mutex mu_;
  std::map<std::string, std::unique_ptr<LinearTsArm>, std::less<>> arms_;
};

}  // namespace tailor::learning
