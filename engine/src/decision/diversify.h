// Diversified top positions by maximal marginal relevance (Carbonell and
// Goldstein 1998): the engine and `tailor eval recs` share it, so the
// evaluation measures what is served.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

namespace tailor {

struct DiversifyPick {
  size_t from = 0;        // position in the input list
  double penalty = 0;     // subtracted from its score when it was picked
  double similarity = 0;  // its highest similarity to an item picked before
  size_t similar_to = 0;  // input position of that item (valid when similarity > 0)
};

// scores: a list sorted best first (m entries); sim: m x m row-major
// similarities in [0, 1] between them (the diagonal is ignored). Picks the
// first `positions` greedily by score - lambda * scores[0] * (highest
// similarity to an already picked item); lambda is relative to the best
// score so that it does not depend on the scale of the scores. Returns all
// m positions: the picks, then the rest in their input order. Ties keep
// the input order, so lambda = 0 returns the input order.
std::vector<DiversifyPick> Diversify(std::span<const double> scores, std::span<const float> sim,
                                     double lambda, size_t positions);

}  // namespace tailor
