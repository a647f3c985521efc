// The response model's inputs: a small fixed feature vector per candidate of
// a decision, and the segment key that response posteriors are kept under.
//
// Cost model: everything that depends only on the customer and the moment
// (category affinities, channel, hour, DNA) is computed once per decision in
// a DecisionFeatures; per candidate only a category lookup in a short flat
// vector and a few stores remain.
//
// Layout (FeatureLayout, fixed once the plugin list is known):
//   0  bias                      always 1
//   1  blend                     the plugins' weighted mean score (today's P)
//   2  affinity_share            the customer's weighted events in the
//                                candidate's category / all weighted events
//   3  affinity_log              log1p(weighted events in the category)
//   4  affinity_none             1 when the customer has no events at all
//   5..8  channel web|app|email|other (one-hot; "" counts as other)
//   9..12 hour night 0-5|morning 6-11|afternoon 12-17|evening 18-23 (UTC
//         unless the request's context sets hour, as rules see it)
//   13 weekend                   Saturday or Sunday
//   14 discount                  the offer's maximum discount fraction
//   15 value                     V in [0, 1] (value / the placement's max)
//   16..31 dna                   16 hashed slots: trait t at slot
//                                DnaSlot(t), 1 for high, 0.5 medium, 0 low
//   32.. per plugin k: score (0 when it abstained), abstained (0/1)
// Affinity counts the distinct items purchased over the profile's whole held
// history (weight 3 each) and the other events among its recent ones
// (Profile::recent):
// add_to_cart 2, click/offer_click 1, view 0.25 (a view says little, a
// purchase most; views are most of a history, so reading all of them would
// cost more than it tells).
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "model/types.h"

namespace tailor::learning {

class FeatureLayout {
 public:
  static constexpr size_t kBias = 0;
  static constexpr size_t kBlend = 1;
  static constexpr size_t kAffinityShare = 2;
  static constexpr size_t kAffinityLog = 3;
  static constexpr size_t kAffinityNone = 4;
  static constexpr size_t kChannel = 5;  // 4 slots
  static constexpr size_t kHour = 9;     // 4 slots
  static constexpr size_t kWeekend = 13;
  static constexpr size_t kDiscount = 14;
  static constexpr size_t kValue = 15;
  static constexpr size_t kDna = 16;
  static constexpr size_t kDnaSlots = 16;
  static constexpr size_t kPlugins = kDna + kDnaSlots;  // 32

  FeatureLayout() = default;
  // The plugins in the order the engine scores them.
  explicit FeatureLayout(std::vector<std::string> plugins) : plugins_(std::move(plugins)) {}

  size_t size() const { return kPlugins + 2 * plugins_.size(); }
  size_t plugin_score(size_t k) const { return kPlugins + 2 * k; }
  size_t plugin_abstain(size_t k) const { return kPlugins + 2 * k + 1; }
  const std::vector<std::string>& plugins() const { return plugins_; }
  // One name per feature, for `why`, dumps and tests.
  std::vector<std::string> Names() const;

  // The DNA slot of a trait: FNV-1a of the name mod kDnaSlots (stable across
  // builds and runs; the shipped traits land in distinct slots).
  static size_t DnaSlot(std::string_view trait);

 private:
  std::vector<std::string> plugins_;
};

// What a decision knows before looking at any candidate.
struct DecisionFeatures {
  // Weighted event counts by category, unsorted; few entries (the
  // customer's categories), so a linear scan beats a hash.
  std::vector<std::pair<std::string, double>> category_weight;
  double total_weight = 0;
  size_t channel_slot = 3;  // other
  size_t hour_slot = 0;
  bool weekend = false;
  float dna[FeatureLayout::kDnaSlots] = {};

  double CategoryWeight(std::string_view category) const;
};

// hour 0..23 and weekday 0..6 (0 = Sunday) of a time in UTC, as rules' ctx.
std::pair<int, int> HourWeekday(int64_t now_ms);

// Builds the per-decision part. profile may be null (anonymous). hour and
// weekday as rules see them (the request context's, else HourWeekday(now)).
// dna: the plugins' facts["customer"]["dna"] object ({trait: bucket}) or
// null. Category of an event's item from the catalog; events naming an offer
// that promotes a category count for that category.
DecisionFeatures BuildDecisionFeatures(const Profile* profile, const Catalog& catalog,
                                       std::string_view channel, int hour, int weekday,
                                       const nlohmann::json* dna);

// One candidate as the score stage sees it.
struct CandidateInput {
  std::string_view category;  // the offer's or item's category ("" when none)
  double blend = 0;           // the plugins' weighted mean score
  // Plugin k's score is plugin_scores[k * stride] (engine layout: all scores
  // of plugin k are contiguous, so stride = the number of candidates).
  const float* plugin_scores = nullptr;
  size_t stride = 1;
  // Plugins that failed this request (engine: RuleRequest::plugin_ok); null:
  // all answered. Failed and abstaining plugins read as score 0, abstained 1.
  const std::vector<bool>* plugin_ok = nullptr;
  double discount = 0;  // the offer's maximum discount fraction, 0 for none
  double value = 0;     // V in [0, 1]
};

// Writes layout.size() features into out.
void CandidateFeatures(const FeatureLayout& layout, const DecisionFeatures& d,
                       const CandidateInput& c, float* out);

// The category a candidate answers for: the offer's promoted category, else
// its promoted item's category; for an item, the item's.
std::string_view OfferCategory(const Offer& offer, const Catalog& catalog);

// The segment key posteriors are kept under:
//   placement|channel[|trait=bucket...]
// traits in name order; with `traits` non-empty only those traits (in the
// order given) and a missing trait reads "trait=none". Example:
//   "home|web|deal_seeker=high|night_owl=low". An empty channel reads "-".
std::string SegmentKey(std::string_view placement, std::string_view channel,
                       const nlohmann::json* dna, const std::vector<std::string>& traits = {});

}  // namespace tailor::learning
