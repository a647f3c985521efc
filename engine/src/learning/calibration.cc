#include "learning/calibration.h"

#include <algorithm>
#include <cmath>

namespace tailor::learning {

CalibrationReport Calibration(const std::vector<std::pair<double, bool>>& pairs) {
  CalibrationReport r;
  const size_t nb = r.bins.size();
  std::array<double, 10> sum_p{}, sum_y{};
  for (size_t b = 0; b < nb; ++b) {
    r.bins[b].lo = static_cast<double>(b) / nb;
    r.bins[b].hi = static_cast<double>(b + 1) / nb;
  }
  double total_p = 0, total_y = 0;
  for (const auto& [raw, y] : pairs) {
    if (std::isnan(raw)) continue;
    double p = std::clamp(raw, 0.0, 1.0);
    // p == 1 falls in the last bin.
    size_t b = std::min(nb - 1, static_cast<size_t>(p * static_cast<double>(nb)));
    sum_p[b] += p;
    sum_y[b] += y ? 1.0 : 0.0;
    ++r.bins[b].count;
    double yy = y ? 1.0 : 0.0;
    r.brier += (p - yy) * (p - yy);
    double pc = std::clamp(p, 1e-12, 1 - 1e-12);
    r.log_loss -= y ? std::log(pc) : std::log(1 - pc);
    total_p += p;
    total_y += yy;
    ++r.count;
  }
  if (r.count == 0) return r;
  const double n = static_cast<double>(r.count);
  for (size_t b = 0; b < nb; ++b) {
    ReliabilityBin& bin = r.bins[b];
    if (bin.count == 0) continue;
    const double c = static_cast<double>(bin.count);
    bin.mean_predicted = sum_p[b] / c;
    bin.observed_rate = sum_y[b] / c;
    r.ece += c / n * std::fabs(bin.observed_rate - bin.mean_predicted);
  }
  r.brier /= n;
  r.log_loss /= n;
  r.mean_predicted = total_p / n;
  r.observed_rate = total_y / n;
  return r;
}

nlohmann::json CalibrationJson(const CalibrationReport& r) {
  nlohmann::json bins = nlohmann::json::array();
  for (const ReliabilityBin& b : r.bins)
    bins.push_back({{"lo", b.lo},
                    {"hi", b.hi},
                    {"mean_predicted", b.mean_predicted},
                    {"observed_rate", b.observed_rate},
                    {"count", b.count}});
  return {{"count", r.count},
          {"ece", r.ece},
          {"brier", r.brier},
          {"log_loss", r.log_loss},
          {"mean_predicted", r.mean_predicted},
          {"observed_rate", r.observed_rate},
          {"bins", std::move(bins)}};
}

}  // namespace tailor::learning
