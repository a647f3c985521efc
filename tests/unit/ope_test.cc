// The off-policy estimators (learning/ope.h) on synthetic logs whose truth is
// known: a uniform logger over four actions in three contexts, Bernoulli
// rewards, and a deterministic candidate.
#include "learning/ope.h"

#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <random>
#include <vector>

namespace tailor::learning {
namespace {

constexpr int kContexts = 3, kActions = 4;
// True P(reward | context, action).
constexpr std::array<std::array<double, kActions>, kContexts> kP = {
    {{0.10, 0.30, 0.05, 0.20}, {0.40, 0.05, 0.15, 0.10}, {0.02, 0.08, 0.50, 0.25}}};
int Candidate(int x) { return (x + 1) % kActions; }  // not the best, not the worst
double TrueValue() {
  double v = 0;
  for (int x = 0; x < kContexts; ++x) v += kP[x][Candidate(x)] / kContexts;
  return v;
}

struct LogOptions {
  size_t n = 2000;
  double q_bias = 0;       // the direct model's error
  bool perfect_q = false;  // the direct model is the truth
};

std::vector<OpeSample> UniformLog(uint64_t seed, const LogOptions& o) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> ctx(0, kContexts - 1), act(0, kActions - 1);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<OpeSample> out;
  for (size_t i = 0; i < o.n; ++i) {
    const int x = ctx(rng), a = act(rng);
    const double mu = 1.0 / kActions;
    OpeSample s;
    s.weight = (a == Candidate(x) ? 1.0 : 0.0) / mu;
    s.reward = u(rng) < kP[x][a] ? 1.0 : 0.0;
    const double q_bias = o.perfect_q ? 0 : o.q_bias;
    s.dm_logged = kP[x][a] + q_bias;
    s.dm_candidate = kP[x][Candidate(x)] + q_bias;
    if (!o.perfect_q && o.q_bias == 0) s.dm_logged = s.dm_candidate = 0;  // no model
    out.push_back(s);
  }
  return out;
}

bool Covers(const OpeEstimate& e, double truth) { return e.lo <= truth && truth <= e.hi; }

TEST(OpeTest, UnbiasedAndCoveredOverSeeds) {
  const double truth = TrueValue();
  const int seeds = 300;
  int ips_cover = 0, snips_cover = 0, dr_cover = 0;
  double ips_sum = 0, dr_sum = 0;
  LogOptions o;
  o.q_bias = 0.05;  // a wrong model: DR must still be unbiased (the propensities are right)
  for (int s = 0; s < seeds; ++s) {
    OpeResult r = Evaluate(UniformLog(static_cast<uint64_t>(s) + 1, o));
    ips_cover += Covers(r.ips, truth);
    snips_cover += Covers(r.snips, truth);
    dr_cover += Covers(r.dr, truth);
    ips_sum += r.ips.value;
    dr_sum += r.dr.value;
  }
  // 95% intervals: coverage over 300 seeds is 0.95 +- 0.013 (sd); allow 3 sd.
  EXPECT_GE(ips_cover, 0.91 * seeds);
  EXPECT_GE(snips_cover, 0.91 * seeds);
  EXPECT_GE(dr_cover, 0.91 * seeds);
  // Means over seeds: the se of one IPS estimate is ~0.021 at n = 2000
  // (var(w r) = 16/4 x 0.233 - 0.233^2 = 0.88), of the mean of 300 ~0.0012;
  // 0.005 is ~4 se.
  EXPECT_NEAR(ips_sum / seeds, truth, 0.005);
  EXPECT_NEAR(dr_sum / seeds, truth, 0.005);
}

TEST(OpeTest, BiasedModelAloneWouldMissButDrCorrectsIt) {
  LogOptions o;
  o.q_bias = 0.1;
  o.n = 20000;
  OpeResult r = Evaluate(UniformLog(7, o));
  // The direct model alone says truth + 0.1; DR's correction term removes it.
  EXPECT_NEAR(r.dr.value, TrueValue(), 4 * r.dr.se);
  EXPECT_GT(std::abs(r.dr.value - (TrueValue() + 0.1)), 0.05);
}

TEST(OpeTest, SnipsIsInvariantToScalingTheWeights) {
  std::vector<OpeSample> log = UniformLog(3, {});
  OpeResult a = Evaluate(log);
  for (OpeSample& s : log) s.weight *= 3.7;
  OpeResult b = Evaluate(log);
  EXPECT_NEAR(a.snips.value, b.snips.value, 1e-12);
  EXPECT_NEAR(a.snips.se, b.snips.se, 1e-12);
  EXPECT_NEAR(b.ips.value, 3.7 * a.ips.value, 1e-12);  // IPS is not invariant
  EXPECT_NEAR(a.ess, b.ess, 1e-9);                     // nor is ESS affected
  EXPECT_NEAR(a.weight_mean * 3.7, b.weight_mean, 1e-12);
}

TEST(OpeTest, DrWithAPerfectModelHasNoVarianceWhenRewardsAreExpectedValues) {
  // One context, rewards equal to their expectation (e.g. expected revenue):
  // every DR term is q(candidate) exactly, while IPS still varies with w.
  std::vector<OpeSample> log;
  for (int i = 0; i < 1000; ++i) {
    const int a = i % kActions;
    OpeSample s;
    s.weight = (a == Candidate(0) ? kActions : 0);
    s.reward = kP[0][a];
    s.dm_logged = kP[0][a];
    s.dm_candidate = kP[0][Candidate(0)];
    log.push_back(s);
  }
  OpeResult r = Evaluate(log);
  EXPECT_NEAR(r.dr.value, kP[0][Candidate(0)], 1e-12);
  EXPECT_LT(r.dr.se, 1e-12);
  EXPECT_GT(r.ips.se, 0.01);
}

TEST(OpeTest, DrWithAPerfectModelBeatsIpsOnBernoulliRewards) {
  // With Bernoulli rewards DR removes only the variance the model explains:
  // var(DR term) = var(q) + 4 E[p (1 - p)] ~ 0.71 against var(IPS term) ~
  // 0.88, a se ratio of ~0.9; a model that knows nothing (q = 0) makes DR
  // IPS exactly.
  LogOptions o;
  o.perfect_q = true;
  o.n = 20000;
  OpeResult perfect = Evaluate(UniformLog(11, o));
  EXPECT_LT(perfect.dr.se, 0.95 * perfect.ips.se);
  EXPECT_GT(perfect.dr.se, 0.8 * perfect.ips.se);
  LogOptions no_model;
  no_model.n = 20000;
  OpeResult none = Evaluate(UniformLog(11, no_model));
  EXPECT_DOUBLE_EQ(none.dr.value, none.ips.value);
  EXPECT_TRUE(Covers(perfect.dr, TrueValue()));
}

TEST(OpeTest, EffectiveSampleSize) {
  auto ess = [](std::vector<double> w) {
    std::vector<OpeSample> s;
    for (double x : w) s.push_back(OpeSample{x, 0, 0, 0});
    return EffectiveSampleSize(s);
  };
  EXPECT_DOUBLE_EQ(ess({1, 1, 1, 1}), 4);
  EXPECT_DOUBLE_EQ(ess({2, 2, 0, 0}), 2);
  EXPECT_DOUBLE_EQ(ess({4, 0, 0, 0}), 1);
  EXPECT_DOUBLE_EQ(ess({3, 1}), 16.0 / 10.0);
  EXPECT_DOUBLE_EQ(ess({0, 0}), 0);
  // A deterministic candidate under a uniform logger over m actions: ~n/m.
  OpeResult r = Evaluate(UniformLog(5, {}));
  EXPECT_NEAR(r.ess, 2000.0 / kActions, 60);
  EXPECT_NEAR(r.weight_mean, 1.0, 0.1);
}

TEST(OpeTest, PoorOverlapThresholds) {
  EXPECT_TRUE(PoorOverlap(29, 100));     // below the absolute floor
  EXPECT_FALSE(PoorOverlap(40, 1000));   // 4% of decisions
  EXPECT_TRUE(PoorOverlap(150, 10000));  // 1.5% < 2%
  EXPECT_FALSE(PoorOverlap(250, 10000));
}

TEST(OpeTest, EmptyLogAndNoMatches) {
  OpeResult e = Evaluate({});
  EXPECT_EQ(e.decisions, 0u);
  EXPECT_EQ(e.ess, 0);
  std::vector<OpeSample> none(10, OpeSample{0, 1, 0.5, 0.5});
  OpeResult r = Evaluate(none);
  EXPECT_EQ(r.matched, 0u);
  EXPECT_EQ(r.matched_events, 0u);
  std::vector<OpeSample> two = {{2, 1, 0, 0}, {2, 0, 0, 0}, {0, 1, 0, 0}};
  EXPECT_EQ(Evaluate(two).matched_events, 1u);
  EXPECT_EQ(r.ips.value, 0);
  EXPECT_EQ(r.snips.value, 0);  // undefined: reported as 0 with a 0 interval
  EXPECT_DOUBLE_EQ(r.dr.value, 0.5);
}

}  // namespace
}  // namespace tailor::learning
