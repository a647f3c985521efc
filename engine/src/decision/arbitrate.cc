// Stages 5, 7 and 8: rank the eligible, diversify, finalize.
#include <algorithm>
#include <cstring>
#include <iterator>

#include "decision/diversify.h"
#include "decision/stages.h"
#include "metrics/metrics.h"

namespace tailor {

std::vector<Ranked> Arbitrate(const Candidates& candidates, Judgement* judgement, size_t keep) {
  std::vector<size_t>& order = judgement->eligible;
  keep = std::min(keep, order.size());
  const std::vector<double>& priority = judgement->priority;
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(keep), order.end(),
                    [&](size_t a, size_t b) {
                      if (priority[a] != priority[b]) return priority[a] > priority[b];
                      return std::strcmp(candidates.id(a), candidates.id(b)) < 0;
                    });
  std::vector<Ranked> ranked;
  ranked.reserve(keep);
  for (size_t r = 0; r < keep; ++r) {
    const size_t i = order[r];
    const char* category = candidates.list[i].category;
    ranked.push_back({i, candidates.id(i), priority[i], category ? category : std::string()});
  }
  return ranked;
}

std::vector<Diversified> DiversifyRanked(const PlacementConfig& placement, size_t limit,
                                         const PluginCall& call, const Candidates& candidates,
                                         DiversityScratch* s, std::vector<Ranked>* ranked) {
  std::vector<Diversified> out;
  if (ranked->size() < 2) return out;
  LoadedPlugin* by = nullptr;
  for (const auto& p : call.plugins)
    if (p->can_similarity() &&
        (placement.diversity_by.empty() || p->name() == placement.diversity_by)) {
      by = p.get();
      break;
    }
  if (by == nullptr) {
    call.metrics->counters.Add("diversity.unavailable");
    (*call.dropped)["diversity"] = placement.diversity_by.empty()
                                       ? "no loaded plugin offers item similarities"
                                       : "plugin '" + placement.diversity_by +
                                             "' is not loaded or offers no item similarities";
    return out;
  }
  const size_t m = std::min(ranked->size(), placement.diversity_pool);
  s->items.clear();
  s->scores.clear();
  for (size_t r = 0; r < m; ++r) {
    const char* item = candidates.list[(*ranked)[r].candidate].item_id;
    s->items.push_back(item ? item : "");
    s->scores.push_back((*ranked)[r].priority);
  }
  s->similarity.resize(m * m);
  const bool skipped = by->disabled();
  if (Status st = by->Similarity(s->items.data(), m, s->similarity.data()); !st.ok()) {
    DropPlugin(call, by->name(), ".similarity", st, skipped);
    return out;
  }
  const std::vector<DiversifyPick> picks =
      Diversify(s->scores, s->similarity, placement.diversity, std::min(m, limit));
  // Moved out and back: every one of the first m places is refilled below.
  std::vector<Ranked> head(
      std::make_move_iterator(ranked->begin()),
      std::make_move_iterator(ranked->begin() + static_cast<std::ptrdiff_t>(m)));
  for (size_t r = 0; r < m; ++r) {
    const DiversifyPick& pick = picks[r];
    (*ranked)[r] = std::move(head[pick.from]);
    if (pick.similarity > 0 && pick.from < r)  // moved down by its likeness
      out.push_back(
          {(*ranked)[r].candidate, head[pick.similar_to].candidate, pick.penalty, pick.similarity});
  }
  call.metrics->counters.Add("diversity.applied");
  return out;
}

void FinalizeRanked(RuleRuntime* rules, size_t finalized, std::vector<Ranked>* ranked,
                    std::vector<std::string>* notes) {
  ranked->resize(std::min(finalized, ranked->size()));
  if (!rules) return;
  rules->Finalize(ranked, notes);
  rules->End();
}

}  // namespace tailor
