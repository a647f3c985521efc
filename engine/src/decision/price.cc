// Stage 6b: the discount of each shown offer (stages.h PriceShown).
#include <functional>

#include "decision/stages.h"

namespace tailor {

void PriceShown(const PriceInput& in, pricing::Pricer* pricer, std::vector<pricing::Choice>* out) {
  out->assign(in.shown, pricing::Choice{});
  if (!pricer || !in.placement.pricing || !in.config.configured) return;
  // Attributes are parsed once per decision and only here, where pricing is on.
  nlohmann::json attributes = nlohmann::json::object();
  if (in.profile)
    attributes = nlohmann::json::parse(in.profile->customer.attributes_json, nullptr, false);
  if (!attributes.is_object()) attributes = nlohmann::json::object();
  const std::string segment = pricing::PricingSegment(in.config, attributes, in.facts);
  const std::string group =
      in.config.group_by.empty() ? std::string() : pricing::GroupOf(attributes, in.config.group_by);
  for (size_t k = 0; k < in.shown && k < in.ranked.size(); ++k) {
    const int oi = in.candidates.offer_index[in.ranked[k].candidate];
    if (oi < 0) continue;
    const Offer& offer = in.catalog.offers[static_cast<size_t>(oi)];
    if (!offer.discount) continue;
    const uint64_t seed = std::hash<std::string>{}(in.decision_id + '/' + offer.id);
    (*out)[k] = pricer->Choose(offer, segment, group, in.decision_id, seed, in.commit);
  }
}

void ApplyPrices(const std::vector<pricing::Choice>& prices, nlohmann::json* offers) {
  if (!offers->is_array()) return;
  for (size_t k = 0; k < prices.size() && k < offers->size(); ++k) {
    const pricing::Choice& c = prices[k];
    if (!c.priced && c.guardrail.empty()) continue;
    nlohmann::json& o = (*offers)[k];
    if (c.priced) o["discount"] = c.discount;
    o["why"]["discount"] = c.Why();
  }
}

}  // namespace tailor
