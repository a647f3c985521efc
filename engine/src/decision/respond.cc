// Stage 3b: P as a calibrated probability of response (learning/learner.h).
#include <algorithm>
#include <cmath>

#include "decision/stages.h"

namespace tailor {
namespace {

// hour and weekday as rules see them: the request's context, else the clock.
std::pair<int, int> HourWeekday(const nlohmann::json& context, int64_t now_ms) {
  auto [hour, weekday] = learning::HourWeekday(now_ms);
  if (auto h = context.find("hour"); h != context.end() && h->is_number_integer())
    hour = std::clamp(h->get<int>(), 0, 23);
  if (auto w = context.find("weekday"); w != context.end() && w->is_number_integer())
    weekday = std::clamp(w->get<int>(), 0, 6);
  return {hour, weekday};
}

const nlohmann::json* DnaFacts(const nlohmann::json& facts) {
  auto c = facts.find("customer");
  if (c == facts.end() || !c->is_object()) return nullptr;
  auto d = c->find("dna");
  return d != c->end() && d->is_object() ? &*d : nullptr;
}

learning::Interactions::Own OwnResponses(const RespondInput& in, const std::string& offer) {
  learning::Interactions::Own own;
  if (!in.profile) return own;
  constexpr int64_t kDay = 24LL * 3600 * 1000;
  const EventHistory& h = in.profile->history;
  own.shown_1d = static_cast<double>(h.Count("impression", offer, in.now_ms - kDay));
  own.shown_7d = static_cast<double>(h.Count("impression", offer, in.now_ms - 7 * kDay));
  own.clicked = static_cast<double>(h.Count("click", offer, in.now_ms - 30 * kDay) +
                                    h.Count("offer_click", offer, in.now_ms - 30 * kDay));
  own.dismissed = static_cast<double>(h.Count("dismiss", offer, in.now_ms - 30 * kDay));
  return own;
}

double LargestCategoryWeight(const learning::DecisionFeatures& d) {
  double m = 0;
  for (const auto& [_, w] : d.category_weight) m = std::max(m, w);
  return m;
}

// The Beta with the mean and variance of p = model_p x r, r ~ Gamma(a, b)
// (shape a, rate b): what Thompson sampling draws P(click) from.
void BetaOf(double model_p, double a, double b, double mean, double* alpha, double* beta) {
  const double var = model_p * model_p * a / (b * b);
  double kappa = var > 0 ? mean * (1 - mean) / var - 1 : 1e6;
  kappa = std::clamp(kappa, 0.05, 1e9);
  *alpha = std::max(0.01, mean * kappa);
  *beta = std::max(0.01, (1 - mean) * kappa);
}

}  // namespace

void Respond(const RespondInput& in, const Candidates& c, const PluginScores& scores,
             Responses* out) {
  const size_t n = c.size();
  out->active = in.learned && in.learner && in.placement.response.learn &&
                in.placement.kind == PlacementConfig::Kind::kOffers;
  if (!out->active) {
    out->features.clear();
    out->estimates.clear();
    out->p.clear();
    out->dim = 0;
    return;
  }
  const learning::Learner& learner = *in.learner;
  const learning::FeatureLayout& layout = learner.layout();
  const nlohmann::json* dna = DnaFacts(in.facts);
  out->segment = learning::SegmentKey(in.req.placement, in.req.channel, dna,
                                      in.placement.response.segment_traits);
  const auto [hour, weekday] = HourWeekday(in.req.context, in.now_ms);
  const bool night = hour >= 22 || hour <= 2;
  const learning::DecisionFeatures d =
      learning::BuildDecisionFeatures(in.profile, in.catalog, in.req.channel, hour, weekday, dna);
  const double largest = LargestCategoryWeight(d);
  out->dim = learner.dim();
  out->features.assign(n * out->dim, 0.0f);
  out->estimates.resize(n);
  out->p.resize(n);
  out->model_p.resize(n);
  out->correction.resize(n);
  double max_value = 0;
  for (double v : c.values) max_value = std::max(max_value, v);
  if (max_value <= 0) max_value = 1;
  const auto click = in.learned->click.weights();
  const auto convert = in.learned->convert.weights();
  constexpr double m = learning::Learner::kCorrectionStrength;
  for (size_t i = 0; i < n; ++i) {
    const Offer& offer = in.catalog.offers[static_cast<size_t>(c.offer_index[i])];
    learning::CandidateInput ci;
    ci.category = c.list[i].category ? c.list[i].category : "";
    ci.blend = scores.Blend(i, 0);
    ci.plugin_scores = scores.n ? scores.scores.data() + i : nullptr;
    ci.stride = n;
    ci.plugin_ok = &scores.ok;
    ci.discount = offer.discount ? offer.discount->second : 0;
    ci.value = c.values[i] / max_value;
    float* x = out->features.data() + i * out->dim;
    learning::CandidateFeatures(layout, d, ci, x);
    const double rel = largest > 0 ? d.CategoryWeight(ci.category) / largest : 0;
    learning::Interactions::Append(x, rel, night, OwnResponses(in, offer.id), x + layout.size());

    const double model_p = learning::PredictClick(*click, x, out->dim);
    const learning::OfferCorrection corr =
        in.learned->Correction(offer.id, out->segment, in.now_ms);
    const double a = m + corr.clicks, b = m + corr.expected;
    const double p_click = std::clamp(model_p * a / b, 1e-6, 0.999);
    const double p_convert = learning::PredictClick(*convert, x, out->dim);
    learning::ResponseEstimate& e = out->estimates[i];
    e = in.learned->stats.Estimate(offer.id, ci.category, out->segment, p_click, offer.value,
                                   in.now_ms);
    e.p_click = p_click;
    e.p_convert = p_convert;
    BetaOf(model_p, a, b, p_click, &e.alpha, &e.beta);
    out->model_p[i] = model_p;
    out->correction[i] = a / b;
    out->p[i] = p_click * p_convert;
  }
}

}  // namespace tailor
