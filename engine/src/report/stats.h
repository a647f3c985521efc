// The statistics behind `tailor report`: intervals for rates and means, the
// tests that compare an arm with its control, and the sample-ratio-mismatch
// check. Pure functions of counts and sums (no store, no JSON), so each is
// unit-tested against published values.
#pragma once

#include <cstdint>
#include <vector>

namespace tailor::report {

// A point estimate with its two-sided 95% interval.
struct Interval {
  double value = 0;
  double lo = 0;
  double hi = 0;
};

// A difference (or ratio) between an arm and its control, with its interval
// and the two-sided p-value of "no difference".
struct Comparison {
  double diff = 0;
  double lo = 0;
  double hi = 0;
  double p = 1;
};

constexpr double kZ95 = 1.959963984540054;  // the standard normal's 97.5% quantile

// Standard normal distribution function and its inverse (p in (0, 1)).
double NormalCdf(double z);
double NormalQuantile(double p);

// The Wilson score interval of k successes in n trials (Wilson 1927): stays
// inside [0, 1] and keeps its coverage near 0 and 1, unlike the Wald interval.
// n == 0 gives {0, 0, 1}.
Interval Wilson(int64_t k, int64_t n, double z = kZ95);

// The regularized upper incomplete gamma function Q(a, x) (series below
// a + 1, continued fraction above; Numerical Recipes' split).
double GammaQ(double a, double x);
// P(X >= x) for X chi-square with df degrees of freedom.
double ChiSquareSf(double x, double df);

// Sample-ratio mismatch: Pearson's chi-square of observed counts against the
// expected shares (normalised to sum 1; empty: equal shares). df = k - 1.
struct Srm {
  double chi2 = 0;
  int df = 0;
  double p = 1;
  std::vector<double> expected;  // expected counts
};
Srm SampleRatioTest(const std::vector<int64_t>& observed, std::vector<double> shares = {});

// The difference of two proportions k1/n1 - k2/n2: Newcombe's hybrid score
// interval (method 10, built from the two Wilson intervals) and the pooled
// two-proportion z-test's p-value.
Comparison TwoProportion(int64_t k1, int64_t n1, int64_t k2, int64_t n2);

// The relative lift (k1/n1) / (k2/n2) - 1 with its delta-method interval on
// the log ratio. Undefined (all zero, p = 1) when either rate is 0.
Comparison RelativeLift(int64_t k1, int64_t n1, int64_t k2, int64_t n2);

// Running sums of one value per unit (a customer's revenue): mean and its
// normal-approximation interval (the sample variance, n - 1).
struct Moments {
  int64_t n = 0;
  double sum = 0;
  double sum_sq = 0;
  void Add(double x) {
    ++n;
    sum += x;
    sum_sq += x * x;
  }
  double Mean() const { return n ? sum / static_cast<double>(n) : 0; }
  double Variance() const;  // sample variance; 0 below two units
};
Interval MeanInterval(const Moments& m);
// Welch's difference of two means (arm minus control), normal approximation.
Comparison MeanDifference(const Moments& a, const Moments& control);

// A ratio of sums over units, sum(y) / sum(x) (revenue per impression, with
// a customer as the unit), with its delta-method interval: customers'
// impressions are correlated, so the unit is the customer, not the impression.
struct RatioMoments {
  int64_t n = 0;
  double sy = 0, sx = 0, syy = 0, sxx = 0, sxy = 0;
  void Add(double y, double x) {
    ++n;
    sy += y;
    sx += x;
    syy += y * y;
    sxx += x * x;
    sxy += x * y;
  }
};
Interval RatioInterval(const RatioMoments& m);

// Least-squares slope of ys against 0, 1, 2, ... with its 95% interval
// (t quantile approximated by the normal one plus a small-sample correction).
Interval Slope(const std::vector<double>& ys);

}  // namespace tailor::report
