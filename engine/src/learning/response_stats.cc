#include "learning/response_stats.h"

#include <algorithm>
#include <cmath>

namespace tailor::learning {
namespace {

constexpr double kMsPerDay = 86400000.0;
constexpr char kSep = '\x1f';  // between key and segment: in neither

// key \x1f segment, in a per-thread buffer so that reads allocate nothing
// once it has grown.
std::string_view CellKey(std::string_view key, std::string_view segment) {
  static thread_local std::string buf;
  buf.clear();
  buf.append(key);
  buf += kSep;
  buf.append(segment);
  return buf;
}

double Round4(double x) {
  if (x == 0 || !std::isfinite(x)) return x;
  double scale = std::pow(10.0, 3 - std::floor(std::log10(std::fabs(x))));
  return std::round(x * scale) / scale;
}

double Clamp01(double p) { return std::min(1.0, std::max(0.0, p)); }

}  // namespace

const char* SourceName(ResponseEstimate::Source s) {
  switch (s) {
    case ResponseEstimate::Source::kPosterior:
      return "posterior";
    case ResponseEstimate::Source::kCategoryPrior:
      return "category prior";
    case ResponseEstimate::Source::kModelPrior:
      return "model prior";
  }
  return "model prior";
}

std::string_view ResponseKey(const Impression& imp) {
  return imp.offer_id.empty() ? std::string_view(imp.item_id) : std::string_view(imp.offer_id);
}

std::string CategoryKey(std::string_view category) {
  std::string k = "cat:";
  k.append(category);
  return k;
}

ResponseStats::ResponseStats(ResponseOptions options)
    : options_(options),
      half_life_ms_(std::max(options.half_life_days, 1e-6) * kMsPerDay),
      shards_(new Shard[kShards]) {}

ResponseStats::Shard& ResponseStats::ShardOf(std::string_view cell_key) const {
  return shards_[Hash{}(cell_key) % kShards];
}

double ResponseStats::Decay(int64_t dt_ms) const {
  if (dt_ms <= 0) return 1.0;
  return std::exp2(-static_cast<double>(dt_ms) / half_life_ms_);
}

void ResponseStats::Add(std::string_view key, std::string_view segment, Field f, double value,
                        int64_t ts_ms) {
  if (key.empty()) return;
  std::string_view ck = CellKey(key, segment);
  Shard& sh = ShardOf(ck);
  std::unique_lock lock(sh.mu);
  auto it = sh.cells.find(ck);
  if (it == sh.cells.end()) {
    it = sh.cells.emplace(std::string(ck), ResponseCounts{}).first;
    it->second.at_ms = ts_ms;
  }
  ResponseCounts& c = it->second;
  double w = 1.0;
  if (ts_ms > c.at_ms) {
    // Bring the cell forward to the newer time, then add at full weight.
    double d = Decay(ts_ms - c.at_ms);
    c.impressions *= d;
    c.clicks *= d;
    c.conversions *= d;
    c.value *= d;
    c.dismissals *= d;
    c.at_ms = ts_ms;
  } else {
    w = Decay(c.at_ms - ts_ms);  // an older observation arriving late
  }
  switch (f) {
    case Field::kImpression:
      c.impressions += w;
      break;
    case Field::kClick:
      c.clicks += w;
      break;
    case Field::kConversion:
      c.conversions += w;
      c.value += w * value;
      break;
    case Field::kDismiss:
      c.dismissals += w;
      break;
  }
}

bool ResponseStats::Read(std::string_view key, std::string_view segment, int64_t now_ms,
                         ResponseCounts* out) const {
  if (key.empty()) return false;
  std::string_view ck = CellKey(key, segment);
  const Shard& sh = ShardOf(ck);
  {
    std::shared_lock lock(sh.mu);
    auto it = sh.cells.find(ck);
    if (it == sh.cells.end()) return false;
    *out = it->second;
  }
  double d = Decay(now_ms - out->at_ms);
  out->impressions *= d;
  out->clicks *= d;
  out->conversions *= d;
  out->value *= d;
  out->dismissals *= d;
  out->at_ms = std::max(out->at_ms, now_ms);
  return true;
}

void ResponseStats::Observe(const Impression& imp) {
  Add(ResponseKey(imp), imp.segment, Field::kImpression, 0, imp.ts_ms);
  if (!imp.category.empty())
    Add(CategoryKey(imp.category), imp.segment, Field::kImpression, 0, imp.ts_ms);
}

void ResponseStats::Observe(const Outcome& out) {
  const Impression& imp = out.impression;
  Field f = out.kind == Outcome::Kind::kClick        ? Field::kClick
            : out.kind == Outcome::Kind::kConversion ? Field::kConversion
                                                     : Field::kDismiss;
  // Counted at the impression's time: decay then treats a response exactly
  // like the impression it answers.
  int64_t ts = imp.ts_ms != 0 ? imp.ts_ms : out.ts_ms;
  double value = std::isfinite(out.value) ? out.value : 0.0;
  Add(ResponseKey(imp), imp.segment, f, value, ts);
  if (!imp.category.empty()) Add(CategoryKey(imp.category), imp.segment, f, value, ts);
}

void ResponseStats::ObserveAll(const std::vector<Impression>& imps,
                               const std::vector<Outcome>& outs) {
  for (const Impression& i : imps) Observe(i);
  for (const Outcome& o : outs) Observe(o);
}

ResponseCounts ResponseStats::Counts(std::string_view key, std::string_view segment,
                                     int64_t now_ms) const {
  ResponseCounts c;
  if (!Read(key, segment, now_ms, &c)) c.at_ms = now_ms;
  return c;
}

ResponseEstimate ResponseStats::Estimate(std::string_view key, std::string_view category,
                                         std::string_view segment, double model_p,
                                         double default_value, int64_t now_ms) const {
  const double m = options_.prior_strength;
  ResponseEstimate e;
  double p0 = Clamp01(std::isfinite(model_p) ? model_p : 0.0);
  double q0 = Clamp01(options_.conversion_prior);
  ResponseCounts own;
  bool has_own = Read(key, segment, now_ms, &own) && own.impressions > 0;
  if (!has_own) own = ResponseCounts{};
  // The prior mean is the category cell's posterior mean without this key's
  // own counts (leave one out), so the key's data is not counted twice.
  if (!category.empty()) {
    static thread_local std::string ck;
    ck.assign("cat:");
    ck.append(category);
    ResponseCounts cat;
    if (Read(ck, segment, now_ms, &cat)) {
      double imps = std::max(0.0, cat.impressions - own.impressions);
      double cat_clicks = std::clamp(cat.clicks - own.clicks, 0.0, imps);
      double cat_convs = std::max(0.0, cat.conversions - own.conversions);
      // Others' impressions worth less than a thousandth of one are rounding.
      if (imps > 1e-3) {
        p0 = (m * p0 + cat_clicks) / (m + imps);
        q0 = (m * q0 + cat_convs) / (m + std::max(cat_clicks, cat_convs));
        e.source = ResponseEstimate::Source::kCategoryPrior;
      }
    }
  }
  if (has_own) e.source = ResponseEstimate::Source::kPosterior;
  e.impressions = own.impressions;
  e.clicks = own.clicks;
  e.conversions = own.conversions;
  e.dismissals = own.dismissals;
  // A click without its impression (e.g. an explicit-impression app that
  // reported only the click) must not make beta negative.
  double clicks = std::min(own.clicks, own.impressions);
  e.alpha = m * p0 + clicks;
  e.beta = m * (1 - p0) + (own.impressions - clicks);
  e.p_click = e.alpha + e.beta > 0 ? e.alpha / (e.alpha + e.beta) : p0;
  double given = std::max(own.clicks, own.conversions);
  e.convert_alpha = m * q0 + own.conversions;
  e.convert_beta = m * (1 - q0) + (given - own.conversions);
  e.p_convert = e.convert_alpha + e.convert_beta > 0
                    ? e.convert_alpha / (e.convert_alpha + e.convert_beta)
                    : q0;
  e.value_per_conversion = (default_value + own.value) / (1 + own.conversions);
  return e;
}

size_t ResponseStats::Prune(int64_t now_ms, double min_weight) {
  size_t dropped = 0;
  for (size_t s = 0; s < kShards; ++s) {
    Shard& sh = shards_[s];
    std::unique_lock lock(sh.mu);
    for (auto it = sh.cells.begin(); it != sh.cells.end();) {
      double d = Decay(now_ms - it->second.at_ms);
      if (it->second.impressions * d < min_weight && it->second.clicks * d < min_weight) {
        it = sh.cells.erase(it);
        ++dropped;
      } else {
        ++it;
      }
    }
  }
  return dropped;
}

int64_t ResponseStats::ReplayHorizonMs() const { return static_cast<int64_t>(10 * half_life_ms_); }

size_t ResponseStats::cells() const {
  size_t n = 0;
  for (size_t s = 0; s < kShards; ++s) {
    std::shared_lock lock(shards_[s].mu);
    n += shards_[s].cells.size();
  }
  return n;
}

ResponseStatsSet::ResponseStatsSet(
    const std::unordered_map<std::string, ResponseOptions>& placements) {
  for (const auto& [name, opt] : placements)
    by_placement_.emplace(name, std::make_unique<ResponseStats>(opt));
}

void ResponseStatsSet::Observe(const Impression& imp) {
  if (ResponseStats* s = For(imp.placement)) s->Observe(imp);
}

void ResponseStatsSet::Observe(const Outcome& out) {
  if (ResponseStats* s = For(out.impression.placement)) s->Observe(out);
}

const ResponseStats* ResponseStatsSet::For(std::string_view placement) const {
  auto it = by_placement_.find(placement);
  return it == by_placement_.end() ? nullptr : it->second.get();
}

ResponseStats* ResponseStatsSet::For(std::string_view placement) {
  auto it = by_placement_.find(placement);
  return it == by_placement_.end() ? nullptr : it->second.get();
}

nlohmann::json ResponseWhy(const ResponseEstimate& e, std::string_view segment) {
  return nlohmann::json{{"p_click", Round4(e.p_click)},         {"p_convert", Round4(e.p_convert)},
                        {"n", Round4(e.impressions)},           {"clicks", Round4(e.clicks)},
                        {"conversions", Round4(e.conversions)}, {"source", SourceName(e.source)},
                        {"segment", std::string(segment)}};
}

}  // namespace tailor::learning
