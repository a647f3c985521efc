#include "decision/trace.h"

#include <cstring>

namespace tailor {
namespace {

using nlohmann::json;

// The candidates a trace names, in candidate order: the first
// kTraceSuppressed vetoed, every ranked one, and those a diversity note
// names.
std::vector<size_t> Traced(const ExplainInput& in, size_t* vetoed_total) {
  const size_t n = in.candidates.size();
  std::vector<char> keep(n, 0);
  size_t vetoed = 0;
  for (size_t i = 0; i < n; ++i)
    if (in.judgement.vetoed[i] && vetoed++ < kTraceSuppressed) keep[i] = 1;
  for (const Ranked& r : in.ranked) keep[r.candidate] = 1;
  for (const Diversified& d : in.diversified) keep[d.candidate] = keep[d.similar_to] = 1;
  *vetoed_total = vetoed;
  std::vector<size_t> out;
  for (size_t i = 0; i < n; ++i)
    if (keep[i]) out.push_back(i);
  return out;
}

// The copy: ExplainInput's parts over the traced candidates only, which
// DecisionTrace then reads as if they were the whole decision.
struct Captured {
  std::shared_ptr<const void> keep_alive;
  const PlacementConfig* placement = nullptr;
  Candidates candidates;
  PluginScores scores;
  Judgement judgement;
  std::vector<Ranked> ranked;
  std::vector<Diversified> diversified;
  json dropped, facts;
  Responses responses;
  PolicyPicks picks;
  bool has_responses = false, has_picks = false;
  size_t shown = 0;
  uint64_t version = 0;
  std::vector<std::string> finalize;
  TraceTotals totals;

  std::string Render() const {
    static const PluginList kNoPlugins;
    const ExplainInput in{*placement,
                          candidates,
                          scores,
                          judgement,
                          ranked,
                          diversified,
                          kNoPlugins,
                          dropped,
                          facts,
                          has_responses ? &responses : nullptr,
                          has_picks ? &picks : nullptr};
    return DecisionTrace(in, shown, version, finalize, &totals)
        .dump(-1, ' ', false, json::error_handler_t::replace);
  }
};

void CopyCandidates(const Candidates& c, const std::vector<size_t>& at, Candidates* out) {
  for (size_t i : at) {
    out->list.push_back(c.list[i]);
    out->context.push_back(c.context[i]);
    out->values.push_back(c.values[i]);
  }
  out->excluded = c.excluded;
  out->excluded_total = c.excluded_total;
}

void CopyScores(const PluginScores& s, const std::vector<size_t>& at, PluginScores* out) {
  const size_t m = at.size(), k_n = s.names.size();
  out->n = m;
  out->names = s.names;
  out->ok = s.ok;
  out->weights = s.weights;
  out->weight_total = s.weight_total;
  out->explain_after = false;
  out->scores.resize(k_n * m);
  out->reasons.assign(k_n * m * kReasonCap, 0);
  for (size_t j = 0; j < m; ++j) {
    out->weight_sum.push_back(s.weight_sum[at[j]]);
    for (size_t k = 0; k < k_n; ++k) {
      out->scores[k * m + j] = s.score(k, at[j]);
      if (!s.ok[k]) continue;
      std::strncpy(out->reasons.data() + (k * m + j) * kReasonCap, s.reason(k, at[j]),
                   kReasonCap - 1);
    }
  }
}

void CopyJudgement(const Judgement& j, const std::vector<size_t>& at, Judgement* out) {
  out->max_value = j.max_value;
  for (size_t i : at) {
    out->propensity.push_back(j.propensity[i]);
    out->levers.push_back(j.levers[i]);
    out->priority.push_back(j.priority[i]);
    out->vetoed.push_back(j.vetoed[i]);
    out->notes.push_back(j.notes[i]);
  }
}

void CopyResponses(const Responses& r, const std::vector<size_t>& at, Responses* out) {
  out->active = r.active;
  out->segment = r.segment;
  for (size_t i : at) {
    out->estimates.push_back(r.estimates[i]);
    out->model_p.push_back(r.model_p[i]);
    out->correction.push_back(r.correction[i]);
  }
}

}  // namespace

std::function<std::string()> CaptureTrace(const ExplainInput& in, size_t shown,
                                          uint64_t snapshot_version,
                                          const std::vector<std::string>& finalize_notes,
                                          std::shared_ptr<const void> keep_alive) {
  auto c = std::make_shared<Captured>();
  size_t vetoed = 0;
  const std::vector<size_t> at = Traced(in, &vetoed);
  std::vector<size_t> index(in.candidates.size(), 0);  // candidate -> place in the copy
  for (size_t j = 0; j < at.size(); ++j) index[at[j]] = j;
  c->keep_alive = std::move(keep_alive);
  c->placement = &in.placement;
  CopyCandidates(in.candidates, at, &c->candidates);
  CopyScores(in.scores, at, &c->scores);
  CopyJudgement(in.judgement, at, &c->judgement);
  for (Ranked r : in.ranked) {
    r.candidate = index[r.candidate];
    c->ranked.push_back(std::move(r));
  }
  for (Diversified d : in.diversified) {
    d.candidate = index[d.candidate];
    d.similar_to = index[d.similar_to];
    c->diversified.push_back(d);
  }
  c->dropped = in.dropped;
  c->facts = in.facts;
  if (in.responses && in.responses->active) {
    c->has_responses = true;
    CopyResponses(*in.responses, at, &c->responses);
  }
  if (in.picks) {
    c->has_picks = true;
    c->picks = *in.picks;
  }
  c->shown = shown;
  c->version = snapshot_version;
  c->finalize = finalize_notes;
  c->totals.candidates = in.candidates.size();
  c->totals.suppressed_not_kept = vetoed - std::min(vetoed, kTraceSuppressed);
  return [c] { return c->Render(); };
}

}  // namespace tailor
