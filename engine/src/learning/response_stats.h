// Response posteriors: per key (an offer id, an item id, or "cat:" + a
// category) x segment (learning/features.h SegmentKey), decayed counts of
// impressions, clicks, conversions, conversion value and dismissals, and the
// Beta posteriors they give:
//
//   click:            Beta(m * p0 + clicks, m * (1 - p0) + impressions - clicks)
//   convert | click:  Beta(m * q0 + conversions, m * (1 - q0) + clicks - conversions)
//   value per conversion: (V + value) / (1 + conversions)   (V: the caller's default)
//
// m is prior_strength. The prior means are hierarchical: an offer's p0 is the
// posterior mean of its category's cell in the same segment less the offer's
// own counts (what the category's other offers earned here), whose own prior
// mean is the response model's P (learning/response_model.h); q0 likewise
// from the category cell with conversion_prior as its prior. A new offer
// therefore starts from what its category earned here, and a new category
// from the model.
//
// Decay: every count is worth 2^(-age / half_life). Counts are kept at the
// cell's newest observation time and decayed on read, so the result does not
// depend on the order observations arrive in (up to rounding). A response is
// counted at its impression's time (the time of the decision it answers;
// the response's own time when the impression carries none, ts_ms 0), so
// clicks never outweigh the impressions they answer.
//
// Persistence is a replay: nothing is written by this class. On start the
// engine feeds the stored impressions and outcomes back through Observe (any
// order; ReplayHorizonMs says how far back is worth reading), which rebuilds
// exactly the state a running engine would hold.
//
// Threads: many readers (the decide path) and any number of updaters. Cells
// live in 64 shards, each behind a shared_mutex; a read takes one shard's
// shared lock per cell looked up and allocates nothing.
#pragma once

#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "model/feedback.h"

namespace tailor::learning {

struct ResponseOptions {
  double half_life_days = 14;
  double prior_strength = 20;     // m: pseudo-impressions the prior is worth
  double conversion_prior = 0.1;  // q0 when the category has no clicks here
};

// Decayed counts, as of at_ms.
struct ResponseCounts {
  double impressions = 0;
  double clicks = 0;
  double conversions = 0;
  double value = 0;  // summed conversion value
  double dismissals = 0;
  int64_t at_ms = 0;
};

struct ResponseEstimate {
  enum class Source { kPosterior, kCategoryPrior, kModelPrior };
  double p_click = 0;  // posterior mean, alpha / (alpha + beta)
  double alpha = 0, beta = 0;
  double p_convert = 0;  // given a click
  double convert_alpha = 0, convert_beta = 0;
  double value_per_conversion = 0;
  // The key's own cell, decayed to the read time.
  double impressions = 0, clicks = 0, conversions = 0, dismissals = 0;
  Source source = Source::kModelPrior;
};

const char* SourceName(ResponseEstimate::Source s);

// The key a candidate's cell lives under: its offer id, else its item id.
std::string_view ResponseKey(const Impression& imp);
// "cat:" + category, the category cell's key.
std::string CategoryKey(std::string_view category);

class ResponseStats {
 public:
  explicit ResponseStats(ResponseOptions options = {});
  ResponseStats(const ResponseStats&) = delete;
  ResponseStats& operator=(const ResponseStats&) = delete;

  // One shown candidate: one impression for its key and its category.
  void Observe(const Impression& imp);
  // A response joined to an impression: a click, a conversion (with its
  // value) or a dismissal, for the impression's key and category.
  void Observe(const Outcome& out);
  // Replay: the same as observing each in turn.
  void ObserveAll(const std::vector<Impression>& imps, const std::vector<Outcome>& outs);

  // The posterior for key (offer or item id) with category (may be empty)
  // in segment, at now_ms. model_p: the response model's P for this
  // candidate, the category's prior mean. default_value: value per
  // conversion before any conversion is seen (e.g. the offer's value).
  ResponseEstimate Estimate(std::string_view key, std::string_view category,
                            std::string_view segment, double model_p, double default_value,
                            int64_t now_ms) const;

  // The decayed counts of one cell at now_ms (zero when it has none).
  ResponseCounts Counts(std::string_view key, std::string_view segment, int64_t now_ms) const;

  // Drops cells whose decayed impressions and clicks are both below
  // min_weight at now_ms; returns how many were dropped. Bounds memory for
  // keys and segments that stopped being shown.
  size_t Prune(int64_t now_ms, double min_weight = 0.01);

  // Observations older than this (10 half-lives: < 0.1% of their weight)
  // need not be replayed.
  int64_t ReplayHorizonMs() const;

  size_t cells() const;
  const ResponseOptions& options() const { return options_; }

 private:
  static constexpr size_t kShards = 64;
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  struct Shard {
    mutable std::shared_mutex mu;
    std::unordered_map<std::string, ResponseCounts, Hash, std::equal_to<>> cells;
  };
  enum class Field { kImpression, kClick, kConversion, kDismiss };

  void Add(std::string_view key, std::string_view segment, Field f, double value, int64_t ts_ms);
  // Copies a cell decayed to now_ms into *out; false when absent.
  bool Read(std::string_view key, std::string_view segment, int64_t now_ms,
            ResponseCounts* out) const;
  Shard& ShardOf(std::string_view cell_key) const;
  double Decay(int64_t dt_ms) const;

  ResponseOptions options_;
  double half_life_ms_;
  std::unique_ptr<Shard[]> shards_;
};

// A ResponseStats per placement, routed by Impression::placement.
class ResponseStatsSet {
 public:
  // One ResponseStats per placement named; observations for any other
  // placement are ignored.
  explicit ResponseStatsSet(const std::unordered_map<std::string, ResponseOptions>& placements);
  void Observe(const Impression& imp);
  void Observe(const Outcome& out);
  // Null for a placement not configured.
  const ResponseStats* For(std::string_view placement) const;
  ResponseStats* For(std::string_view placement);

 private:
  std::map<std::string, std::unique_ptr<ResponseStats>, std::less<>> by_placement_;
};

// why.response: {"p_click", "p_convert", "n", "clicks", "conversions",
// "source", "segment"} (numbers rounded to 4 significant places).
nlohmann::json ResponseWhy(const ResponseEstimate& e, std::string_view segment);

}  // namespace tailor::learning
