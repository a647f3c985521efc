// Stage 9a: the explanation of a decision, as the reply and the stored trace
// show it.
#include "decision/stages.h"

namespace tailor {
namespace {

using nlohmann::json;

void NameCandidate(json& o, const tailor_candidate& c) {
  if (c.offer_id) o["offer"] = c.offer_id;
  if (c.item_id) o["item"] = c.item_id;
  if (c.category) o["category"] = c.category;
}

json PluginFactors(const ExplainInput& in, size_t i) {
  json pj = json::object();
  for (size_t k = 0; k < in.scores.names.size(); ++k) {
    if (!in.scores.ok[k]) continue;
    const float sc = in.scores.score(k, i);
    json& e = pj[in.scores.names[k]] = json::object();
    if (sc == TAILOR_SCORE_ABSTAIN)
      e["abstained"] = true;
    else
      e["score"] = sc;
    e["weight"] = in.scores.weights[k];
    const char* reason = in.scores.reason(k, i);
    if (reason[0]) e["reason"] = reason;
  }
  return pj;
}

}  // namespace

// Built member by member: an initializer list would copy every value once
// more, and this runs for each of the ~50 entries of a trace.
json WhyOf(const ExplainInput& in, size_t i) {
  const Judgement& j = in.judgement;
  json why = json::object();
  why["priority"] = j.priority[i];
  why["propensity"] = j.propensity[i];
  why["context"] = in.candidates.context[i];
  why["value"] = j.V(in.candidates, i, in.placement.value_exponent);
  why["levers"] = j.levers[i];
  why["business_value"] = in.candidates.values[i];
  why["plugins"] = PluginFactors(in, i);
  if (!j.notes[i].empty()) why["rules"] = j.notes[i];
  for (const Diversified& d : in.diversified)
    if (d.candidate == i)
      why["diversity"] = {{"penalty", d.penalty},
                          {"similarity", d.similarity},
                          {"similar_to", in.candidates.id(d.similar_to)}};
  if (in.scores.weight_sum[i] == 0)
    why["fallback"] = in.scores.weight_total == 0
                          ? "no plugin scored; propensity is the configured fallback"
                          : "every plugin abstained; propensity is the configured fallback";
  if (!in.dropped.empty()) why["dropped"] = in.dropped;
  if (in.responses && in.responses->active) {
    json& r = why["response"] =
        learning::ResponseWhy(in.responses->estimates[i], in.responses->segment);
    r["model_p_click"] = in.responses->model_p[i];
    r["correction"] = in.responses->correction[i];
  }
  return why;
}

namespace {

// The policy's pick at shown position r: how likely, and whether exploring.
void PolicyFactors(const ExplainInput& in, size_t r, json& why) {
  if (!in.picks || in.placement.policy.kind == learning::PolicyConfig::Kind::kGreedy ||
      r >= in.picks->propensity.size())
    return;
  json& p = why["policy"] = json::object();
  p["kind"] = learning::PolicyKindName(in.placement.policy.kind);
  p["probability"] = in.picks->propensity[r];
  if (in.picks->propensity_se[r] > 0) p["probability_se"] = in.picks->propensity_se[r];
  if (in.picks->explore[r]) why["explore"] = true;
}

}  // namespace

json ShownOffers(const ExplainInput& in, size_t shown) {
  json offers = json::array();
  for (size_t r = 0; r < shown; ++r) {
    const size_t i = in.ranked[r].candidate;
    json o = json::object();
    o["rank"] = r + 1;
    o["score"] = in.judgement.priority[i];
    json& why = o["why"] = WhyOf(in, i);
    PolicyFactors(in, r, why);
    if (!in.facts.empty()) why["facts"] = in.facts;
    NameCandidate(o, in.candidates.list[i]);
    offers.push_back(std::move(o));
  }
  return offers;
}

json DecisionTrace(const ExplainInput& in, size_t shown, uint64_t snapshot_version,
                   const std::vector<std::string>& finalize_notes, const TraceTotals* totals) {
  const size_t n = in.candidates.size();
  json entries = json::array();
  std::vector<char> is_shown(n, 0);
  for (size_t r = 0; r < shown; ++r) is_shown[in.ranked[r].candidate] = 1;
  size_t suppressed = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!in.judgement.vetoed[i] || suppressed++ >= kTraceSuppressed) continue;
    json t = json::object();
    t["status"] = "suppressed";
    t["why"] = WhyOf(in, i);
    NameCandidate(t, in.candidates.list[i]);
    entries.push_back(std::move(t));
  }
  // What the request's own filters left out: never scored, so its why is
  // the filter's note alone.
  for (const Candidates::Excluded& x : in.candidates.excluded) {
    json t = json::object();
    t["status"] = "suppressed";
    t["why"] = {{"rules", json::array({x.note})}};
    NameCandidate(t, x.candidate);
    entries.push_back(std::move(t));
  }
  suppressed += in.candidates.excluded_total;
  if (totals) suppressed += totals->suppressed_not_kept;
  for (size_t r = 0; r < in.ranked.size(); ++r) {
    const size_t i = in.ranked[r].candidate;
    json t = json::object();
    t["status"] = is_shown[i] ? "shown" : "not chosen";
    t["why"] = WhyOf(in, i);
    if (is_shown[i]) {
      t["rank"] = r + 1;
      PolicyFactors(in, r, t["why"]);
    }
    NameCandidate(t, in.candidates.list[i]);
    entries.push_back(std::move(t));
  }
  return {{"snapshot", snapshot_version},
          {"candidates", totals ? totals->candidates : n},
          {"suppressed", suppressed},
          {"finalize", finalize_notes},
          {"facts", in.facts},
          {"entries", std::move(entries)}};
}

}  // namespace tailor
