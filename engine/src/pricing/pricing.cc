#include "pricing/pricing.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "learning/random.h"

namespace tailor::pricing {
namespace {

// Levels are compared as rounded hundredths of a percent: 0.1 + 2 x 0.05
// and 0.2 are one level.
int64_t LevelKey(double d) { return std::llround(d * 10000); }

std::string Fmt(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", x);
  return buf;
}

double Round4(double x) { return static_cast<double>(std::llround(x * 10000)) / 10000; }

// While the ratio is within this share of the cap the shrink grows: acting
// before the breach keeps the ratio under the cap, not around it.
constexpr double kActAt = 0.95;
constexpr double kShrinkUp = 0.05;     // per choice while at or above kActAt x cap
constexpr double kShrinkDown = 0.002;  // per choice while below it

}  // namespace

std::vector<double> Levels(const Offer& offer) {
  std::vector<double> out;
  if (!offer.discount) return out;
  const auto [lo, hi] = *offer.discount;
  const double step = offer.discount_step > 0 ? offer.discount_step : 0.05;
  for (int k = 0; k <= 100; ++k) {
    const double d = lo + k * step;
    if (LevelKey(d) >= LevelKey(hi)) break;
    out.push_back(Round4(d));
  }
  out.push_back(Round4(hi));
  return out;
}

double PriceOf(const Offer& offer) { return offer.price ? *offer.price : offer.value; }

double MarginAt(const Offer& offer, double discount) {
  return PriceOf(offer) * (1 - discount) - offer.cost;
}

bool PassesFloor(const Offer& offer, double discount, double min_margin) {
  const double price = PriceOf(offer);
  if (price <= 0) return false;
  // A hair of slack so that a floor equal to a level's margin admits it.
  return MarginAt(offer, discount) / price >= min_margin - 1e-9;
}

std::string AgeBand(const nlohmann::json& age) {
  if (!age.is_number()) return "unknown";
  const double a = age.get<double>();
  if (a < 25) return "<25";
  if (a < 35) return "25-34";
  if (a < 50) return "35-49";
  return "50+";
}

bool IsProtected(const std::vector<std::string>& protected_attrs, const std::string& name) {
  for (const std::string& p : protected_attrs) {
    if (p == name) return true;
    // A band is derived from the attribute: protecting one protects both.
    if ((p == "age_band" && name == "age") || (p == "age" && name == "age_band")) return true;
  }
  return false;
}

std::string GroupOf(const nlohmann::json& attributes, const std::string& attr) {
  if (!attributes.is_object()) return "unknown";
  if (attr == "age_band") {
    auto it = attributes.find("age");
    return it == attributes.end() ? "unknown" : AgeBand(*it);
  }
  auto it = attributes.find(attr);
  if (it == attributes.end() || it->is_null()) return "unknown";
  return it->is_string() ? it->get<std::string>() : it->dump();
}

std::string PricingSegment(const PricingConfig& config, const nlohmann::json& attributes,
                           const nlohmann::json& facts) {
  const nlohmann::json *dna = nullptr, *dna_p = nullptr;
  if (auto c = facts.find("customer"); c != facts.end() && c->is_object()) {
    if (auto d = c->find("dna"); d != c->end() && d->is_object()) dna = &*d;
    if (auto d = c->find("dna_p"); d != c->end() && d->is_object()) dna_p = &*d;
  }
  std::string key;
  for (const std::string& f : config.features) {
    // Never read a protected attribute, whatever the config says.
    if (IsProtected(config.protected_attrs, f)) continue;
    const nlohmann::json* v = nullptr;
    // A DNA trait's probability in fifths ("p0" .. "p4"): finer than the
    // high/medium/low buckets, which are set for rules and may put nearly
    // everyone in one bucket.
    if (dna_p)
      if (auto it = dna_p->find(f); it != dna_p->end() && it->is_number()) {
        if (!key.empty()) key += '|';
        key += f;
        key += "=p";
        key += static_cast<char>('0' + std::clamp(static_cast<int>(it->get<double>() * 5), 0, 4));
        continue;
      }
    if (dna)
      if (auto it = dna->find(f); it != dna->end()) v = &*it;
    if (!v && attributes.is_object())
      if (auto it = attributes.find(f); it != attributes.end()) v = &*it;
    if (!key.empty()) key += '|';
    key += f;
    key += '=';
    key += !v || v->is_null() ? "none" : v->is_string() ? v->get<std::string>() : v->dump();
  }
  return key;
}

// --- DisparityWindow ------------------------------------------------------------

void DisparityWindow::Add(const std::string& offer, const std::string& group, double discount) {
  entries_.push_back({offer, group, discount});
  Sum& g = groups_[group];
  g.sum += discount;
  ++g.n;
  Sum& o = offers_[offer];
  o.sum += discount;
  ++o.n;
  while (entries_.size() > window_) {
    const Entry& e = entries_.front();
    Sum& og = groups_[e.group];
    og.sum -= e.discount;
    if (--og.n == 0) groups_.erase(e.group);
    Sum& oo = offers_[e.offer];
    oo.sum -= e.discount;
    if (--oo.n == 0) offers_.erase(e.offer);
    entries_.pop_front();
  }
}

Disparity MaxOverMin(const std::vector<GroupMean>& groups, int64_t min_n) {
  Disparity d;
  double lo = 0, hi = 0;
  int counted = 0;
  for (const GroupMean& g : groups) {
    if (g.n < min_n || g.group == "unknown") continue;
    if (counted == 0 || g.mean < lo) lo = g.mean, d.min_group = std::string(g.group);
    if (counted == 0 || g.mean > hi) hi = g.mean, d.max_group = std::string(g.group);
    ++counted;
  }
  if (counted < 2 || hi <= 1e-12) return d;
  d.ratio = lo <= 1e-12 ? std::numeric_limits<double>::infinity() : hi / lo;
  return d;
}

double DisparityWindow::Ratio() const {
  thread_local std::vector<GroupMean> means;  // reused: Ratio runs per priced choice
  means.clear();
  for (const auto& [group, s] : groups_)
    means.push_back(
        {group, s.n ? s.sum / static_cast<double>(s.n) : 0.0, static_cast<int64_t>(s.n)});
  const double ratio = MaxOverMin(means, static_cast<int64_t>(min_group_)).ratio;
  return std::isinf(ratio) ? 1e9 : ratio;  // a finite stand-in: it goes into JSON
}

double DisparityWindow::OfferMean(const std::string& offer, double fallback) const {
  auto it = offers_.find(offer);
  return it == offers_.end() || it->second.n == 0
             ? fallback
             : it->second.sum / static_cast<double>(it->second.n);
}

nlohmann::json DisparityWindow::GroupsJson() const {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [group, s] : groups_)
    out[group] = {{"n", s.n}, {"mean", s.n ? s.sum / static_cast<double>(s.n) : 0.0}};
  return out;
}

// --- Choice ---------------------------------------------------------------------

nlohmann::json Choice::Why() const {
  nlohmann::json j = {{"level", discount},
                      {"expected_margin", expected_margin},
                      {"p_convert", p_convert},
                      {"alternatives", alternatives},
                      {"disparity_ratio", ratio}};
  j["guardrail"] = guardrail.empty() ? nlohmann::json(nullptr) : nlohmann::json(guardrail);
  if (!guardrail.empty()) j["before_guardrail"] = chosen_before_guardrail;
  return j;
}

// --- Pricer ---------------------------------------------------------------------

void Pricer::Configure(const PricingConfig& config) {
  std::lock_guard<std::mutex> lock(mu_);
  const bool regroup = config.group_by != config_.group_by || config.window != config_.window ||
                       config.min_group != config_.min_group;
  config_ = config;
  if (regroup) {
    window_ = DisparityWindow(config.window, config.min_group);
    shrink_ = 0;
  }
}

std::string Pricer::ArmKey(const std::string& offer, double level, const std::string& segment) {
  return offer + '\x1f' + std::to_string(LevelKey(level)) + '\x1f' + segment;
}

void Pricer::Remember(const std::string& decision_id, const std::string& offer,
                      const std::string& seg, double level) {
  if (decision_id.empty()) return;
  std::string key = decision_id + '\x1f' + offer;
  if (pending_.emplace(key, Pending{seg, level, false, false}).second)
    pending_order_.push_back(std::move(key));
  while (pending_order_.size() > kMaxPending) {
    pending_.erase(pending_order_.front());
    pending_order_.pop_front();
  }
}

namespace {
// Marks the pooled dimension in an arm key (offer ids and levels never are).
const std::string kEveryOffer = "\x1e";
constexpr double kEveryLevel = -1;
// Most pseudo-impressions a cell's pooled prior is worth beyond the
// configured prior: with conversion rates of a few percent about one
// conversion, so that a cell's own data soon rules.
constexpr double kPooledStrength = 50;
}  // namespace

void Pricer::Count(const std::string& offer, double level, const std::string& segment,
                   double Arm::*field) {
  arms_[ArmKey(offer, level, segment)].*field += 1;
  arms_[ArmKey(kEveryOffer, level, segment)].*field += 1;
  arms_[ArmKey(offer, kEveryLevel, segment)].*field += 1;
  arms_[ArmKey(kEveryOffer, kEveryLevel, segment)].*field += 1;
}

Pricer::Prior Pricer::PooledPrior(const std::string& offer, double level,
                                  const std::string& segment) const {
  const double a0 = config_.prior_strength * config_.prior_rate;
  const double n0 = config_.prior_strength;
  auto counts = [&](const std::string& o, double d) {
    const auto it = arms_.find(ArmKey(o, d, segment));
    return it == arms_.end() ? Arm{} : it->second;
  };
  auto rate = [&](const Arm& a) {
    return (std::max(0.0, a.conversions) + a0) / (std::max(0.0, a.trials) + n0);
  };
  auto minus = [](Arm a, const Arm& b) {
    a.trials -= b.trials;
    a.conversions -= b.conversions;
    return a;
  };
  // The level's lift over the segment's rate, from the other offers only
  // (the cell's own data counts once, in its posterior).
  const Arm others_level = minus(counts(kEveryOffer, level), counts(offer, level));
  const Arm others_all = minus(counts(kEveryOffer, kEveryLevel), counts(offer, kEveryLevel));
  // Under P(convert | offer, level) = base(offer) x lift(level) the mean is
  // exact in the limit; it is worth no more than the evidence behind the lift.
  Prior p;
  p.mean = std::clamp(rate(counts(offer, kEveryLevel)) * rate(others_level) / rate(others_all),
                      1e-6, 0.999);
  p.strength = n0 + std::min(kPooledStrength, std::max(0.0, others_level.trials));
  return p;
}

Choice Pricer::Choose(const Offer& offer, const std::string& segment, const std::string& group,
                      const std::string& decision_id, uint64_t seed, bool commit) {
  Choice c;
  const std::vector<double> levels = Levels(offer);
  if (levels.empty()) return c;
  c.priced = true;
  std::lock_guard<std::mutex> lock(mu_);
  ++choices_;
  learning::Rng rng(seed);
  std::vector<double> allowed, mean_p;
  double best = -1e300, best_level = levels.front(), best_p = 0;
  size_t floored = 0;
  for (double d : levels) {
    if (!PassesFloor(offer, d, config_.min_margin)) {
      ++floored;
      continue;
    }
    const auto it = arms_.find(ArmKey(offer.id, d, segment));
    const Arm arm = it == arms_.end() ? Arm{} : it->second;
    const Prior prior = PooledPrior(offer.id, d, segment);
    const double a = prior.strength * prior.mean + arm.conversions;
    const double b =
        prior.strength * (1 - prior.mean) + std::max(0.0, arm.trials - arm.conversions);
    const double p = learning::SampleBeta(learning::MakeBetaShape(a, b), rng);
    const double sampled = p * MarginAt(offer, d);
    allowed.push_back(d);
    mean_p.push_back(a / (a + b));
    c.alternatives.push_back({{"discount", d},
                              {"expected_margin", a / (a + b) * MarginAt(offer, d)},
                              {"p_convert", a / (a + b)},
                              {"shown", arm.trials},
                              {"conversions", arm.conversions}});
    if (sampled > best) {
      best = sampled;
      best_level = d;
      best_p = a / (a + b);
    }
  }
  if (floored) floored_ += floored;
  if (allowed.empty()) {
    // The load refuses such offers; a catalog from the store may still hold
    // one: it is shown without a discount rather than below the floor.
    c.priced = false;
    c.guardrail = "min_margin: no level keeps " + Fmt(config_.min_margin) + " of the price";
    return c;
  }
  c.discount = c.chosen_before_guardrail = best_level;
  c.p_convert = best_p;

  // Disparity: shrink towards the offer's mean over the window.
  if (config_.max_disparity > 0) {
    c.ratio = window_.Ratio();
    if (!commit) {
    } else if (c.ratio >= kActAt * config_.max_disparity) {
      shrink_ = std::min(1.0, shrink_ + kShrinkUp);
    } else {
      shrink_ = std::max(0.0, shrink_ - kShrinkDown);
    }
    if (shrink_ > 0) {
      const double mean = window_.OfferMean(offer.id, (levels.front() + levels.back()) / 2);
      const double target = mean + (1 - shrink_) * (best_level - mean);
      double snapped = allowed.front();
      size_t at = 0;
      for (size_t i = 0; i < allowed.size(); ++i)
        if (std::abs(allowed[i] - target) < std::abs(snapped - target)) {
          snapped = allowed[i];
          at = i;
        }
      if (LevelKey(snapped) != LevelKey(best_level)) {
        ++shrunk_;
        c.discount = snapped;
        c.p_convert = mean_p[at];
        c.guardrail = "max_disparity: ratio " + Fmt(c.ratio) + " near or above the cap " +
                      Fmt(config_.max_disparity) + ", shrunk " + Fmt(best_level) + " -> " +
                      Fmt(snapped) + " towards the mean " + Fmt(mean) + " (shrink " + Fmt(shrink_) +
                      ")";
      }
    }
  }
  if (commit && !config_.group_by.empty()) window_.Add(offer.id, group, c.discount);
  if (c.guardrail.empty() && floored)
    c.guardrail = "min_margin: " + std::to_string(floored) + " level(s) below " +
                  Fmt(config_.min_margin) + " of the price left out";
  c.expected_margin = c.p_convert * MarginAt(offer, c.discount);
  if (commit) Remember(decision_id, offer.id, segment, c.discount);
  return c;
}

void Pricer::Observe(const Impression& impression) {
  if (impression.offer_id.empty() || !impression.shown) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = pending_.find(impression.decision_id + '\x1f' + impression.offer_id);
  if (it == pending_.end() || it->second.shown) return;
  it->second.shown = true;
  Count(impression.offer_id, it->second.level, it->second.segment, &Arm::trials);
}

void Pricer::Observe(const Outcome& outcome) {
  if (outcome.kind != Outcome::Kind::kConversion || !outcome.first_of_kind) return;
  const Impression& imp = outcome.impression;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = pending_.find(imp.decision_id + '\x1f' + imp.offer_id);
  if (it == pending_.end() || !it->second.shown || it->second.converted) return;
  it->second.converted = true;
  Count(imp.offer_id, it->second.level, it->second.segment, &Arm::conversions);
}

std::pair<double, double> Pricer::Counts(const std::string& offer, double level,
                                         const std::string& segment) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = arms_.find(ArmKey(offer, level, segment));
  return it == arms_.end() ? std::make_pair(0.0, 0.0)
                           : std::make_pair(it->second.trials, it->second.conversions);
}

double Pricer::Ratio() const {
  std::lock_guard<std::mutex> lock(mu_);
  return window_.Ratio();
}

nlohmann::json Pricer::StatsJson() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {{"choices", choices_},        {"shrunk", shrunk_},
          {"levels_floored", floored_}, {"disparity_ratio", window_.Ratio()},
          {"shrink", shrink_},          {"groups", window_.GroupsJson()},
          {"arms", arms_.size()}};
}

}  // namespace tailor::pricing
