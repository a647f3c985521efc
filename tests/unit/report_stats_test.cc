// The report's statistics against published values and, for the intervals
// with no closed form to compare, their coverage in seeded simulations.
#include <gtest/gtest.h>

#include <random>

#include "report/kpi.h"
#include "report/stats.h"

namespace tailor::report {
namespace {

TEST(ReportStats, NormalQuantileAndCdf) {
  EXPECT_NEAR(NormalQuantile(0.975), 1.959963984540054, 1e-12);
  EXPECT_NEAR(NormalQuantile(0.5), 0.0, 1e-12);
  EXPECT_NEAR(NormalQuantile(0.001), -3.090232306167813, 1e-10);
  EXPECT_NEAR(NormalCdf(1.959963984540054), 0.975, 1e-12);
}

// Newcombe (1998), "Two-sided confidence intervals for the single
// proportion", Table I, method 3 (score, no continuity correction).
TEST(ReportStats, WilsonMatchesNewcombesTable) {
  struct Case {
    int64_t k, n;
    double lo, hi;
  } cases[] = {{81, 263, 0.2553, 0.3662},
               {15, 148, 0.0624, 0.1605},
               {0, 20, 0.0, 0.1611},
               {1, 29, 0.0061, 0.1718}};
  for (const Case& c : cases) {
    const Interval w = Wilson(c.k, c.n);
    EXPECT_NEAR(w.lo, c.lo, 5e-5) << c.k << "/" << c.n;
    EXPECT_NEAR(w.hi, c.hi, 5e-5) << c.k << "/" << c.n;
    EXPECT_DOUBLE_EQ(w.value, static_cast<double>(c.k) / static_cast<double>(c.n));
  }
  const Interval none = Wilson(0, 0);
  EXPECT_EQ(none.lo, 0);
  EXPECT_EQ(none.hi, 1);
}

TEST(ReportStats, ChiSquareTailMatchesTables) {
  EXPECT_NEAR(ChiSquareSf(3.841458820694124, 1), 0.05, 1e-9);
  EXPECT_NEAR(ChiSquareSf(5.991464547107979, 2), 0.05, 1e-9);
  EXPECT_NEAR(ChiSquareSf(10.827566170662733, 1), 0.001, 1e-11);
  EXPECT_NEAR(ChiSquareSf(18.307038053275146, 10), 0.05, 1e-9);
  EXPECT_NEAR(ChiSquareSf(0.1015310912, 1), 0.75, 1e-7);
  EXPECT_DOUBLE_EQ(ChiSquareSf(0, 3), 1.0);
  // Far in the tail: chi2(1) > 100 is 2 * (1 - Phi(10)) = 1.5239706e-23.
  EXPECT_NEAR(ChiSquareSf(100, 1) / 1.5239706e-23, 1.0, 1e-5);
}

TEST(ReportStats, SampleRatioMismatch) {
  const Srm even = SampleRatioTest({500, 500});
  EXPECT_DOUBLE_EQ(even.chi2, 0);
  EXPECT_DOUBLE_EQ(even.p, 1);
  EXPECT_EQ(even.df, 1);
  // 1000 vs 800 when 50/50 was asked: chi2 = 2 * 100^2 / 900.
  const Srm broken = SampleRatioTest({1000, 800});
  EXPECT_NEAR(broken.chi2, 200.0 / 9.0, 1e-12);
  EXPECT_NEAR(broken.p, 2.4285e-6, 1e-9);
  EXPECT_LT(broken.p, kSrmAlpha);
  // The same counts are fine against a 5:4 split.
  const Srm weighted = SampleRatioTest({1000, 800}, {5, 4});
  EXPECT_NEAR(weighted.chi2, 0, 1e-12);
  EXPECT_NEAR(weighted.expected[0], 1000, 1e-9);
  // Three arms, df 2.
  const Srm three = SampleRatioTest({100, 100, 130});
  EXPECT_EQ(three.df, 2);
  EXPECT_NEAR(three.chi2, (10.0 * 10 + 10 * 10 + 20 * 20) / 110.0, 1e-12);
}

// Newcombe (1998), "Interval estimation for the difference between
// independent proportions", example (a): 56/70 - 48/80, method 10.
TEST(ReportStats, TwoProportionNewcombeAndZTest) {
  const Comparison c = TwoProportion(56, 70, 48, 80);
  EXPECT_NEAR(c.diff, 0.2, 1e-12);
  EXPECT_NEAR(c.lo, 0.0524, 5e-5);
  EXPECT_NEAR(c.hi, 0.3339, 5e-5);
  // Pooled z = 0.2 / sqrt(104/150 * 46/150 * (1/70 + 1/80)) = 2.6502; the
  // two-sided p equals the 2x2 chi-square's (z^2, df 1).
  const double z = 0.2 / std::sqrt(104.0 / 150 * 46.0 / 150 * (1.0 / 70 + 1.0 / 80));
  EXPECT_NEAR(c.p, ChiSquareSf(z * z, 1), 1e-12);
  EXPECT_NEAR(c.p, 0.008046, 1e-5);
  // No difference: p = 1 and the interval straddles zero.
  const Comparison same = TwoProportion(30, 1000, 30, 1000);
  EXPECT_DOUBLE_EQ(same.p, 1.0);
  EXPECT_LT(same.lo, 0);
  EXPECT_GT(same.hi, 0);
}

TEST(ReportStats, RelativeLift) {
  const Comparison c = RelativeLift(100, 1000, 50, 1000);
  EXPECT_NEAR(c.diff, 1.0, 1e-12);
  EXPECT_LT(c.lo, 1.0);
  EXPECT_GT(c.hi, 1.0);
  EXPECT_GT(c.lo, 0.3);  // doubling from 5% on 1000 impressions is clear
  EXPECT_LT(c.p, 1e-4);
  EXPECT_EQ(RelativeLift(0, 10, 5, 10).p, 1.0);  // undefined: no claim
}

TEST(ReportStats, SlopeOfALine) {
  const Interval s = Slope({1, 3, 5, 7});
  EXPECT_NEAR(s.value, 2, 1e-12);
  EXPECT_NEAR(s.lo, 2, 1e-9);
  EXPECT_NEAR(s.hi, 2, 1e-9);
  const Interval noisy = Slope({1, 2.5, 2.8, 4.2, 5.1, 5.9});
  EXPECT_GT(noisy.value, 0.8);
  EXPECT_LT(noisy.lo, noisy.value);
  EXPECT_GT(noisy.hi, noisy.value);
}

// Coverage: the share of seeded samples whose interval holds the truth.
TEST(ReportStats, IntervalsCoverTheTruthAboutNinetyFivePercent) {
  std::mt19937_64 rng(7);
  const int kRuns = 2000;
  // Revenue per customer: 6% convert, spending Exp(mean 60): skewed, mostly 0.
  std::bernoulli_distribution converts(0.06);
  std::exponential_distribution<double> spend(1.0 / 60);
  const double true_mean = 0.06 * 60;
  int mean_hits = 0, wilson_hits = 0, ratio_hits = 0;
  std::poisson_distribution<int> visits(3.0);
  std::bernoulli_distribution click(0.03);
  for (int run = 0; run < kRuns; ++run) {
    Moments m;
    RatioMoments rm;
    int64_t clicks = 0, imps = 0;
    for (int c = 0; c < 800; ++c) {
      m.Add(converts(rng) ? spend(rng) : 0.0);
      // Revenue per impression with a customer as the unit: each impression
      // converts with 3%, worth 40.
      const int n = visits(rng);
      double y = 0;
      for (int k = 0; k < n; ++k) {
        const bool hit = click(rng);
        y += hit ? 40 : 0;
        clicks += hit;
      }
      imps += n;
      rm.Add(y, n);
    }
    const Interval mi = MeanInterval(m);
    mean_hits += mi.lo <= true_mean && true_mean <= mi.hi;
    const Interval wi = Wilson(clicks, imps);
    wilson_hits += wi.lo <= 0.03 && 0.03 <= wi.hi;
    const Interval ri = RatioInterval(rm);
    ratio_hits += ri.lo <= 1.2 && 1.2 <= ri.hi;
  }
  const double mean_cov = mean_hits / static_cast<double>(kRuns);
  const double wilson_cov = wilson_hits / static_cast<double>(kRuns);
  const double ratio_cov = ratio_hits / static_cast<double>(kRuns);
  EXPECT_GT(mean_cov, 0.925) << mean_cov;
  EXPECT_LT(mean_cov, 0.97) << mean_cov;
  EXPECT_GT(wilson_cov, 0.93) << wilson_cov;
  EXPECT_LT(wilson_cov, 0.97) << wilson_cov;
  EXPECT_GT(ratio_cov, 0.925) << ratio_cov;
  EXPECT_LT(ratio_cov, 0.97) << ratio_cov;
}

TEST(ReportStats, DifferenceOfMeans) {
  Moments a, b;
  for (int i = 0; i < 100; ++i) {
    a.Add(i % 2 ? 12 : 8);  // mean 10, sd ~2
    b.Add(i % 2 ? 10 : 6);  // mean 8
  }
  const Comparison c = MeanDifference(a, b);
  EXPECT_NEAR(c.diff, 2, 1e-12);
  // se = sqrt(4.0404/100 * 2) = 0.28427
  EXPECT_NEAR(c.hi - c.diff, kZ95 * std::sqrt(2 * (400.0 / 99) / 100), 1e-9);
  EXPECT_LT(c.p, 1e-6);
}

TEST(ReportVetoes, ClassifiesTraceNotes) {
  auto k = [](const char* note) {
    VetoSource s = ClassifyVeto(note);
    return s.kind + "|" + s.name;
  };
  EXPECT_EQ(k("suppressed by policy 'dismissed': 2 dismissals within 7 days, until x"),
            "policy|dismissed");
  EXPECT_EQ(k("journey welcome, stage awareness: offer not allowed in this stage"),
            "journey|welcome");
  EXPECT_EQ(k("sensitive gate (health): no explicit consent 'sensitive'"), "sensitive|health");
  EXPECT_EQ(k("excluded by request: exclude names offer 'o1'"), "request|request");
  EXPECT_EQ(k("stock_guard: out of stock"), "rule|stock_guard");
  EXPECT_EQ(k("rules: not run (this request's tables could not be built)"), "engine|rules");
}

}  // namespace
}  // namespace tailor::report
