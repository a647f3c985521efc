#include "sim/response_model.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace tailor::sim {
namespace {

using K = ModelConstants;

double Sigmoid(double z) { return 1.0 / (1.0 + std::exp(-z)); }

uint64_t Mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace

double Affinity(const TrueCustomer& c, const std::string& category) {
  if (category.empty()) return K::kNoCategoryAffinity;
  double top = 0, mine = -1;
  for (size_t i = 0; i < c.categories.size() && i < c.category_weight.size(); ++i) {
    top = std::max(top, c.category_weight[i]);
    if (c.categories[i] == category) mine = c.category_weight[i];
  }
  if (mine < 0 || top <= 0) return K::kNoCategoryAffinity;
  return std::clamp(mine / top, 0.0, 1.0);
}

bool IsNight(int hour) { return hour >= 22 || hour < 3; }

Response TrueResponse(const TrueCustomer& c, const TrueOffer& o, const Exposure& x) {
  const double a = Affinity(c, o.category);
  const double v = std::min(1.0, std::max(0.0, o.value) / K::kValueScale);
  const double d = std::clamp(o.discount, 0.0, 1.0);
  double z = K::kClickBias + K::kClickAffinity * a + K::kClickDeal * c.deal_seeker * d +
             K::kClickValue * (c.big_spender - K::kClickValuePivot) * v;
  if (IsNight(x.hour))
    z += K::kNightOwlBoost * c.night_owl - K::kNightOthersDrop * (1 - c.night_owl);
  const double position = 1.0 / (1.0 + K::kPositionDecay * std::max(0, x.position - 1));
  const double fatigue = std::pow(K::kFatigueFactor, std::max(0.0, x.fatigue));
  Response r;
  r.p_click = Sigmoid(z) * position * fatigue;
  r.p_convert = Sigmoid(K::kConvBias + K::kConvAffinity * a + K::kConvDeal * c.deal_seeker * d -
                        K::kConvPrice * (1 - c.big_spender) * v);
  r.p_dismiss = std::clamp(K::kDismissBase + K::kDismissMismatch * (1 - a), 0.0, 1.0);
  r.expected_value = r.p_click * r.p_convert * std::max(0.0, o.value);
  return r;
}

double FatigueDecay(double fatigue, int64_t elapsed_ms) {
  if (fatigue <= 0 || elapsed_ms <= 0) return std::max(0.0, fatigue);
  const double hours = static_cast<double>(elapsed_ms) / 3'600'000.0;
  return fatigue * std::exp2(-hours / K::kFatigueHalfLifeHours);
}

std::vector<size_t> OracleTopK(const TrueCustomer& c, const std::vector<TrueOffer>& offers,
                               int hour, const std::vector<double>& fatigue, size_t k) {
  std::vector<double> ev(offers.size());
  for (size_t i = 0; i < offers.size(); ++i) {
    Exposure x;
    x.hour = hour;
    x.fatigue = i < fatigue.size() ? fatigue[i] : 0;
    // The position factor is the same for every offer: rank as if first.
    ev[i] = TrueResponse(c, offers[i], x).expected_value;
  }
  std::vector<size_t> order(offers.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return ev[a] > ev[b]; });
  if (order.size() > k) order.resize(k);
  return order;
}

Rng::Rng(uint64_t seed, uint64_t stream, uint64_t index)
    : state_(Mix(Mix(seed ^ Mix(stream)) + index)) {}

uint64_t Rng::Next() {
  state_ += 0x9E3779B97F4A7C15ull;
  uint64_t z = state_;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

double Rng::Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

int Rng::Poisson(double lambda) {
  if (lambda <= 0) return 0;
  // Knuth's method; visit rates are small (a few a day at most).
  const double limit = std::exp(-std::min(lambda, 30.0));
  double p = Uniform();
  int k = 0;
  while (p > limit) {
    p *= Uniform();
    ++k;
  }
  return k;
}

size_t Rng::Weighted(const double* w, size_t n) {
  double total = 0;
  for (size_t i = 0; i < n; ++i) total += w[i];
  double r = Uniform() * total;
  for (size_t i = 0; i < n; ++i) {
    r -= w[i];
    if (r < 0) return i;
  }
  return n - 1;
}

double VisitsPerDay(const TrueCustomer& c, double visit_scale) {
  return std::max(0.0, visit_scale * c.sessions_per_week / 7.0);
}

int VisitHour(const TrueCustomer& c, Rng& rng) {
  // The demo world's TimeOfDay (engine/src/ingest/demo_world.cc).
  const double p_night =
      c.night_owl >= 0.5 ? 0.6 + 0.35 * (c.night_owl - 0.5) / 0.5 : 0.02 + 0.08 * c.night_owl;
  static const int kNightHours[] = {22, 23, 0, 1, 2};
  static const double kNightW[] = {3, 4, 4, 3, 2};
  static const double kDayW[] = {1, 2, 2, 2, 3, 4, 4, 3, 3, 3, 3, 4, 5, 6, 4};  // 07:00-21:00
  if (rng.Chance(p_night)) return kNightHours[rng.Weighted(kNightW, 5)];
  return 7 + static_cast<int>(rng.Weighted(kDayW, 15));
}

uint64_t StableHash(const std::string& s, uint64_t seed) {
  uint64_t h = 0xcbf29ce484222325ull ^ Mix(seed);
  for (unsigned char ch : s) {
    h ^= ch;
    h *= 0x100000001b3ull;
  }
  return Mix(h);
}

}  // namespace tailor::sim
