// Dynamic discounts with guardrails: the decision stage after the policy that
// chooses, for each shown offer declaring `discount: {min, max, step}` on a
// placement with `pricing: on`, the discount level that maximises expected
// margin
//
//   E[margin | d] = P(convert | shown at d, segment) x (price x (1 - d) - cost)
//
// by Thompson sampling over per-(offer, level, segment) Beta posteriors of
// P(convert | shown), learned online from the joined conversions. The cost
// is paid only when a conversion happens, so it sits inside the bracket.
//
// Guardrails (tailor.yaml `pricing:`, config.h PricingConfig):
// - the offer's range: only its own levels are ever chosen;
// - the margin floor: a level whose margin share (price x (1 - d) - cost) /
//   price is below min_margin is never chosen (the load refuses an offer
//   whose smallest discount is already below it);
// - protected attributes: the segment (the bandit's only view of the
//   customer) is built by PricingSegment, which never reads a protected
//   attribute (nor age for age_band and the other way round);
// - disparity: a rolling window of the chosen discounts by group (group_by)
//   is checked on every choice; while max group / min group of the average
//   discount is above the cap (or within 5% of it), choices shrink towards
//   the offer's overall mean in the window, harder the longer it lasts.
//
// State (posteriors, window) lives in memory for the engine's lifetime and
// survives reloads; it is not rebuilt from the store after a restart.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config.h"
#include "model/feedback.h"
#include "model/types.h"

namespace tailor::pricing {

// --- Levels and margins ---------------------------------------------------------

// min, min + step, ..., max (max always included); empty without a range.
std::vector<double> Levels(const Offer& offer);
// The offer's price, or its value when it sets none.
double PriceOf(const Offer& offer);
// price x (1 - d) - cost: the margin of one conversion at discount d.
double MarginAt(const Offer& offer, double discount);
// Whether level d keeps at least min_margin of the price as margin.
bool PassesFloor(const Offer& offer, double discount, double min_margin);

// --- Protected attributes and the feature builder -------------------------------

// Age bands for reports and the disparity check: "<25", "25-34", "35-49",
// "50+"; "unknown" when age is not a number.
std::string AgeBand(const nlohmann::json& age);
// Whether `name` is protected by the list (age_band and age protect each other).
bool IsProtected(const std::vector<std::string>& protected_attrs, const std::string& name);
// A customer's group on a protected attribute (age_band derived from age):
// used by the disparity check and the report, never by the model.
std::string GroupOf(const nlohmann::json& attributes, const std::string& attr);

// The pricing segment: "feature=value|..." over config.features, each from
// the plugins' facts.customer.dna, else the customer's attributes. A
// protected feature is skipped even if a config got past the load check.
std::string PricingSegment(const PricingConfig& config, const nlohmann::json& attributes,
                           const nlohmann::json& facts);

// --- Disparity ------------------------------------------------------------------

// One group's mean of a metric over n observations (the name is not owned).
struct GroupMean {
  std::string_view group;
  double mean = 0;
  int64_t n = 0;
};
// The largest group mean over the smallest, groups named "unknown" or with
// fewer than min_n observations left out: 1 when fewer than two groups count
// or the largest is 0; +infinity (unbounded) when the smallest is 0 beside a
// positive one. The groups are named from the first of equal means.
struct Disparity {
  double ratio = 1;
  std::string max_group, min_group;
};
Disparity MaxOverMin(const std::vector<GroupMean>& groups, int64_t min_n);

// The last `window` choices with their group; sums kept incrementally.
class DisparityWindow {
 public:
  DisparityWindow(size_t window, size_t min_group) : window_(window), min_group_(min_group) {}
  void Add(const std::string& offer, const std::string& group, double discount);
  // max / min of the groups' average discounts among groups with at least
  // min_group choices; 1 with fewer than two such groups (or a zero mean min).
  double Ratio() const;
  // The offer's mean discount over every group in the window; `fallback` when none.
  double OfferMean(const std::string& offer, double fallback) const;
  nlohmann::json GroupsJson() const;  // {group: {n, mean}}
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    std::string offer, group;
    double discount;
  };
  struct Sum {
    double sum = 0;
    size_t n = 0;
  };
  size_t window_, min_group_;
  std::deque<Entry> entries_;
  std::map<std::string, Sum> groups_;
  std::unordered_map<std::string, Sum> offers_;
};

// --- The bandit -----------------------------------------------------------------

struct Choice {
  bool priced = false;  // the offer has a range and pricing is on
  double discount = 0;
  double chosen_before_guardrail = 0;
  double expected_margin = 0;  // at the posterior mean of the level chosen
  double p_convert = 0;
  std::string guardrail;  // what a guardrail changed, empty if nothing
  double ratio = 1;       // the window's disparity ratio when chosen
  nlohmann::json alternatives = nlohmann::json::array();  // per allowed level
  nlohmann::json Why() const;                             // why.discount
};

class Pricer {
 public:
  Pricer() = default;
  Pricer(const Pricer&) = delete;
  Pricer& operator=(const Pricer&) = delete;

  // At start and on reload: guardrails change at once, posteriors stay;
  // the window restarts when its size or grouping changes.
  void Configure(const PricingConfig& config);

  // Chooses the discount for one shown offer. decision_id may be empty (no
  // learning from this choice). seed: deterministic per decision and offer.
  // commit false: a dry run (offline replays) that leaves the window and the
  // pending choices as they were.
  Choice Choose(const Offer& offer, const std::string& segment, const std::string& group,
                const std::string& decision_id, uint64_t seed, bool commit = true);

  // The feedback loop's observers: a shown priced impression is one trial of
  // its level; its first conversion is one success.
  void Observe(const Impression& impression);
  void Observe(const Outcome& outcome);

  // Posterior counts (trials, conversions) of one (offer, level, segment).
  std::pair<double, double> Counts(const std::string& offer, double level,
                                   const std::string& segment) const;
  double Ratio() const;
  nlohmann::json StatsJson() const;

  // Choices remembered until their impression and conversion arrive.
  static constexpr size_t kMaxPending = 131072;

 private:
  struct Arm {
    double trials = 0, conversions = 0;
  };
  struct Pending {
    std::string segment;
    double level = 0;
    bool shown = false, converted = false;
  };
  static std::string ArmKey(const std::string& offer, double level, const std::string& segment);
  // Adds to the cell and to its pooled margins: (every offer, level,
  // segment), (offer, every level, segment) and (every offer, every level,
  // segment).
  void Count(const std::string& offer, double level, const std::string& segment,
             double Arm::*field);
  // A cell's Beta prior: centred on the offer's rate in the segment times the
  // level's lift learned from the other offers in the segment.
  struct Prior {
    double mean = 0, strength = 0;
  };
  Prior PooledPrior(const std::string& offer, double level, const std::string& segment) const;
  void Remember(const std::string& decision_id, const std::string& offer, const std::string& seg,
                double level);

  mutable std::mutex mu_;
  PricingConfig config_;
  DisparityWindow window_{2000, 30};
  double shrink_ = 0;  // 0: no shrink, 1: every choice at the offer's mean
  std::unordered_map<std::string, Arm> arms_;
  std::unordered_map<std::string, Pending> pending_;
  std::deque<std::string> pending_order_;
  uint64_t choices_ = 0, shrunk_ = 0, floored_ = 0;
};

}  // namespace tailor::pricing
