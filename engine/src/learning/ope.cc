#include "learning/ope.h"

#include <cmath>

namespace tailor::learning {
namespace {

// Mean and the CLT interval of per-decision terms.
OpeEstimate MeanInterval(const std::vector<double>& terms) {
  OpeEstimate e;
  const size_t n = terms.size();
  if (n == 0) return e;
  double sum = 0;
  for (double t : terms) sum += t;
  e.value = sum / static_cast<double>(n);
  double ss = 0;
  for (double t : terms) ss += (t - e.value) * (t - e.value);
  const double var = n > 1 ? ss / static_cast<double>(n - 1) : 0;
  e.se = std::sqrt(var / static_cast<double>(n));
  e.lo = e.value - kZ95 * e.se;
  e.hi = e.value + kZ95 * e.se;
  return e;
}

}  // namespace

double EffectiveSampleSize(std::span<const OpeSample> samples) {
  double sw = 0, sw2 = 0;
  for (const OpeSample& s : samples) {
    sw += s.weight;
    sw2 += s.weight * s.weight;
  }
  return sw2 > 0 ? sw * sw / sw2 : 0;
}

bool PoorOverlap(double ess, size_t decisions) {
  return ess < kMinEss || ess < kMinEssFraction * static_cast<double>(decisions);
}

OpeResult Evaluate(std::span<const OpeSample> samples) {
  OpeResult r;
  r.decisions = samples.size();
  if (samples.empty()) return r;
  std::vector<double> ips, dr;
  ips.reserve(samples.size());
  dr.reserve(samples.size());
  double sw = 0, swr = 0;
  for (const OpeSample& s : samples) {
    ips.push_back(s.weight * s.reward);
    dr.push_back(s.dm_candidate + s.weight * (s.reward - s.dm_logged));
    sw += s.weight;
    swr += s.weight * s.reward;
    r.matched += s.weight > 0;
    r.matched_events += s.weight > 0 && s.reward != 0;
  }
  r.ips = MeanInterval(ips);
  r.dr = MeanInterval(dr);
  std::vector<double> weights;
  weights.reserve(samples.size());
  for (const OpeSample& s : samples) weights.push_back(s.weight);
  const OpeEstimate w = MeanInterval(weights);
  r.weight_mean = w.value;
  r.weight_se = w.se;
  r.ess = EffectiveSampleSize(samples);
  if (sw > 0) {
    // Delta method for the ratio sum(w r) / sum(w).
    r.snips.value = swr / sw;
    double ss = 0;
    for (const OpeSample& s : samples) {
      const double d = s.weight * (s.reward - r.snips.value);
      ss += d * d;
    }
    r.snips.se = std::sqrt(ss) / sw;
    r.snips.lo = r.snips.value - kZ95 * r.snips.se;
    r.snips.hi = r.snips.value + kZ95 * r.snips.se;
  }
  return r;
}

nlohmann::json OpeEstimateJson(const OpeEstimate& e) {
  return {{"value", e.value}, {"ci", {e.lo, e.hi}}, {"se", e.se}};
}

}  // namespace tailor::learning
