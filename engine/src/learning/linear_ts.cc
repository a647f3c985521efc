#include "learning/linear_ts.h"

#include <Eigen/Cholesky>
#include <Eigen/Core>

#include <cmath>
#include <mutex>

namespace tailor::learning {

struct LinearTsArm::State {
  Eigen::LLT<Eigen::MatrixXd> llt;  // of A
  Eigen::VectorXd b, mu;
  uint64_t updates = 0;
};

namespace {

// Per-thread workspace for Predict: no allocation once a thread has seen the
// dimension.
Eigen::VectorXd& Workspace(size_t dim) {
  thread_local Eigen::VectorXd v;
  if (static_cast<size_t>(v.size()) != dim) v.resize(static_cast<Eigen::Index>(dim));
  return v;
}

void Load(std::span<const float> x, Eigen::VectorXd* out) {
  for (size_t i = 0; i < x.size(); ++i) (*out)[static_cast<Eigen::Index>(i)] = x[i];
}

}  // namespace

LinearTsArm::LinearTsArm(size_t dim, double prior_precision, double noise_sd)
    : dim_(dim), noise_sd_(noise_sd), s_(std::make_unique<State>()) {
  const auto d = static_cast<Eigen::Index>(dim);
  const double lambda = prior_precision > 0 ? prior_precision : 1.0;
  s_->llt.compute(Eigen::MatrixXd::Identity(d, d) * lambda);
  s_->b = Eigen::VectorXd::Zero(d);
  s_->mu = Eigen::VectorXd::Zero(d);
}

LinearTsArm::~LinearTsArm() = default;

bool LinearTsArm::Update(std::span<const float> x, double reward, double weight) {
  if (x.size() != dim_ || !std::isfinite(reward) || !std::isfinite(weight) || weight <= 0)
    return false;
  Eigen::VectorXd v(static_cast<Eigen::Index>(dim_));
  Load(x, &v);
  if (!v.allFinite()) return false;
  std::unique_lock lock(mu_);
  s_->llt.rankUpdate(v, weight);  // A += w x x^T, the factor kept current
  s_->b += (weight * reward) * v;
  s_->mu = s_->llt.solve(s_->b);
  ++s_->updates;
  return true;
}

bool LinearTsArm::AddReward(std::span<const float> x, double reward) {
  if (x.size() != dim_ || !std::isfinite(reward)) return false;
  Eigen::VectorXd v(static_cast<Eigen::Index>(dim_));
  Load(x, &v);
  if (!v.allFinite()) return false;
  std::unique_lock lock(mu_);
  s_->b += reward * v;
  s_->mu = s_->llt.solve(s_->b);
  return true;
}

bool LinearTsArm::Predict(std::span<const float> x, Prediction* out) const {
  if (x.size() != dim_) return false;
  Eigen::VectorXd& y = Workspace(dim_);
  Load(x, &y);
  std::shared_lock lock(mu_);
  const double mean = y.dot(s_->mu);
  s_->llt.matrixL().solveInPlace(y);  // y = L^-1 x, so |y|^2 = x^T A^-1 x
  out->mean = mean;
  out->sd = noise_sd_ * y.norm();
  return true;
}

bool LinearTsArm::SampleTheta(Rng& rng, std::span<double> out) const {
  if (out.size() != dim_) return false;
  Eigen::VectorXd z(static_cast<Eigen::Index>(dim_));
  for (Eigen::Index i = 0; i < z.size(); ++i) z[i] = rng.Normal();
  std::shared_lock lock(mu_);
  // L^-T z has covariance L^-T L^-1 = A^-1.
  s_->llt.matrixU().solveInPlace(z);
  Eigen::Map<Eigen::VectorXd>(out.data(), z.size()) = s_->mu + noise_sd_ * z;
  return true;
}

uint64_t LinearTsArm::updates() const {
  std::shared_lock lock(mu_);
  return s_->updates;
}

LinearTsModel::LinearTsModel(size_t dim, double prior_precision, double noise_sd)
    : dim_(dim), prior_precision_(prior_precision), noise_sd_(noise_sd) {}

LinearTsArm& LinearTsModel::Arm(std::string_view id) {
  {
    std::shared_lock lock(mu_);
    if (auto it = arms_.find(id); it != arms_.end()) return *it->second;
  }
  std::unique_lock lock(mu_);
  auto [it, inserted] = arms_.try_emplace(std::string(id));
  if (inserted) it->second = std::make_unique<LinearTsArm>(dim_, prior_precision_, noise_sd_);
  return *it->second;
}

const LinearTsArm* LinearTsModel::Find(std::string_view id) const {
  std::shared_lock lock(mu_);
  auto it = arms_.find(id);
  return it == arms_.end() ? nullptr : it->second.get();
}

}  // namespace tailor::learning
