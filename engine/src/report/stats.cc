#include "report/stats.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace tailor::report {
namespace {

// Two-sided p-value of a standard normal statistic.
// erfc directly: 2 (1 - Phi(|z|)) would round to 0 beyond |z| ~ 8.
double TwoSidedP(double z) { return std::min(1.0, std::erfc(std::fabs(z) / std::sqrt(2.0))); }

// The t distribution's 97.5% quantile: exact for 1 and 2 degrees of
// freedom, the Cornish-Fisher expansion (error < 1e-3 from df 3) above.
double T975(double df) {
  if (df < 1.5) return 12.706204736;
  if (df < 2.5) return 4.302652730;
  const double z = kZ95, z3 = z * z * z, z5 = z3 * z * z, z7 = z5 * z * z;
  return z + (z3 + z) / (4 * df) + (5 * z5 + 16 * z3 + 3 * z) / (96 * df * df) +
         (3 * z7 + 19 * z5 + 17 * z3 - 15 * z) / (384 * df * df * df);
}

}  // namespace

double NormalCdf(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }

// Acklam's rational approximation, polished by one Halley step on erfc
// (relative error ~1e-15).
double NormalQuantile(double p) {
  if (p <= 0) return -std::numeric_limits<double>::infinity();
  if (p >= 1) return std::numeric_limits<double>::infinity();
  static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,  -2.759285104469687e+02,
                             1.383577518672690e+02,  -3.066479806614716e+01, 2.506628277459239e+00};
  static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                             6.680131188771972e+01, -1.328068155288572e+01};
  static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                             -2.549732539343734e+00, 4.374664141464968e+00,  2.938163982698783e+00};
  static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                             3.754408661907416e+00};
  const double lo = 0.02425;
  double x;
  if (p < lo) {
    const double q = std::sqrt(-2 * std::log(p));
    x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  } else if (p <= 1 - lo) {
    const double q = p - 0.5, r = q * q;
    x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
        (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
  } else {
    const double q = std::sqrt(-2 * std::log(1 - p));
    x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  const double e = NormalCdf(x) - p;
  const double u = e * std::sqrt(2 * M_PI) * std::exp(x * x / 2);
  return x - u / (1 + x * u / 2);
}

Interval Wilson(int64_t k, int64_t n, double z) {
  if (n <= 0) return {0, 0, 1};
  const double nn = static_cast<double>(n);
  const double p = static_cast<double>(k) / nn;
  const double z2 = z * z;
  const double centre = (p + z2 / (2 * nn)) / (1 + z2 / nn);
  const double half = z / (1 + z2 / nn) * std::sqrt(p * (1 - p) / nn + z2 / (4 * nn * nn));
  return {p, std::max(0.0, centre - half), std::min(1.0, centre + half)};
}

double GammaQ(double a, double x) {
  if (x <= 0) return 1;
  if (a <= 0) return 0;
  const double gln = std::lgamma(a);
  const double eps = 1e-15;
  if (x < a + 1) {  // P by its series, Q = 1 - P
    double ap = a, sum = 1 / a, del = sum;
    for (int n = 0; n < 10000; ++n) {
      ap += 1;
      del *= x / ap;
      sum += del;
      if (std::fabs(del) < std::fabs(sum) * eps) break;
    }
    return std::max(0.0, 1 - sum * std::exp(-x + a * std::log(x) - gln));
  }
  // Q by Lentz's continued fraction.
  const double tiny = 1e-300;
  double b = x + 1 - a, c = 1 / tiny, d = 1 / b, h = d;
  for (int i = 1; i < 10000; ++i) {
    const double an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (std::fabs(d) < tiny) d = tiny;
    c = b + an / c;
    if (std::fabs(c) < tiny) c = tiny;
    d = 1 / d;
    const double del = d * c;
    h *= del;
    if (std::fabs(del - 1) < eps) break;
  }
  return std::exp(-x + a * std::log(x) - gln) * h;
}

double ChiSquareSf(double x, double df) { return GammaQ(df / 2, x / 2); }

Srm SampleRatioTest(const std::vector<int64_t>& observed, std::vector<double> shares) {
  Srm s;
  const size_t k = observed.size();
  if (shares.size() != k) shares.assign(k, 1.0);
  double share_sum = 0, total = 0;
  for (double w : shares) share_sum += w;
  for (int64_t o : observed) total += static_cast<double>(o);
  s.expected.assign(k, 0);
  if (k < 2 || total <= 0 || share_sum <= 0) return s;
  for (size_t i = 0; i < k; ++i) {
    const double e = total * shares[i] / share_sum;
    s.expected[i] = e;
    if (e <= 0) continue;  // an arm expected to get nothing contributes no term
    const double dlt = static_cast<double>(observed[i]) - e;
    s.chi2 += dlt * dlt / e;
  }
  s.df = static_cast<int>(k) - 1;
  s.p = ChiSquareSf(s.chi2, s.df);
  return s;
}

Comparison TwoProportion(int64_t k1, int64_t n1, int64_t k2, int64_t n2) {
  Comparison c;
  if (n1 <= 0 || n2 <= 0) return c;
  const Interval w1 = Wilson(k1, n1), w2 = Wilson(k2, n2);
  const double p1 = w1.value, p2 = w2.value;
  c.diff = p1 - p2;
  c.lo = c.diff - std::sqrt((p1 - w1.lo) * (p1 - w1.lo) + (w2.hi - p2) * (w2.hi - p2));
  c.hi = c.diff + std::sqrt((w1.hi - p1) * (w1.hi - p1) + (p2 - w2.lo) * (p2 - w2.lo));
  const double pooled = static_cast<double>(k1 + k2) / static_cast<double>(n1 + n2);
  const double se = std::sqrt(pooled * (1 - pooled) *
                              (1.0 / static_cast<double>(n1) + 1.0 / static_cast<double>(n2)));
  c.p = se > 0 ? TwoSidedP(c.diff / se) : (c.diff == 0 ? 1.0 : 0.0);
  return c;
}

Comparison RelativeLift(int64_t k1, int64_t n1, int64_t k2, int64_t n2) {
  Comparison c;
  if (k1 <= 0 || k2 <= 0 || n1 <= 0 || n2 <= 0) return c;
  const double p1 = static_cast<double>(k1) / static_cast<double>(n1);
  const double p2 = static_cast<double>(k2) / static_cast<double>(n2);
  const double log_ratio = std::log(p1 / p2);
  // Var(log p) ~ (1 - p) / k for a binomial proportion.
  const double se =
      std::sqrt((1 - p1) / static_cast<double>(k1) + (1 - p2) / static_cast<double>(k2));
  c.diff = p1 / p2 - 1;
  c.lo = std::exp(log_ratio - kZ95 * se) - 1;
  c.hi = std::exp(log_ratio + kZ95 * se) - 1;
  c.p = se > 0 ? TwoSidedP(log_ratio / se) : 1.0;
  return c;
}

double Moments::Variance() const {
  if (n < 2) return 0;
  const double nn = static_cast<double>(n);
  return std::max(0.0, (sum_sq - sum * sum / nn) / (nn - 1));
}

Interval MeanInterval(const Moments& m) {
  const double mean = m.Mean();
  if (m.n < 2) return {mean, mean, mean};
  const double se = std::sqrt(m.Variance() / static_cast<double>(m.n));
  return {mean, mean - kZ95 * se, mean + kZ95 * se};
}

Comparison MeanDifference(const Moments& a, const Moments& control) {
  Comparison c;
  c.diff = a.Mean() - control.Mean();
  if (a.n < 2 || control.n < 2) {
    c.lo = c.hi = c.diff;
    return c;
  }
  const double se = std::sqrt(a.Variance() / static_cast<double>(a.n) +
                              control.Variance() / static_cast<double>(control.n));
  c.lo = c.diff - kZ95 * se;
  c.hi = c.diff + kZ95 * se;
  c.p = se > 0 ? TwoSidedP(c.diff / se) : (c.diff == 0 ? 1.0 : 0.0);
  return c;
}

Interval RatioInterval(const RatioMoments& m) {
  if (m.n <= 0 || m.sx <= 0) return {0, 0, 0};
  const double n = static_cast<double>(m.n);
  const double r = m.sy / m.sx;
  if (m.n < 2) return {r, r, r};
  // Var(r) ~ Var(y - r x) / (n xbar^2), the residuals' sample variance.
  const double xbar = m.sx / n;
  const double ss = m.syy - 2 * r * m.sxy + r * r * m.sxx;  // sum of (y - r x)^2
  const double var = std::max(0.0, ss / (n - 1)) / (n * xbar * xbar);
  const double se = std::sqrt(var);
  return {r, r - kZ95 * se, r + kZ95 * se};
}

Interval Slope(const std::vector<double>& ys) {
  const size_t n = ys.size();
  if (n < 2) return {0, 0, 0};
  const double nn = static_cast<double>(n);
  const double xbar = (nn - 1) / 2;
  double ybar = 0;
  for (double y : ys) ybar += y;
  ybar /= nn;
  double sxx = 0, sxy = 0;
  for (size_t i = 0; i < n; ++i) {
    const double dx = static_cast<double>(i) - xbar;
    sxx += dx * dx;
    sxy += dx * (ys[i] - ybar);
  }
  const double b = sxy / sxx;
  if (n < 3) return {b, b, b};
  double sse = 0;
  for (size_t i = 0; i < n; ++i) {
    const double e = ys[i] - ybar - b * (static_cast<double>(i) - xbar);
    sse += e * e;
  }
  const double se = std::sqrt(sse / (nn - 2) / sxx);
  const double t = T975(nn - 2);
  return {b, b - t * se, b + t * se};
}

}  // namespace tailor::report
