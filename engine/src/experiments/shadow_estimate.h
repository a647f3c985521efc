// What Tailor would have achieved on placements in shadow mode, from the
// shadow log (store: decisions with mode 'shadow', their impressions and
// outcomes, and shadow_picks).
#pragma once

#include <cstdint>

#include <nlohmann/json.hpp>

#include "store/store.h"

namespace tailor::experiments {

// Per placement, over shadow decisions with since_ms <= ts < until_ms
// (until_ms <= 0: no bound):
//   {"placements": {"<name>": {
//      "decisions",
//      "agreement": share of decisions whose served top == Tailor's top pick,
//      "served": {"impressions", "clicks", "conversions", "ctr" (clicks per
//                 impression), "model_ctr" (mean logged P(click) of the
//                 served offers), "calibration" (ctr / model_ctr),
//                 "conversion_rate" (per impression),
//                 "revenue_per_decision" (conversion values)},
//      "tailor": {"picks", "ctr" (mean P(click) of its picks),
//                 "calibrated_ctr" (ctr x the served calibration),
//                 "conversion_rate" (mean P(click) x P(convert | click)),
//                 "value_per_decision" (sum of P x value of its picks, per
//                 decision)},
//      "top_agreed" / "top_disagreed": {"decisions", "clicks", "ctr"}:
//                 observed clicks at position 1 on the decisions whose
//                 served top was (was not) Tailor's top pick}},
//    "decisions": total}
// Tailor's figures are the direct method: the logged P of its own picks, as
// good as the response model that produced them (served figures are
// observed). The offer value is the business value of a conversion that
// arbitration uses, not the purchase amount; compare values across
// placements and over time, not with served revenue directly.
nlohmann::json ShadowSummary(Store& store, int64_t since_ms, int64_t until_ms);

}  // namespace tailor::experiments
