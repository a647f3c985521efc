// Stage 4: the sensitive gate, journeys and rules judge each candidate; what
// survives gets its priority P x C x V x L.
#include <algorithm>
#include <cmath>
#include <utility>

#include "decision/stages.h"
#include "journeys/runtime.h"

namespace tailor {
namespace {

double PropensityOf(const JudgeContext& ctx, const PluginScores& scores, size_t i) {
  return ctx.propensity ? (*ctx.propensity)[i] : scores.Blend(i, ctx.fallback_propensity);
}

// Large item placements: journeys and rules judge only the best
// rules_candidates by P x C x V; the rest are never shown, so nothing
// reaches a customer unchecked.
void ChooseJudged(const JudgeContext& ctx, const Candidates& c, const PluginScores& scores,
                  Judgement* out) {
  const size_t n = c.size();
  out->evaluate.assign(n, 1);
  const size_t cap = ctx.placement.rules_candidates;
  if (!(ctx.rules || ctx.journeys) || cap == 0 || n <= cap) return;
  std::vector<std::pair<double, size_t>> base(n);
  for (size_t i = 0; i < n; ++i)
    base[i] = {
        PropensityOf(ctx, scores, i) * c.context[i] * out->V(c, i, ctx.placement.value_exponent),
        i};
  std::nth_element(base.begin(), base.begin() + static_cast<std::ptrdiff_t>(cap), base.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  std::fill(out->evaluate.begin(), out->evaluate.end(), 0);
  for (size_t k = 0; k < cap; ++k) out->evaluate[base[k].second] = 1;
}

// The gates in order; returns false when one vetoed (its note recorded).
bool PassesGates(const JudgeContext& ctx, const Candidates& c, size_t i, Judgement* out) {
  // The sensitive gate before journeys and rules: it fails closed, and a
  // vetoed candidate never reaches a rule that could lift it.
  if (std::string veto = ctx.sensitive->Veto(c.offer_index[i], c.item_index[i]); !veto.empty()) {
    out->notes[i].push_back(std::move(veto));
    return false;
  }
  // Then the contact policies: what this customer dismissed (or ignored) is
  // away for the policy's days, and no journey or rule can bring it back.
  if (ctx.suppression) {
    const tailor_candidate& cand = c.list[i];
    std::string veto = ctx.suppression->Veto(CandidateRef{cand.offer_id ? cand.offer_id : "",
                                                          cand.item_id ? cand.item_id : "",
                                                          cand.category ? cand.category : ""});
    if (!veto.empty()) {
      out->notes[i].push_back(std::move(veto));
      return false;
    }
  }
  // Then journeys: a stage that does not allow this offer or item (its
  // channel, category or a contact cap) suppresses it before any rule runs.
  if (ctx.journeys && ctx.journey_runtime) {
    const tailor_candidate& cand = c.list[i];
    JourneyRuntime::Verdict v = ctx.journey_runtime->Check(
        *ctx.journeys, *ctx.customer, *ctx.channel, cand.offer_id ? cand.offer_id : "",
        cand.category ? cand.category : "", ctx.now_ms);
    if (!v.journey.empty())
      out->notes[i].push_back("journey " + v.journey + ", stage " + v.stage +
                              (v.allowed ? "" : ": " + v.reason));
    if (!v.allowed) return false;
  }
  return true;
}

}  // namespace

double Judgement::V(const Candidates& c, size_t i, double value_exponent) const {
  return std::pow(c.values[i] / max_value, value_exponent);
}

void Judge(const JudgeContext& ctx, const Candidates& c, const PluginScores& scores,
           Judgement* out) {
  const size_t n = c.size();
  out->max_value = 0;
  for (double v : c.values) out->max_value = std::max(out->max_value, v);
  if (out->max_value <= 0) out->max_value = 1;
  out->priority.resize(n);
  out->propensity.resize(n);
  out->levers.assign(n, 1.0);
  out->vetoed.assign(n, 0);
  if (out->notes.size() < n) out->notes.resize(n);
  out->eligible.clear();
  ChooseJudged(ctx, c, scores, out);
  const double exponent = ctx.placement.value_exponent;
  for (size_t i = 0; i < n; ++i) {
    out->notes[i].clear();
    const double P = PropensityOf(ctx, scores, i);
    out->propensity[i] = P;
    if (!out->evaluate[i]) {
      out->priority[i] = P * c.context[i] * out->V(c, i, exponent);
      continue;
    }
    if (!PassesGates(ctx, c, i, out)) {
      out->vetoed[i] = 1;
      out->priority[i] = 0;
      continue;
    }
    if (ctx.rules) {
      RuleEffect fx = ctx.rules->Evaluate(i, c.offer_index[i], c.item_index[i], P);
      out->vetoed[i] = fx.vetoed;
      out->levers[i] = fx.levers;
      for (auto& note : fx.reasons) out->notes[i].push_back(std::move(note));
    }
    out->priority[i] = P * c.context[i] * out->V(c, i, exponent) * out->levers[i];
    if (!out->vetoed[i]) out->eligible.push_back(i);
  }
}

}  // namespace tailor
