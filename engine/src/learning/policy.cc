#include "learning/policy.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "learning/linear_ts.h"

namespace tailor::learning {
namespace {

using Kind = PolicyConfig::Kind;

constexpr double kHeadSds = 3.0;  // optimistic bound: mean + 3 sd

size_t HeadSize(size_t limit) { return std::max<size_t>(4 * limit, 20); }

double CleanFactors(double f) { return f > 0 && std::isfinite(f) ? f : 0; }

// Mean and spread of a candidate's p, without the Beta sampler's constants
// (those are made for the head only).
template <typename Dist>
Dist Moments(const PolicyConfig& config, const PolicyCandidate& c) {
  Dist d;
  d.factors = CleanFactors(c.factors);
  if (config.kind == Kind::kLinearTs && c.arm != nullptr) {
    LinearTsArm::Prediction p;
    if (c.arm->Predict(c.features, &p) && std::isfinite(p.mean) && std::isfinite(p.sd)) {
      d.normal = true;
      d.mean = p.mean;
      d.sd = p.sd;
      return d;
    }
  }
  const double a = ClampShape(c.alpha), b = ClampShape(c.beta), n = a + b;
  d.mean = a / n;
  d.sd = std::sqrt(a * b / (n * n * (n + 1)));
  return d;
}

// One draw of p * (C*V*L). A linear model's draw is clamped to at most 1;
// one below 0 scores itself (negative), so that it ranks below every draw
// in [0, 1] and candidates whose draws are all negative still rank by their
// draws instead of tying at 0.
template <typename Dist>
double Draw(const Dist& d, Rng& rng) {
  if (d.normal) {
    const double p = d.mean + d.sd * rng.Normal();
    return p < 0 ? p : std::min(p, 1.0) * d.factors;
  }
  return SampleBeta(d.beta, rng) * d.factors;
}

constexpr double kNone = -std::numeric_limits<double>::infinity();

// The best untaken position of one row of draws; ties go to the earlier
// position (the greedy order), as in the decision itself.
uint32_t BestRemaining(const double* row, const uint8_t* taken, size_t h) {
  double best = kNone;
  uint32_t at = 0;
  for (size_t j = 0; j < h; ++j) {
    if (!taken[j] && row[j] > best) {
      best = row[j];
      at = static_cast<uint32_t>(j);
    }
  }
  return at;
}

}  // namespace

std::string_view PolicyKindName(PolicyConfig::Kind kind) {
  switch (kind) {
    case Kind::kGreedy:
      return "greedy";
    case Kind::kThompson:
      return "thompson";
    case Kind::kLinearTs:
      return "linear_ts";
    case Kind::kEpsilon:
      return "epsilon";
  }
  return "greedy";
}

bool ParsePolicyKind(std::string_view name, PolicyConfig::Kind* out) {
  for (Kind k : {Kind::kGreedy, Kind::kThompson, Kind::kLinearTs, Kind::kEpsilon}) {
    if (PolicyKindName(k) == name) {
      *out = k;
      return true;
    }
  }
  return false;
}

namespace {

void ChooseGreedy(size_t k, std::vector<PolicyPick>* picks) {
  for (size_t r = 0; r < k; ++r) picks->push_back({static_cast<uint32_t>(r), 1.0, 0.0, false});
}

// At each position: with probability e a uniform pick among the m remaining,
// else the first remaining. pi = e/m, plus (1 - e) for the first remaining.
void ChooseEpsilon(double e, size_t n, size_t k, uint64_t seed, std::vector<uint32_t>* remaining,
                   std::vector<PolicyPick>* picks) {
  e = e > 0 ? std::min(e, 1.0) : 0.0;  // NaN reads 0
  Rng rng(seed);
  remaining->resize(n);
  std::iota(remaining->begin(), remaining->end(), 0u);
  for (size_t r = 0; r < k; ++r) {
    const auto m = static_cast<uint32_t>(remaining->size());
    uint32_t j = 0;
    if (e > 0 && rng.Uniform() < e) j = rng.Below(m);
    const double pi = e / m + (j == 0 ? 1 - e : 0.0);
    picks->push_back({(*remaining)[j], pi, 0.0, j != 0});
    remaining->erase(remaining->begin() + j);
  }
}

}  // namespace

PolicyResult Choose(const PolicyConfig& config, std::span<const PolicyCandidate> candidates,
                    size_t limit, uint64_t seed, PolicyScratch& s) {
  const size_t n = candidates.size();
  const size_t k = std::min(limit, n);
  s.picks_.clear();
  PolicyResult result;
  result.considered = static_cast<uint32_t>(n);
  if (k == 0 || config.kind == Kind::kGreedy) {
    ChooseGreedy(k, &s.picks_);
    result.shown = s.picks_;
    return result;
  }
  // Two independent streams: the decision's and the Monte Carlo draws'.
  uint64_t stream = seed;
  const uint64_t decide_seed = SplitMix64(&stream);
  const uint64_t mc_seed = SplitMix64(&stream);
  if (config.kind == Kind::kEpsilon) {
    ChooseEpsilon(config.exploration, n, k, decide_seed, &s.order_, &s.picks_);
    result.shown = s.picks_;
    return result;
  }

  // thompson / linear_ts. Moments of every candidate, then the head.
  s.dists_.resize(n);
  for (size_t i = 0; i < n; ++i) s.dists_[i] = Moments<PolicyScratch::Dist>(config, candidates[i]);
  std::vector<uint32_t>& head = s.order_;
  head.resize(n);
  std::iota(head.begin(), head.end(), 0u);
  if (const size_t cap = HeadSize(k); n > cap) {
    // The greedy picks always, then the best others by optimistic priority.
    s.bound_.resize(n);
    for (size_t i = k; i < n; ++i) {
      const PolicyScratch::Dist& d = s.dists_[i];
      s.bound_[i] = std::min(1.0, d.mean + kHeadSds * d.sd) * d.factors;
    }
    const auto better = [&](uint32_t x, uint32_t y) {
      return s.bound_[x] != s.bound_[y] ? s.bound_[x] > s.bound_[y] : x < y;
    };
    std::nth_element(head.begin() + k, head.begin() + cap, head.end(), better);
    head.resize(cap);
    std::sort(head.begin() + k, head.end());  // input (greedy) order
  }
  const size_t h = head.size();
  for (uint32_t i : head)
    if (!s.dists_[i].normal)
      s.dists_[i].beta = MakeBetaShape(candidates[i].alpha, candidates[i].beta);

  // The decision: a fresh draw of every remaining head candidate per position.
  Rng rng(decide_seed);
  s.shown_.assign(n, 0);
  s.taken_.assign(h, 0);
  s.pick_at_.clear();
  size_t first_remaining = 0;  // the greedy pick at this position
  for (size_t r = 0; r < k; ++r) {
    double best = kNone;
    uint32_t at = 0;
    for (size_t j = 0; j < h; ++j) {
      if (s.taken_[j]) continue;
      const double v = Draw(s.dists_[head[j]], rng);
      if (v > best) {
        best = v;
        at = static_cast<uint32_t>(j);
      }
    }
    while (s.shown_[first_remaining]) ++first_remaining;
    const uint32_t index = head[at];
    s.taken_[at] = 1;
    s.shown_[index] = 1;
    s.pick_at_.push_back(at);
    s.picks_.push_back({index, 0.0, 0.0, index != first_remaining});
  }

  // Propensities: S independent draws of every head candidate (one
  // candidate at a time, so its constants stay in registers); per position,
  // the share of draws whose best remaining candidate is the shown one. A
  // draw's best changes only when its best was the one just shown.
  const uint32_t samples = std::max<uint32_t>(config.samples, 1);
  // Two generators, even and odd draws: two independent dependency chains
  // that the CPU overlaps (each generator's next state needs its last).
  Rng mc_even(mc_seed), mc_odd(SplitMix64(&stream));
  s.draws_.resize(static_cast<size_t>(samples) * h);
  for (size_t j = 0; j < h; ++j) {
    const PolicyScratch::Dist& d = s.dists_[head[j]];
    size_t t = 0;
    for (; t + 1 < samples; t += 2) {
      s.draws_[t * h + j] = Draw(d, mc_even);
      s.draws_[(t + 1) * h + j] = Draw(d, mc_odd);
    }
    if (t < samples) s.draws_[t * h + j] = Draw(d, mc_even);
  }
  s.taken_.assign(h, 0);
  s.best_.resize(samples);
  for (size_t t = 0; t < samples; ++t)
    s.best_[t] = BestRemaining(&s.draws_[t * h], s.taken_.data(), h);
  const double floor = 0.5 / samples;
  for (size_t r = 0; r < k; ++r) {
    const uint32_t at = s.pick_at_[r];
    uint32_t hits = 0;
    for (uint32_t b : s.best_) hits += b == at;
    const double p = std::max(static_cast<double>(hits) / samples, floor);
    s.picks_[r].propensity = p;
    s.picks_[r].propensity_se = std::sqrt(p * (1 - p) / samples);
    s.taken_[at] = 1;
    if (r + 1 == k) break;
    for (size_t t = 0; t < samples; ++t)
      if (s.best_[t] == at) s.best_[t] = BestRemaining(&s.draws_[t * h], s.taken_.data(), h);
  }
  result.shown = s.picks_;
  result.considered = static_cast<uint32_t>(h);
  result.samples = samples;
  return result;
}

uint64_t PolicySeed(std::string_view decision_id) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : decision_id) h = (h ^ c) * 0x100000001b3ULL;
  return SplitMix64(&h);
}

}  // namespace tailor::learning
