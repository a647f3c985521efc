#include "decision/diversify.h"

#include <algorithm>
#include <cassert>

namespace tailor {

std::vector<DiversifyPick> Diversify(std::span<const double> scores, std::span<const float> sim,
                                     double lambda, size_t positions) {
  const size_t m = scores.size();
  assert(sim.size() >= m * m);
  std::vector<DiversifyPick> out;
  out.reserve(m);
  if (m == 0) return out;
  const double weight = lambda * scores[0];
  std::vector<char> taken(m, 0);
  std::vector<float> best_sim(m, 0.0f);
  std::vector<size_t> best_of(m, 0);
  positions = std::min(positions, m);
  for (size_t t = 0; t < positions; ++t) {
    size_t pick = m;
    double pick_value = 0;
    for (size_t j = 0; j < m; ++j) {
      if (taken[j]) continue;
      const double v = scores[j] - weight * best_sim[j];
      if (pick == m || v > pick_value) {
        pick = j;
        pick_value = v;
      }
    }
    taken[pick] = 1;
    out.push_back({pick, weight * best_sim[pick], best_sim[pick], best_of[pick]});
    for (size_t j = 0; j < m; ++j) {
      if (taken[j]) continue;
      const float s = sim[pick * m + j];
      if (s > best_sim[j]) {
        best_sim[j] = s;
        best_of[j] = pick;
      }
    }
  }
  for (size_t j = 0; j < m; ++j)
    if (!taken[j]) out.push_back({j, 0, 0, 0});
  return out;
}

}  // namespace tailor
