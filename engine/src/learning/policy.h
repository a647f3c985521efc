// Exploration policies with logged propensities: which eligible candidates a
// placement shows, and for each shown one the probability that this policy
// would have shown it there, so that other policies can be evaluated
// offline from the decision log (inverse propensity scoring per position).
//
// Pure and engine-independent: the engine (after rules and journeys have
// vetoed) hands over its eligible candidates in greedy order (best P*C*V*L
// first), the number of positions, the placement's PolicyConfig and a
// per-decision 64-bit seed; Choose returns the shown order. Same inputs and
// seed, same result.
//
// The policies are sequential, one decision per position r = 0, 1, ...
// among the candidates not shown at an earlier position ("remaining"):
//   greedy     the first remaining (the input order). Propensity 1.
//   epsilon    with probability e (`exploration`) a uniform pick among the
//              m remaining, else the first remaining. Propensity exact:
//              e/m, plus 1 - e for the first remaining.
//   thompson   draw p_i ~ Beta(alpha_i, beta_i) afresh for every remaining
//              candidate and show the best p_i * (C*V*L)_i (ties: the
//              earlier input). Propensity by Monte Carlo (below).
//   linear_ts  as thompson, but p_i ~ N(x.mu, v^2 x^T A^-1 x) from the
//              candidate's LinearTsArm and features (linear_ts.h), at most
//              1; a draw below 0 ranks below every draw in [0, 1], by its
//              value (no ties at 0). A candidate without an arm, or whose
//              features do not fit its arm, draws from its Beta posterior.
//
// Propensity definition, the same for every kind: the probability that the
// policy picks this candidate at this position GIVEN the candidates shown
// at the earlier positions, pi(c at r | shown[0..r-1]). That conditional
// propensity is what per-position off-policy evaluation of rankings needs
// (the new policy's probability of the logged pick given the same prefix,
// over this one). The conditional propensities of the remaining candidates
// at a position sum to 1; the unconditional probability of "c at r" is their
// mean over prefixes.
//
// Monte Carlo (thompson, linear_ts): S = `samples` (default 64) further
// independent draws of every candidate from a second stream; the estimate at
// position r is the share of draws whose best remaining candidate is the
// shown one. Its standard error is sqrt(p (1 - p) / S) (0.0625 at most for
// S = 64, at p = 0.5); it is clamped to a floor of 1 / (2 S) so that a shown
// candidate never logs 0 (a pick the draws never reproduced had probability
// below about 1/S). One set of S draws serves every position, so estimates
// at different positions are correlated but each is unbiased (up to the
// floor). Its inverse is not: 1 / p-hat overestimates 1 / p by about
// (1 - p) / (p S) (14% at p = 0.1, S = 64), so an evaluator weighting by
// 1 / propensity should prefer self-normalised estimates, or a placement
// that is evaluated offline a larger S (256: 3.5% at p = 0.1).
//
// Head (thompson, linear_ts): with many candidates (items placements) only
// a head is sampled: the first `limit` candidates (the greedy picks) plus
// the best others by optimistic priority (p's mean + 3 standard deviations,
// at most 1) x (C*V*L), max(4 * limit, 20) in all. A candidate outside the
// head could win only by a draw beyond three standard deviations against
// every head candidate: it is never shown, and its propensity is taken as 0.
// Epsilon and greedy use every candidate.
//
// `explore` marks a pick that differs from the greedy pick at that position,
// i.e. from the first remaining candidate (an epsilon draw that lands on the
// first remaining is not exploration).
//
// Cost: no allocation once the scratch has grown; thompson with 12 offers,
// 3 positions and S = 64 draws ~800 Beta variates (see policy_test for the
// measured figures).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "learning/random.h"

namespace tailor::learning {

class LinearTsArm;

// A placement's `policy:` block.
struct PolicyConfig {
  enum class Kind { kGreedy, kThompson, kLinearTs, kEpsilon };
  Kind kind = Kind::kGreedy;
  double exploration = 0.1;  // epsilon: the share of positions picked uniformly
  uint32_t samples = 64;     // thompson, linear_ts: Monte Carlo draws for propensities
};

// "greedy", "thompson", "linear_ts", "epsilon".
std::string_view PolicyKindName(PolicyConfig::Kind kind);
// False for an unknown name.
bool ParsePolicyKind(std::string_view name, PolicyConfig::Kind* out);

// One eligible candidate (vetoed ones are not passed).
struct PolicyCandidate {
  double factors = 1;  // C*V*L: a sampled p replaces P in P*C*V*L (< 0 or NaN reads 0)
  // The response posterior for click, Beta(alpha, beta); shapes are clamped
  // to [0.01, 1e12].
  double alpha = 1, beta = 1;
  // linear_ts only: the context features and this candidate's model (not
  // owned; must outlive the call). Null arm: the Beta posterior is used.
  std::span<const float> features;
  const LinearTsArm* arm = nullptr;
};

struct PolicyPick {
  uint32_t index = 0;        // into the candidates passed to Choose
  double propensity = 1;     // pi(this candidate at this position | earlier picks)
  double propensity_se = 0;  // Monte Carlo standard error (0: exact)
  bool explore = false;      // differs from the greedy pick at this position
};

struct PolicyResult {
  // The shown positions, best first: min(limit, candidates) picks. Points
  // into the scratch, valid until its next Choose.
  std::span<const PolicyPick> shown;
  uint32_t considered = 0;  // candidates the policy could pick (the head)
  uint32_t samples = 0;     // Monte Carlo draws behind the propensities (0: exact)
};

// Reusable per-thread workspace (keep one thread_local per worker).
class PolicyScratch {
 public:
  PolicyScratch() = default;

 private:
  friend PolicyResult Choose(const PolicyConfig&, std::span<const PolicyCandidate>, size_t,
                             uint64_t, PolicyScratch&);
  struct Dist {
    BetaShape beta;
    double mean = 0, sd = 0;  // normal (linear_ts) when normal is true
    double factors = 0;
    bool normal = false;
  };
  std::vector<PolicyPick> picks_;
  std::vector<uint32_t> order_;    // remaining (epsilon) / head (sampled kinds)
  std::vector<double> bound_;      // optimistic priority, for the head
  std::vector<Dist> dists_;        // per candidate
  std::vector<uint8_t> shown_;     // per candidate
  std::vector<uint8_t> taken_;     // per head position
  std::vector<double> draws_;      // S x head, row-major by draw
  std::vector<uint32_t> best_;     // per draw: head position of its best remaining
  std::vector<uint32_t> pick_at_;  // per shown position: the pick's head position
};

PolicyResult Choose(const PolicyConfig& config, std::span<const PolicyCandidate> candidates,
                    size_t limit, uint64_t seed, PolicyScratch& scratch);

// A decision's seed from its id (FNV-1a, then splitmix64): replaying a
// decision id with the same inputs reproduces its picks and propensities.
uint64_t PolicySeed(std::string_view decision_id);

}  // namespace tailor::learning
