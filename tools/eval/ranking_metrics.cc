#include "ranking_metrics.h"

#include <algorithm>
#include <cmath>

namespace tailor::eval {

RankingScores ScoreRanking(const std::vector<uint32_t>& top, const std::set<uint32_t>& relevant,
                           int k) {
  RankingScores out;
  if (relevant.empty() || k <= 0) return out;
  const size_t kk = static_cast<size_t>(k);
  const size_t n = std::min(top.size(), kk);
  int hits = 0;
  double dcg = 0, ap = 0;
  for (size_t r = 0; r < n; ++r) {
    if (!relevant.count(top[r])) continue;
    ++hits;
    dcg += 1.0 / std::log2(static_cast<double>(r) + 2);
    ap += static_cast<double>(hits) / static_cast<double>(r + 1);
  }
  const size_t ideal = std::min(relevant.size(), kk);
  double idcg = 0;
  for (size_t r = 0; r < ideal; ++r) idcg += 1.0 / std::log2(static_cast<double>(r) + 2);
  out.hr = hits > 0 ? 1 : 0;
  out.precision = static_cast<double>(hits) / static_cast<double>(kk);
  out.recall = static_cast<double>(hits) / static_cast<double>(relevant.size());
  out.ndcg = dcg / idcg;
  out.ap = ap / static_cast<double>(ideal);
  return out;
}

}  // namespace tailor::eval
