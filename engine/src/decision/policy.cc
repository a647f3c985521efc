// Stage 6: the placement's policy picks what is shown among the eligible.
#include <algorithm>

#include "decision/stages.h"

namespace tailor {

void ApplyPolicy(const PolicyInput& in, size_t shown, std::vector<Ranked>* ranked,
                 learning::PolicyScratch* scratch, PolicyPicks* out) {
  shown = std::min(shown, ranked->size());
  out->propensity.assign(shown, 1.0);
  out->propensity_se.assign(shown, 0.0);
  out->explore.assign(shown, 0);
  out->samples = 0;
  if (in.placement.policy.kind == learning::PolicyConfig::Kind::kGreedy || shown == 0) return;
  const double exponent = in.placement.value_exponent;
  const double m = std::max(1.0, in.placement.response.prior_strength);
  static thread_local std::vector<learning::PolicyCandidate> cands;
  cands.assign(ranked->size(), learning::PolicyCandidate{});
  for (size_t r = 0; r < ranked->size(); ++r) {
    const size_t i = (*ranked)[r].candidate;
    learning::PolicyCandidate& pc = cands[r];
    const double cvl = in.candidates.context[i] * in.judgement.V(in.candidates, i, exponent) *
                       in.judgement.levers[i];
    if (in.responses.active) {
      // The click is sampled; the rest of the priority stays its estimate.
      const learning::ResponseEstimate& e = in.responses.estimates[i];
      pc.factors = cvl * e.p_convert;
      pc.alpha = e.alpha;
      pc.beta = e.beta;
      pc.features = {in.responses.x(i), in.responses.dim};
      if (in.learned && in.candidates.list[i].offer_id)
        pc.arm = in.learned->linear.Find(in.candidates.list[i].offer_id);
    } else {
      // No posterior (items): P itself, worth prior_strength impressions.
      const double p = std::clamp(in.judgement.propensity[i], 1e-3, 1 - 1e-3);
      pc.factors = cvl;
      pc.alpha = p * m;
      pc.beta = (1 - p) * m;
    }
  }
  const learning::PolicyResult result =
      learning::Choose(in.placement.policy, cands, shown, in.seed, *scratch);
  // The picks first, in the policy's order; the rest keep theirs.
  std::vector<Ranked> reordered;
  reordered.reserve(ranked->size());
  std::vector<char> picked(ranked->size(), 0);
  for (size_t r = 0; r < result.shown.size(); ++r) {
    const learning::PolicyPick& pick = result.shown[r];
    picked[pick.index] = 1;
    reordered.push_back(std::move((*ranked)[pick.index]));
    out->propensity[r] = pick.propensity;
    out->propensity_se[r] = pick.propensity_se;
    out->explore[r] = pick.explore ? 1 : 0;
  }
  for (size_t r = 0; r < ranked->size(); ++r)
    if (!picked[r]) reordered.push_back(std::move((*ranked)[r]));
  *ranked = std::move(reordered);
  out->samples = result.samples;
}

}  // namespace tailor
