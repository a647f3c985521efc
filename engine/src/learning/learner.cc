#include "learning/learner.h"

#include <algorithm>
#include <cmath>

namespace tailor::learning {
namespace {

constexpr int64_t kHourMs = 3600LL * 1000;
// AdaGrad's step: a placement sees a few thousand responses a week, and the
// weights that matter (category affinity) must move by several units.
constexpr double kLearningRate = 0.3;
// P(convert | click) before a placement has seen a conversion.
constexpr double kConversionPrior = 0.1;
// Impressions awaiting their label, per model: each holds its features
// (~0.5 KB), so this bounds a placement's pending memory near 64 MB; past it
// the oldest is labelled a negative early.
constexpr size_t kMaxPending = size_t{1} << 17;

ResponseOptions OptionsOf(const PlacementConfig& c) {
  ResponseOptions o;
  o.half_life_days = c.response.half_life_days;
  o.prior_strength = c.response.prior_strength;
  return o;
}

// Clicks come within minutes of the impression: one not clicked within an
// hour is a negative for the click model (a later click still counts in the
// posteriors). Conversions may take the whole attribution window.
ModelOptions ClickOptions(const PlacementConfig& c) {
  ModelOptions o;
  o.learning_rate = kLearningRate;
  o.max_pending = kMaxPending;
  o.label_window_ms = std::min<int64_t>(
      kHourMs, static_cast<int64_t>(c.attribution_hours * static_cast<double>(kHourMs)));
  return o;
}

ModelOptions ConvertOptions(const PlacementConfig& c) {
  ModelOptions o;
  o.learning_rate = kLearningRate;
  o.max_pending = kMaxPending;
  // Before any conversion: a constant rate, the blend says nothing of it.
  o.prior_intercept = std::log(kConversionPrior / (1 - kConversionPrior));
  o.prior_slope = 0;
  o.positive = Outcome::Kind::kConversion;
  o.label_window_ms = static_cast<int64_t>(c.attribution_hours * static_cast<double>(kHourMs));
  return o;
}

std::string CellKey(std::string_view offer, std::string_view segment) {
  std::string k;
  k.reserve(offer.size() + segment.size() + 1);
  k.append(offer).push_back('\x1f');
  k.append(segment);
  return k;
}

}  // namespace

void Interactions::Append(const float* x, double affinity_rel, bool night, const Own& own,
                          float* out) {
  out[kAffinityRel] = static_cast<float>(affinity_rel);
  out[kNight] = night ? 1.0f : 0.0f;
  out[kShown1d] = static_cast<float>(std::log1p(own.shown_1d));
  out[kShown7d] = static_cast<float>(std::log1p(own.shown_7d));
  out[kClicked] = static_cast<float>(std::log1p(own.clicked));
  out[kDismissed] = static_cast<float>(std::log1p(own.dismissed));
  const float discount = x[FeatureLayout::kDiscount];
  const float value = x[FeatureLayout::kValue];
  for (size_t s = 0; s < FeatureLayout::kDnaSlots; ++s) {
    const float dna = x[FeatureLayout::kDna + s];
    out[kDnaDiscount + s] = dna * discount;
    out[kDnaValue + s] = dna * value;
    out[kDnaNight + s] = night ? dna : 0.0f;
  }
}

Learner::Placement::Placement(const PlacementConfig& config, size_t features)
    : stats(OptionsOf(config)),
      click(features, ClickOptions(config)),
      convert(features, ConvertOptions(config)),
      linear(features),
      half_life_ms(config.response.half_life_days * 24.0 * static_cast<double>(kHourMs)) {}

OfferCorrection Learner::Placement::Correction(std::string_view offer, std::string_view segment,
                                               int64_t now_ms) const {
  OfferCorrection c;
  {
    std::shared_lock lock(mu_);
    auto it = corrections_.find(CellKey(offer, segment));
    if (it == corrections_.end()) return c;
    c = it->second;
  }
  if (now_ms > c.at_ms && half_life_ms > 0) {
    const double f = std::exp2(-static_cast<double>(now_ms - c.at_ms) / half_life_ms);
    c.clicks *= f;
    c.expected *= f;
    c.at_ms = now_ms;
  }
  return c;
}

void Learner::Placement::AddCorrection(std::string_view offer, std::string_view segment,
                                       double clicks, double expected, int64_t ts_ms) {
  std::unique_lock lock(mu_);
  OfferCorrection& c = corrections_[CellKey(offer, segment)];
  // Kept at the newest time seen; older observations are decayed to it.
  if (ts_ms > c.at_ms) {
    if (c.at_ms > 0 && half_life_ms > 0) {
      const double f = std::exp2(-static_cast<double>(ts_ms - c.at_ms) / half_life_ms);
      c.clicks *= f;
      c.expected *= f;
    }
    c.at_ms = ts_ms;
  } else if (half_life_ms > 0) {
    const double f = std::exp2(-static_cast<double>(c.at_ms - ts_ms) / half_life_ms);
    clicks *= f;
    expected *= f;
  }
  c.clicks += clicks;
  c.expected += expected;
}

Learner::Learner(std::vector<std::string> plugin_names) : layout_(std::move(plugin_names)) {}

void Learner::Configure(const std::map<std::string, PlacementConfig>& placements) {
  std::lock_guard lock(mu_);
  for (const auto& [name, config] : placements)
    if (!placements_.count(name))
      placements_.emplace(name, std::make_unique<Placement>(config, dim()));
}

Learner::Placement* Learner::For(std::string_view placement) const {
  std::lock_guard lock(mu_);
  auto it = placements_.find(placement);
  return it == placements_.end() ? nullptr : it->second.get();
}

void Learner::Observe(const Impression& imp) {
  Placement* p = For(imp.placement);
  if (!p) return;
  p->stats.Observe(imp);
  p->click.Observe(imp);
  std::string_view key = ResponseKey(imp);
  if (!key.empty()) p->AddCorrection(key, imp.segment, 0, imp.p_click, imp.ts_ms);
  if (!imp.features.empty() && !imp.offer_id.empty())
    p->linear.Arm(imp.offer_id).Update(imp.features, 0.0);
}

void Learner::Observe(const Outcome& out) {
  Placement* p = For(out.impression.placement);
  // A second click on the same shown offer is stored, but is one response.
  if (!p || !out.first_of_kind) return;
  p->stats.Observe(out);
  const Impression& imp = out.impression;
  std::string_view key = ResponseKey(imp);
  switch (out.kind) {
    case Outcome::Kind::kClick:
      p->click.Observe(out);
      // A clicked impression is a conversion model example, labelled when
      // it converts or its window passes.
      p->convert.Observe(imp);
      if (!key.empty()) p->AddCorrection(key, imp.segment, 1, 0, imp.ts_ms);
      // The weight-0 observation of the impression gets its reward.
      if (!imp.features.empty() && !imp.offer_id.empty())
        p->linear.Arm(imp.offer_id).AddReward(imp.features, 1.0);
      break;
    case Outcome::Kind::kConversion:
      p->convert.Observe(out);  // its positive (ModelOptions::positive)
      break;
    case Outcome::Kind::kDismiss:
      break;
  }
}

size_t Learner::Flush(int64_t now_ms) {
  std::vector<Placement*> all;
  {
    std::lock_guard lock(mu_);
    for (auto& [_, p] : placements_) all.push_back(p.get());
  }
  size_t n = 0;
  for (Placement* p : all) n += p->click.Flush(now_ms) + p->convert.Flush(now_ms);
  return n;
}

int64_t Learner::ReplayHorizonMs() const {
  std::lock_guard lock(mu_);
  int64_t h = 0;
  for (const auto& [_, p] : placements_) h = std::max(h, p->stats.ReplayHorizonMs());
  return h;
}

}  // namespace tailor::learning
