#include "dna/gbdt.h"

#include <xgboost/c_api.h>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <sstream>
#include <stdexcept>
#include <utility>

namespace tailor::dna {
namespace {

constexpr char kGbdtMagic[] = "tailor-gbdt 1\n";
constexpr char kLogisticMagic[] = "tailor-logistic 1\n";

void Check(int rc, const char* what) {
  if (rc != 0) throw std::runtime_error(std::string("xgboost ") + what + ": " + XGBGetLastError());
}

// Owns a DMatrixHandle.
struct DMatrix {
  DMatrixHandle h = nullptr;
  DMatrix(const float* data, size_t rows, size_t cols, const float* labels) {
    Check(XGDMatrixCreateFromMat(data, rows, cols, std::numeric_limits<float>::quiet_NaN(), &h),
          "DMatrix");
    if (labels != nullptr) Check(XGDMatrixSetFloatInfo(h, "label", labels, rows), "labels");
  }
  ~DMatrix() {
    if (h != nullptr) XGDMatrixFree(h);
  }
  DMatrix(const DMatrix&) = delete;
  DMatrix& operator=(const DMatrix&) = delete;
};

// Fits p = sigmoid(a * m + b) to labels by Newton's method (Platt scaling),
// with Platt's smoothed targets so that a separable holdout stays finite.
void FitPlatt(const std::vector<float>& m, const std::vector<float>& y, double* a, double* b) {
  double pos = 0;
  for (float v : y) pos += v;
  const double neg = static_cast<double>(y.size()) - pos;
  const double hi = (pos + 1) / (pos + 2), lo = 1 / (neg + 2);
  *a = 1;
  *b = 0;
  for (int it = 0; it < 50; ++it) {
    double g0 = 0, g1 = 0, h00 = 1e-9, h01 = 0, h11 = 1e-9;
    for (size_t i = 0; i < m.size(); ++i) {
      const double t = y[i] > 0.5f ? hi : lo;
      const double p = Sigmoid(*a * m[i] + *b);
      const double w = p * (1 - p);
      g0 += (p - t) * m[i];
      g1 += p - t;
      h00 += w * m[i] * m[i];
      h01 += w * m[i];
      h11 += w;
    }
    const double det = h00 * h11 - h01 * h01;
    if (!(std::abs(det) > 1e-12)) break;
    const double da = (h11 * g0 - h01 * g1) / det, db = (h00 * g1 - h01 * g0) / det;
    *a -= da;
    *b -= db;
    if (std::abs(da) + std::abs(db) < 1e-9) break;
  }
  if (!std::isfinite(*a) || !std::isfinite(*b)) *a = 1, *b = 0;
}

template <typename T>
void Put(std::string& out, const T& v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}
template <typename T>
T Take(const std::string& in, size_t* pos) {
  if (*pos + sizeof(T) > in.size()) throw std::runtime_error("truncated model");
  T v;
  std::memcpy(&v, in.data() + *pos, sizeof v);
  *pos += sizeof v;
  return v;
}

}  // namespace

double Sigmoid(double z) {
  return z >= 0 ? 1 / (1 + std::exp(-z)) : std::exp(z) / (1 + std::exp(z));
}

Gbdt::Gbdt() : mu_(std::make_unique<std::mutex>()) {}
Gbdt::~Gbdt() {
  if (booster_ != nullptr) XGBoosterFree(booster_);
}
Gbdt::Gbdt(Gbdt&& o) noexcept
    : booster_(std::exchange(o.booster_, nullptr)),
      cols_(o.cols_),
      rounds_(o.rounds_),
      platt_a_(o.platt_a_),
      platt_b_(o.platt_b_),
      mu_(std::move(o.mu_)) {}
Gbdt& Gbdt::operator=(Gbdt&& o) noexcept {
  if (this != &o) {
    if (booster_ != nullptr) XGBoosterFree(booster_);
    booster_ = std::exchange(o.booster_, nullptr);
    cols_ = o.cols_;
    rounds_ = o.rounds_;
    platt_a_ = o.platt_a_;
    platt_b_ = o.platt_b_;
    mu_ = std::move(o.mu_);
  }
  return *this;
}

bool Gbdt::trained() const { return booster_ != nullptr; }

Gbdt Gbdt::Train(const Matrix& x, const std::vector<float>& y, const GbdtOptions& o,
                 const std::function<void(int, double)>& progress) {
  if (x.rows != y.size() || x.rows < 10) throw std::runtime_error("gbdt: need >= 10 labelled rows");
  // Stratified holdout, so that a rare class is present on both sides.
  std::vector<size_t> pos, neg;
  for (size_t i = 0; i < y.size(); ++i) (y[i] > 0.5f ? pos : neg).push_back(i);
  std::mt19937_64 rng(o.seed);
  std::shuffle(pos.begin(), pos.end(), rng);
  std::shuffle(neg.begin(), neg.end(), rng);
  std::vector<size_t> fit, held;
  for (const auto* part : {&pos, &neg}) {
    const auto n_held =
        static_cast<size_t>(std::ceil(static_cast<double>(part->size()) * o.holdout));
    for (size_t k = 0; k < part->size(); ++k) ((k < n_held) ? held : fit).push_back((*part)[k]);
  }
  if (fit.empty() || held.empty()) throw std::runtime_error("gbdt: too few rows to hold some out");
  auto gather = [&](const std::vector<size_t>& idx, std::vector<float>* data,
                    std::vector<float>* labels) {
    data->resize(idx.size() * x.cols);
    labels->resize(idx.size());
    for (size_t k = 0; k < idx.size(); ++k) {
      std::copy_n(x.row(idx[k]), x.cols, data->data() + k * x.cols);
      (*labels)[k] = y[idx[k]];
    }
  };
  std::vector<float> fx, fy, hx, hy;
  gather(fit, &fx, &fy);
  gather(held, &hx, &hy);
  DMatrix dfit(fx.data(), fit.size(), x.cols, fy.data());
  DMatrix dheld(hx.data(), held.size(), x.cols, hy.data());

  BoosterHandle b = nullptr;
  // Both matrices in the booster's cache: predicting the holdout each round
  // then costs one tree, not all of them.
  DMatrixHandle cache[2] = {dfit.h, dheld.h};
  Check(XGBoosterCreate(cache, 2, &b), "create");
  auto set = [&](const char* k, const std::string& v) {
    Check(XGBoosterSetParam(b, k, v.c_str()), k);
  };
  auto configure = [&] {
    set("objective", "binary:logistic");
    set("tree_method", "hist");
    set("eta", std::to_string(o.eta));
    set("max_depth", std::to_string(o.max_depth));
    set("min_child_weight", std::to_string(o.min_child_weight));
    set("subsample", std::to_string(o.subsample));
    set("colsample_bytree", std::to_string(o.colsample));
    set("lambda", std::to_string(o.lambda));
    set("alpha", std::to_string(o.alpha));
    set("gamma", std::to_string(o.gamma));
    set("nthread", std::to_string(o.threads));
    set("seed", std::to_string(o.seed));
    set("verbosity", "0");
  };
  try {
    configure();
    int best_round = 0, since = 0;
    double best = 1e300;
    for (int r = 0; r < o.max_rounds && since < o.early_stopping; ++r) {
      Check(XGBoosterUpdateOneIter(b, r, dfit.h), "update");
      bst_ulong n = 0;
      const float* p = nullptr;
      Check(XGBoosterPredict(b, dheld.h, 0, 0, 0, &n, &p), "predict");
      std::vector<double> pd(p, p + n);
      const double ll = LogLoss(hy, pd);
      if (ll < best - 1e-7) {
        best = ll;
        best_round = r + 1;
        since = 0;
      } else {
        ++since;
      }
      if (progress) progress(r + 1, ll);
    }
    Gbdt g;
    Check(XGBoosterSlice(b, 0, best_round, 1, &g.booster_), "slice");
    g.cols_ = x.cols;
    g.rounds_ = best_round;
    // Calibrate on the holdout the trees never trained on.
    bst_ulong n = 0;
    const float* m = nullptr;
    Check(XGBoosterPredict(g.booster_, dheld.h, 1, 0, 0, &n, &m), "predict margin");
    FitPlatt(std::vector<float>(m, m + n), hy, &g.platt_a_, &g.platt_b_);
    XGBoosterFree(b);
    b = nullptr;
    if (o.refit) {
      DMatrix dall(x.v.data(), x.rows, x.cols, y.data());
      BoosterHandle full = nullptr;
      Check(XGBoosterCreate(&dall.h, 1, &full), "create");
      b = full;  // freed by the catch on failure
      configure();
      const int rounds = static_cast<int>(std::lround(best_round / (1 - o.holdout)));
      for (int r = 0; r < rounds; ++r) Check(XGBoosterUpdateOneIter(b, r, dall.h), "update");
      XGBoosterFree(g.booster_);
      g.booster_ = b;
      b = nullptr;
      g.rounds_ = rounds;
    }
    // Served one customer at a time: one thread, as after Deserialize.
    Check(XGBoosterSetParam(g.booster_, "nthread", "1"), "nthread");
    return g;
  } catch (...) {
    if (b != nullptr) XGBoosterFree(b);
    throw;
  }
}

std::vector<float> Gbdt::Run(const Matrix& x, int option_mask, const char* what) const {
  if (!trained()) throw std::runtime_error("gbdt: model not trained");
  if (x.cols != cols_) throw std::runtime_error("gbdt: feature count mismatch");
  if (x.rows == 0) return {};
  DMatrix d(x.v.data(), x.rows, x.cols, nullptr);
  std::lock_guard<std::mutex> lock(*mu_);
  bst_ulong n = 0;
  const float* out = nullptr;
  Check(XGBoosterPredict(booster_, d.h, option_mask, 0, 0, &n, &out), what);
  return std::vector<float>(out, out + n);
}

// XGBoosterPredict option masks: 1 = raw margins, 4 = feature contributions.
std::vector<float> Gbdt::Margins(const Matrix& x) const { return Run(x, 1, "predict"); }

std::vector<double> Gbdt::Predict(const Matrix& x) const {
  const std::vector<float> m = Margins(x);
  std::vector<double> p(m.size());
  for (size_t i = 0; i < m.size(); ++i) p[i] = Sigmoid(platt_a_ * m[i] + platt_b_);
  return p;
}

std::vector<float> Gbdt::Contributions(const Matrix& x) const { return Run(x, 4, "contributions"); }

std::string Gbdt::Serialize() const {
  if (!trained()) throw std::runtime_error("gbdt: model not trained");
  bst_ulong len = 0;
  const char* buf = nullptr;
  {
    std::lock_guard<std::mutex> lock(*mu_);
    Check(XGBoosterSaveModelToBuffer(booster_, R"({"format": "ubj"})", &len, &buf), "save");
  }
  std::string out(kGbdtMagic);
  Put(out, static_cast<uint64_t>(cols_));
  Put(out, static_cast<int32_t>(rounds_));
  Put(out, platt_a_);
  Put(out, platt_b_);
  Put(out, static_cast<uint64_t>(len));
  out.append(buf, len);
  return out;
}

Gbdt Gbdt::Deserialize(const std::string& bytes) {
  if (bytes.rfind(kGbdtMagic, 0) != 0) throw std::runtime_error("not a gbdt model");
  size_t pos = sizeof kGbdtMagic - 1;
  Gbdt g;
  g.cols_ = Take<uint64_t>(bytes, &pos);
  g.rounds_ = Take<int32_t>(bytes, &pos);
  g.platt_a_ = Take<double>(bytes, &pos);
  g.platt_b_ = Take<double>(bytes, &pos);
  const auto len = Take<uint64_t>(bytes, &pos);
  if (pos + len != bytes.size() || g.cols_ == 0 || g.cols_ > 1000000)
    throw std::runtime_error("corrupt gbdt model");
  Check(XGBoosterCreate(nullptr, 0, &g.booster_), "create");
  Check(XGBoosterLoadModelFromBuffer(g.booster_, bytes.data() + pos, len), "load");
  Check(XGBoosterSetParam(g.booster_, "nthread", "1"), "nthread");
  return g;
}

Logistic Logistic::Train(const Matrix& x, const std::vector<float>& y, double l2) {
  const size_t n = x.rows, d = x.cols;
  if (n != y.size() || n == 0) throw std::runtime_error("logistic: no labelled rows");
  Logistic m;
  m.mean_.assign(d, 0);
  m.scale_.assign(d, 1);
  for (size_t j = 0; j < d; ++j) {
    double s = 0, s2 = 0, c = 0;
    for (size_t i = 0; i < n; ++i) {
      const float v = x.row(i)[j];
      if (std::isnan(v)) continue;
      s += v;
      s2 += static_cast<double>(v) * v;
      ++c;
    }
    if (c > 0) {
      m.mean_[j] = s / c;
      const double var = s2 / c - m.mean_[j] * m.mean_[j];
      m.scale_[j] = var > 1e-12 ? std::sqrt(var) : 1;
    }
  }
  // Standardised design with a leading intercept column.
  Eigen::MatrixXd z(n, d + 1);
  for (size_t i = 0; i < n; ++i) {
    z(static_cast<Eigen::Index>(i), 0) = 1;
    for (size_t j = 0; j < d; ++j) {
      const float v = x.row(i)[j];
      z(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j + 1)) =
          std::isnan(v) ? 0 : (v - m.mean_[j]) / m.scale_[j];
    }
  }
  Eigen::VectorXd yv(n), w = Eigen::VectorXd::Zero(static_cast<Eigen::Index>(d + 1));
  for (size_t i = 0; i < n; ++i) yv(static_cast<Eigen::Index>(i)) = y[i];
  Eigen::VectorXd reg = Eigen::VectorXd::Constant(static_cast<Eigen::Index>(d + 1), l2);
  reg(0) = 0;  // the intercept is not shrunk
  for (int it = 0; it < 50; ++it) {
    const Eigen::VectorXd eta = z * w;
    Eigen::VectorXd p(static_cast<Eigen::Index>(n)), s(static_cast<Eigen::Index>(n));
    for (Eigen::Index i = 0; i < eta.size(); ++i) {
      p(i) = Sigmoid(eta(i));
      s(i) = std::max(p(i) * (1 - p(i)), 1e-10);
    }
    const Eigen::VectorXd g = z.transpose() * (p - yv) + reg.cwiseProduct(w);
    Eigen::MatrixXd h = z.transpose() * s.asDiagonal() * z;
    h.diagonal() += reg + Eigen::VectorXd::Constant(h.rows(), 1e-8);
    const Eigen::VectorXd step = h.ldlt().solve(g);
    w -= step;
    if (step.cwiseAbs().maxCoeff() < 1e-7) break;
  }
  m.b_ = w(0);
  m.w_.resize(d);
  for (size_t j = 0; j < d; ++j) m.w_[j] = w(static_cast<Eigen::Index>(j + 1));
  return m;
}

double Logistic::PredictRow(const float* row) const {
  double z = b_;
  for (size_t j = 0; j < w_.size(); ++j) {
    if (!std::isnan(row[j])) z += w_[j] * (row[j] - mean_[j]) / scale_[j];
  }
  return Sigmoid(z);
}

std::vector<double> Logistic::Predict(const Matrix& x) const {
  std::vector<double> p(x.rows);
  for (size_t i = 0; i < x.rows; ++i) p[i] = PredictRow(x.row(i));
  return p;
}

void Logistic::Contributions(const float* row, std::vector<float>* out) const {
  out->assign(w_.size(), 0);
  for (size_t j = 0; j < w_.size(); ++j) {
    if (!std::isnan(row[j]))
      (*out)[j] = static_cast<float>(w_[j] * (row[j] - mean_[j]) / scale_[j]);
  }
}

std::string Logistic::Serialize() const {
  std::string out(kLogisticMagic);
  Put(out, static_cast<uint64_t>(w_.size()));
  Put(out, b_);
  for (size_t j = 0; j < w_.size(); ++j) {
    Put(out, mean_[j]);
    Put(out, scale_[j]);
    Put(out, w_[j]);
  }
  return out;
}

Logistic Logistic::Deserialize(const std::string& bytes) {
  if (bytes.rfind(kLogisticMagic, 0) != 0) throw std::runtime_error("not a logistic model");
  size_t pos = sizeof kLogisticMagic - 1;
  Logistic m;
  const auto d = Take<uint64_t>(bytes, &pos);
  if (d > 1000000) throw std::runtime_error("corrupt logistic model");
  m.b_ = Take<double>(bytes, &pos);
  for (uint64_t j = 0; j < d; ++j) {
    m.mean_.push_back(Take<double>(bytes, &pos));
    m.scale_.push_back(Take<double>(bytes, &pos));
    m.w_.push_back(Take<double>(bytes, &pos));
  }
  if (pos != bytes.size()) throw std::runtime_error("corrupt logistic model");
  return m;
}

}  // namespace tailor::dna
