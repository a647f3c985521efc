// The stages of one decision, in order:
//
//   candidates -> score -> annotate -> judge (gates, journeys, rules)
//     -> arbitrate -> policy -> diversify -> finalize -> explain -> record
//
// Each stage is a function from the previous stages' outputs to its own
// output type, so it can be tested without a service (tests/unit/stages_test.cc).
// Engine::Decide (engine.cc) only strings them together. The outputs are
// plain structs of per-candidate vectors, reused between decisions of one
// thread so that a decision allocates little.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config.h"
#include "decision/sensitive_gate.h"
#include "decision/suppression.h"
#include "learning/learner.h"
#include "learning/policy.h"
#include "model/decide_request.h"
#include "model/types.h"
#include "plugin_host/host.h"
#include "pricing/pricing.h"
#include "rules/rules.h"
#include "tailor/plugin.h"

namespace tailor {

class Journeys;
class JourneyRuntime;
struct Metrics;

using PluginList = std::vector<std::unique_ptr<LoadedPlugin>>;
using Ranked = RuleRuntime::Ranked;

// ---- 1. candidates: what this placement may show at all ----------------------

struct Candidates {
  std::vector<tailor_candidate> list;  // ids point into the catalog
  std::vector<int> offer_index;        // into catalog.offers, or -1
  std::vector<int> item_index;         // into catalog.items, or -1 for offers
  std::vector<double> values;          // business value (margin) of a conversion
  std::vector<double> context;         // C: placement weight x channel weight
  // Left out by the request's own filters (exclude, include_categories,
  // exclude_categories; decision/suppression.h RequestFilter) before any
  // plugin scores or any cap applies: the first kTraceSuppressed, with
  // their note, for the trace; excluded_total counts all.
  struct Excluded {
    tailor_candidate candidate;
    std::string note;
  };
  std::vector<Excluded> excluded;
  size_t excluded_total = 0;

  size_t size() const { return list.size(); }
  // The offer id, or the item id for item placements.
  const char* id(size_t i) const { return list[i].offer_id ? list[i].offer_id : list[i].item_id; }
  void Clear();
};

// Offers valid now on this placement and channel, or up to max_candidates
// items (of context.category when the request names one); either without
// what the request's filters exclude (out->excluded).
void CollectCandidates(const Catalog& catalog, const PlacementConfig& placement,
                       const DecideRequest& req, int64_t now_ms, Candidates* out);

// ---- 2. score and 3. annotate: what the plugins think -----------------------

// How the stages call plugins: a failing plugin is counted, logged and named
// in `dropped` (every shown offer's why.dropped), and drops out of this one
// decision only.
struct PluginCall {
  const PluginList& plugins;
  const tailor_request_view& view;
  Metrics* metrics;
  nlohmann::json* dropped;
};

// A plugin call failed for this decision: named in `why.dropped` under
// plugin + what (".facts", ".reasons", ".similarity"), counted, and logged
// unless skipped (refused because the plugin was disabled before the call;
// the disabling was logged once).
void DropPlugin(const PluginCall& call, const std::string& plugin, const std::string& what,
                const Status& st, bool skipped);

// Bytes of one plugin reason.
constexpr size_t kReasonCap = 96;

struct PluginScores {
  size_t n = 0;                    // candidates
  std::vector<std::string> names;  // per plugin
  std::vector<bool> ok;            // scored this decision
  std::vector<double> weights;     // per plugin: the placement's plugin_weights, else its own
  std::vector<float> scores;       // plugin-major: [k * n + i]
  std::vector<double> weighted_sum, weight_sum;  // per candidate, over plugins that did not abstain
  double weight_total = 0;                       // weights of the plugins that scored
  // Reasons: with every score ([k][candidate]) or, when explain_after, only
  // for the candidates a reply names ([k][explained], filled by ExplainNamed).
  bool explain_after = false;
  std::vector<char> reasons;
  std::vector<tailor_candidate> explained;
  std::vector<int> explained_at;  // per candidate: its place in explained, or -1

  float score(size_t k, size_t i) const { return scores[k * n + i]; }
  const char* reason(size_t k, size_t i) const;
  // The blended P: weighted mean of the scores that did not abstain.
  double Blend(size_t i, double fallback) const {
    return weight_sum[i] > 0 ? weighted_sum[i] / weight_sum[i] : fallback;
  }
};

// Every plugin scores the whole batch. With explain_after the plugins give
// no reasons here (a large placement names few of its candidates).
// weight_overrides: the placement's plugin_weights (plugin name -> weight).
void ScoreCandidates(const PluginCall& call, const Candidates& candidates, bool explain_after,
                     const std::map<std::string, double>& weight_overrides, PluginScores* out);

// Facts (ABI 1.1) about the customer and the moment, merged over plugins: the
// request's own context wins over a plugin; among plugins, the first listed.
nlohmann::json AnnotateFacts(const PluginCall& call, const nlohmann::json& request_context);

// ---- 3b. respond: P as a calibrated probability of response ----------------

// Per candidate of an offers placement: the calibrated P(click) and
// P(convert | click) from the placement's response model and posteriors
// (learning/), and the features the decision used, so that a response later
// updates exactly what the decision used. Item placements keep the plugins'
// blend as P (thousands of candidates; their posteriors are read for the
// shown head only, by the policy).
struct Responses {
  bool active = false;
  std::string segment;
  size_t dim = 0;
  std::vector<float> features;  // [i * dim + f]
  std::vector<learning::ResponseEstimate> estimates;
  std::vector<double> p;           // P(click) x P(convert | click): the P arbitration uses
  std::vector<double> model_p;     // the click model's P, before the offer's correction
  std::vector<double> correction;  // the offer's correction (mean of its Gamma)

  const float* x(size_t i) const { return features.data() + i * dim; }
};

struct RespondInput {
  const learning::Learner::Placement* learned = nullptr;  // null: the placement learns nothing
  const learning::Learner* learner = nullptr;
  const Catalog& catalog;
  const PlacementConfig& placement;
  const DecideRequest& req;
  const Profile* profile = nullptr;  // null or unused when not personalised
  const nlohmann::json& facts;
  int64_t now_ms = 0;
};

void Respond(const RespondInput& in, const Candidates& candidates, const PluginScores& scores,
             Responses* out);

// ---- 4. judge: gates, journeys and rules ------------------------------------

struct JudgeContext {
  const PlacementConfig& placement;
  double fallback_propensity = 0.5;
  SensitiveCheck* sensitive = nullptr;  // never null in the engine
  // Contact policies (tailor.yaml suppression:), after the sensitive gate and
  // before journeys and rules; null: none.
  SuppressionCheck* suppression = nullptr;
  // Journeys judge when both are set (a personalised request).
  const Journeys* journeys = nullptr;
  JourneyRuntime* journey_runtime = nullptr;
  RuleRuntime* rules = nullptr;  // Begin()-ed for this request, or null
  // P per candidate (Responses::p); null: the plugins' blend.
  const std::vector<double>* propensity = nullptr;
  const std::string* customer = nullptr;
  const std::string* channel = nullptr;
  int64_t now_ms = 0;
};

struct Judgement {
  double max_value = 1;            // the largest business value among candidates
  std::vector<double> propensity;  // P
  std::vector<double> levers;      // L (1 unless a rule moved it)
  std::vector<double> priority;    // P x C x V x L; 0 when vetoed
  std::vector<char> evaluate;      // judged (large placements judge only the best)
  std::vector<char> vetoed;
  std::vector<std::vector<std::string>> notes;  // gate, journey and rule notes
  std::vector<size_t> eligible;                 // judged and not vetoed, candidate order

  // V = (value / max value) ^ value_exponent
  double V(const Candidates& c, size_t i, double value_exponent) const;
};

void Judge(const JudgeContext& ctx, const Candidates& candidates, const PluginScores& scores,
           Judgement* out);

// ---- 5. arbitrate: rank the eligible by priority ----------------------------

// The best `keep` eligible, best first; ties by id so equal priorities rank
// the same on every request. Reorders judgement->eligible.
std::vector<Ranked> Arbitrate(const Candidates& candidates, Judgement* judgement, size_t keep);

// ---- 6. policy: which of the ranked are shown -------------------------------

// Per shown position: the probability that the placement's policy shows
// this candidate there given the earlier positions (learning/policy.h), and
// whether it was an exploratory pick.
struct PolicyPicks {
  std::vector<double> propensity;
  std::vector<double> propensity_se;  // Monte Carlo standard error (0: exact)
  std::vector<char> explore;
  uint32_t samples = 0;
};

struct PolicyInput {
  const PlacementConfig& placement;
  const Candidates& candidates;
  const Judgement& judgement;
  const Responses& responses;
  const learning::Learner::Placement* learned = nullptr;
  uint64_t seed = 0;
};

// Runs after finalize, over what rules and journeys left eligible (so the
// logged propensities describe what is shown): moves the policy's picks to
// the first `shown` places of `ranked`, the rest keep their order.
void ApplyPolicy(const PolicyInput& in, size_t shown, std::vector<Ranked>* ranked,
                 learning::PolicyScratch* scratch, PolicyPicks* out);

// ---- 6b. price: the discount of each shown offer -----------------------------

// On a placement with `pricing: on`, each shown offer that declares a
// discount range gets its discount from the pricer (pricing/pricing.h); the
// customer reaches it only as the pricing segment (never a protected
// attribute) and, for the disparity check alone, their protected group.
struct PriceInput {
  const PlacementConfig& placement;
  const PricingConfig& config;
  const Catalog& catalog;
  const Candidates& candidates;
  const std::vector<Ranked>& ranked;
  size_t shown = 0;
  const Profile* profile = nullptr;  // null: not personalised
  const nlohmann::json& facts;
  const std::string& decision_id;
  bool commit = true;  // false: a dry run (DecideOptions::record false)
};

// Per shown position: the choice (priced false when nothing was priced).
void PriceShown(const PriceInput& in, pricing::Pricer* pricer, std::vector<pricing::Choice>* out);

// Writes each priced offer's `discount` and `why.discount` into the shown
// offers (ShownOffers' order).
void ApplyPrices(const std::vector<pricing::Choice>& prices, nlohmann::json* offers);

// ---- 7. diversify -----------------------------------------------------------

// A candidate moved down for its likeness to one picked before it, for `why`.
struct Diversified {
  size_t candidate, similar_to;
  double penalty, similarity;
};

struct DiversityScratch {
  std::vector<const char*> items;
  std::vector<double> scores;
  std::vector<float> similarity;
};

// Re-orders the head of `ranked` by maximal marginal relevance with one
// plugin's item similarities; without them the order stays and
// call.dropped says why.
std::vector<Diversified> DiversifyRanked(const PlacementConfig& placement, size_t limit,
                                         const PluginCall& call, const Candidates& candidates,
                                         DiversityScratch* scratch, std::vector<Ranked>* ranked);

// ---- 8. finalize ------------------------------------------------------------

// Keeps the best `finalized`, then lets the rules' finalize hooks reorder or
// trim them; ends the rules' request.
void FinalizeRanked(RuleRuntime* rules, size_t finalized, std::vector<Ranked>* ranked,
                    std::vector<std::string>* notes);

// Candidates kept in a decision's stored trace: every suppressed one (up to
// kTraceSuppressed) and the best kTraceEligible of the rest.
constexpr size_t kTraceEligible = 50;
constexpr size_t kTraceSuppressed = 200;

// Whether plugins give reasons in a second, small call for the candidates a
// reply names rather than with every score.
bool ExplainAfter(size_t candidates, int limit);

// The second call: reasons for the ranked and the first suppressed.
void ExplainNamed(const PluginCall& call, const Candidates& candidates,
                  const std::vector<Ranked>& ranked, const Judgement& judgement,
                  PluginScores* scores);

// ---- 9. explain and record --------------------------------------------------

// Everything a decision's `why` and trace are made of.
struct ExplainInput {
  const PlacementConfig& placement;
  const Candidates& candidates;
  const PluginScores& scores;
  const Judgement& judgement;
  const std::vector<Ranked>& ranked;
  const std::vector<Diversified>& diversified;
  const nlohmann::json& dropped;
  const nlohmann::json& facts;
  const Responses* responses = nullptr;  // why.response when active
  const PolicyPicks* picks = nullptr;    // why.policy and why.explore per shown position
};

// why: priority, its factors, every plugin's score and reason, the rules'
// notes, diversity and fallbacks.
nlohmann::json WhyOf(const ExplainInput& in, size_t candidate);

// The shown offers (rank, score, why, ids), best first.
nlohmann::json ShownOffers(const ExplainInput& in, size_t shown);

// A trace rendered from a compact copy (decision/trace.h) names the
// decision's own totals rather than the copy's.
struct TraceTotals {
  size_t candidates = 0;           // of the decision
  size_t suppressed_not_kept = 0;  // vetoed past kTraceSuppressed, not in the copy
};

// The stored trace: everything shown, the suppressed (bounded) and the best
// of what did not make the cut.
nlohmann::json DecisionTrace(const ExplainInput& in, size_t shown, uint64_t snapshot_version,
                             const std::vector<std::string>& finalize_notes,
                             const TraceTotals* totals = nullptr);

}  // namespace tailor
