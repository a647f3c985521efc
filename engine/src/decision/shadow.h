// Experiments and shadow mode inside one decision (Engine::Decide):
// an arm's offer list narrows the candidates; in shadow mode the reply and
// the impressions are the application's own choice while Tailor's picks go
// to the shadow log (store: shadow_picks) for experiments/shadow_estimate.h.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "decision/stages.h"
#include "experiments/experiments.h"
#include "model/api_error.h"
#include "store/store.h"

namespace tailor {

// Drops the offers the arm's `offers:` list leaves out; they are listed in
// the trace as excluded ("not in experiment arm ...").
void KeepArmOffers(const experiments::Arm& arm, Candidates* candidates);

// The request's shadow choice against the placement: offers for an offers
// placement, items for an items placement, every id in the catalog. The
// error names the field ("shadow.offers[2]").
std::optional<ApiError> CheckShadowChoice(const ShadowChoice& choice,
                                          const PlacementConfig& placement, const Catalog& catalog);

// Tailor's own first `shown` picks, for the shadow log.
std::vector<ShadowPick> ShadowPicksOf(const Candidates& candidates, const Judgement& judgement,
                                      const Responses& responses, const PolicyPicks& picks,
                                      const std::vector<Ranked>& ranked, size_t shown);

// The reply's offers for the served choice, in the application's order:
// {"rank", "offer"|"item", "why": {"shadow": {"served_by": "app", "tailor_rank"}}}
// where tailor_rank is the candidate's place in Tailor's own order (absent
// when Tailor did not rank it).
nlohmann::json ServedOffers(const ShadowChoice& choice, const Candidates& candidates,
                            const std::vector<Ranked>& ranked);

// The served choice as impressions: propensity 1 (the application chose
// deterministically); P, segment and features from the decision where Tailor
// had the candidate, so responses to the app's choice still teach the models.
std::vector<Impression> ServedImpressions(const ShadowChoice& choice, const Candidates& candidates,
                                          const Judgement& judgement, const Responses& responses,
                                          const Catalog& catalog, const DecideRequest& req,
                                          const std::string& decision_id, int64_t now_ms);

// why.experiment: {"name", "arm", "layer"} ("layer" absent for the holdout).
nlohmann::json ExperimentJson(const experiments::Assignment& a);

}  // namespace tailor
