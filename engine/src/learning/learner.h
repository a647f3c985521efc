// What the engine learns from responses, per placement, and how a decision
// reads it (decision/respond.cc):
//
//   P(click)            = the click model's P x the offer's correction
//   P(convert | click)  = the conversion model's P
//   P                   = P(click) x P(convert | click), so P x V is the
//                         expected value arbitration maximises
//
// - The click and conversion models (response_model.h) are online logistic
//   regressions over the candidate's features (features.h, plus the
//   interactions below); they carry what is personal: the customer's
//   affinity to the offer's category, DNA, the hour, the offer's discount and
//   value, the plugins' scores.
// - The correction is per offer x segment: Gamma(m + clicks, m + expected)
//   where expected is the sum of the click model's P over the offer's
//   impressions there (decayed with the placement's half-life) — what the
//   offer earns beyond what the model expects of it. m = 10 expected clicks.
//   Thompson sampling draws from it (as a Beta of the same mean and variance).
// - The response posteriors (response_stats.h) count impressions, clicks,
//   conversions and value per offer x segment for `why.response` and reports.
// - Linear Thompson sampling arms (linear_ts.h) per offer, for
//   `policy: linear_ts`.
//
// The feedback loop feeds it impressions and joined outcomes; state is rebuilt
// on start by replaying the stored impressions and outcomes, so nothing here is
// written to disk.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "config/config.h"
#include "learning/features.h"
#include "learning/linear_ts.h"
#include "learning/response_model.h"
#include "learning/response_stats.h"
#include "model/feedback.h"

namespace tailor::learning {

// Features appended to FeatureLayout's: this customer's own responses to
// this offer (what the engine's decisions taught about them: recent
// impressions wear an offer out, clicks and dismissals say what they think of
// it), the affinity relative to the customer's favourite category, and the
// interactions a main-effects model cannot express (deal seekers and
// discounts, big spenders and value, night owls at night).
struct Interactions {
  static constexpr size_t kAffinityRel = 0;  // category weight / the customer's largest
  static constexpr size_t kNight = 1;        // 22:00-02:59
  static constexpr size_t kShown1d = 2;      // log1p(impressions of the offer, 24 h)
  static constexpr size_t kShown7d = 3;      // log1p(impressions of the offer, 7 days)
  static constexpr size_t kClicked = 4;      // log1p(clicks on the offer, 30 days)
  static constexpr size_t kDismissed = 5;    // log1p(dismissals of the offer, 30 days)
  static constexpr size_t kDnaDiscount = 6;  // 16 slots: dna x discount
  static constexpr size_t kDnaValue = kDnaDiscount + FeatureLayout::kDnaSlots;
  static constexpr size_t kDnaNight = kDnaValue + FeatureLayout::kDnaSlots;
  static constexpr size_t kSize = kDnaNight + FeatureLayout::kDnaSlots;

  struct Own {  // the customer's responses to this offer
    double shown_1d = 0, shown_7d = 0, clicked = 0, dismissed = 0;
  };
  // Fills kSize values after the base features x[0 .. base).
  static void Append(const float* x, double affinity_rel, bool night, const Own& own, float* out);
};

// What the engine knows of one offer in one segment.
struct OfferCorrection {
  double clicks = 0, expected = 0;  // decayed to `at_ms`
  int64_t at_ms = 0;
};

class Learner {
 public:
  struct Placement {
    Placement(const PlacementConfig& config, size_t features);

    // The offer's correction of the click model in a segment, decayed to now.
    OfferCorrection Correction(std::string_view offer, std::string_view segment,
                               int64_t now_ms) const;
    void AddCorrection(std::string_view offer, std::string_view segment, double clicks,
                       double expected, int64_t ts_ms);

    ResponseStats stats;
    ResponseModel click;
    ResponseModel convert;  // given a click
    LinearTsModel linear;
    double half_life_ms;

   private:
    mutable std::shared_mutex mu_;
    std::unordered_map<std::string, OfferCorrection> corrections_;
  };

  // Pseudo expected clicks the correction's prior (1) is worth.
  static constexpr double kCorrectionStrength = 10.0;

  // plugin_names: the plugins in the order the engine scores them.
  explicit Learner(std::vector<std::string> plugin_names);

  const FeatureLayout& layout() const { return layout_; }
  // Features per candidate: the layout's and the interactions.
  size_t dim() const { return layout_.size() + Interactions::kSize; }

  // Creates the state of placements not seen before (a reload keeps what
  // existing placements learned).
  void Configure(const std::map<std::string, PlacementConfig>& placements);
  // Null for a placement Configure never saw.
  Placement* For(std::string_view placement) const;

  // One shown candidate (on decide, or when the app confirms it).
  // Impression::p_click is the click model's P at decision time.
  void Observe(const Impression& imp);
  // A response joined to an impression.
  void Observe(const Outcome& out);
  // Impressions whose label window passed without a response train the
  // models as negatives.
  size_t Flush(int64_t now_ms);

  // How far back a replay must read to rebuild the state.
  int64_t ReplayHorizonMs() const;

 private:
  FeatureLayout layout_;
  mutable std::mutex mu_;  // guards the map; placements live as long as the learner
  std::map<std::string, std::unique_ptr<Placement>, std::less<>> placements_;
};

}  // namespace tailor::learning
