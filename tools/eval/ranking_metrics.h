// Top-k ranking quality of one customer's recommendations, as `tailor eval
// recs` reports it (averaged over customers). Kept apart from the tool so the
// unit tests check the figures the README quotes against hand-computed values.
#pragma once

#include <cstdint>
#include <set>
#include <vector>

namespace tailor::eval {

struct RankingScores {
  double hr = 0;         // 1 when any of the top k is relevant
  double precision = 0;  // hits / k (a list shorter than k is not excused)
  double recall = 0;     // hits / relevant
  double ndcg = 0;       // binary gains; the ideal list has min(relevant, k) hits
  double ap = 0;         // average precision at k, normalised by min(relevant, k)
};

// top: candidate ids best first; only the first k count. relevant: the ids
// that are hits. With no relevant id every score is 0 (the tool skips such
// customers instead of averaging them in). k must be positive.
RankingScores ScoreRanking(const std::vector<uint32_t>& top, const std::set<uint32_t>& relevant,
                           int k);

}  // namespace tailor::eval
