#include "decision/shadow.h"

#include <algorithm>

#include "tailor/messages.h"

namespace tailor {
namespace {

// The candidate with this offer (or item) id, or -1. Linear: a placement's
// offers are few, and items placements look up only the served head.
int FindCandidate(const Candidates& c, const std::string& id, bool items) {
  for (size_t i = 0; i < c.size(); ++i) {
    const char* cid = items ? c.list[i].item_id : c.list[i].offer_id;
    if (!items && !c.list[i].offer_id) continue;
    if (cid && id == cid) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace

void KeepArmOffers(const experiments::Arm& arm, Candidates* c) {
  if (arm.offers.empty()) return;
  size_t kept = 0;
  for (size_t i = 0; i < c->size(); ++i) {
    const tailor_candidate& cand = c->list[i];
    if (cand.offer_id && !arm.AllowsOffer(cand.offer_id)) {
      if (c->excluded.size() < kTraceSuppressed)
        c->excluded.push_back({cand, "not in experiment arm '" + arm.name + "' offers"});
      ++c->excluded_total;
      continue;
    }
    c->list[kept] = c->list[i];
    c->offer_index[kept] = c->offer_index[i];
    c->item_index[kept] = c->item_index[i];
    c->values[kept] = c->values[i];
    c->context[kept] = c->context[i];
    ++kept;
  }
  c->list.resize(kept);
  c->offer_index.resize(kept);
  c->item_index.resize(kept);
  c->values.resize(kept);
  c->context.resize(kept);
}

std::optional<ApiError> CheckShadowChoice(const ShadowChoice& choice,
                                          const PlacementConfig& placement,
                                          const Catalog& catalog) {
  const bool items_placement = placement.kind == PlacementConfig::Kind::kItems;
  const std::string field = choice.items ? "shadow.items" : "shadow.offers";
  if (choice.items != items_placement)
    return ApiError{
        TAILOR_ERR_BAD_REQUEST, field,
        "placement '" + placement.name + "' shows " +
            (items_placement ? "items: send shadow.items" : "offers: send shadow.offers")};
  for (size_t i = 0; i < choice.ids.size(); ++i) {
    const std::string& id = choice.ids[i];
    const bool known =
        choice.items ? catalog.item_index.count(id) > 0 : catalog.offer_index.count(id) > 0;
    if (!known)
      return ApiError{
          TAILOR_ERR_BAD_REQUEST, field + "[" + std::to_string(i) + "]",
          std::string("unknown ") + (choice.items ? "item" : "offer") + " '" + id + "'"};
  }
  return std::nullopt;
}

std::vector<ShadowPick> ShadowPicksOf(const Candidates& c, const Judgement& judgement,
                                      const Responses& responses, const PolicyPicks& picks,
                                      const std::vector<Ranked>& ranked, size_t shown) {
  std::vector<ShadowPick> out;
  out.reserve(shown);
  for (size_t r = 0; r < shown && r < ranked.size(); ++r) {
    const size_t i = ranked[r].candidate;
    ShadowPick& p = out.emplace_back();
    p.position = static_cast<int>(r + 1);
    if (c.list[i].offer_id) p.offer_id = c.list[i].offer_id;
    if (c.list[i].item_id) p.item_id = c.list[i].item_id;
    p.propensity = r < picks.propensity.size() ? picks.propensity[r] : 1.0;
    if (responses.active) {
      p.p_click = responses.estimates[i].p_click;
      p.p_convert = responses.estimates[i].p_convert;
    } else {
      p.p_click = judgement.propensity[i];  // the plugins' blend
      p.p_convert = 1;
    }
    p.value = c.values[i];
  }
  return out;
}

nlohmann::json ServedOffers(const ShadowChoice& choice, const Candidates& candidates,
                            const std::vector<Ranked>& ranked) {
  nlohmann::json offers = nlohmann::json::array();
  for (size_t r = 0; r < choice.ids.size(); ++r) {
    nlohmann::json o = {{"rank", r + 1}};
    o[choice.items ? "item" : "offer"] = choice.ids[r];
    nlohmann::json shadow = {{"served_by", "app"}};
    const int i = FindCandidate(candidates, choice.ids[r], choice.items);
    if (i >= 0)
      for (size_t k = 0; k < ranked.size(); ++k)
        if (ranked[k].candidate == static_cast<size_t>(i)) {
          shadow["tailor_rank"] = k + 1;
          break;
        }
    o["why"] = {{"shadow", std::move(shadow)}};
    offers.push_back(std::move(o));
  }
  return offers;
}

std::vector<Impression> ServedImpressions(const ShadowChoice& choice, const Candidates& c,
                                          const Judgement& judgement, const Responses& responses,
                                          const Catalog& catalog, const DecideRequest& req,
                                          const std::string& decision_id, int64_t now) {
  std::vector<Impression> out;
  if (req.customer.empty()) return out;
  out.reserve(choice.ids.size());
  for (size_t r = 0; r < choice.ids.size(); ++r) {
    const std::string& id = choice.ids[r];
    Impression& m = out.emplace_back();
    m.decision_id = decision_id;
    m.customer_id = req.customer;
    m.placement = req.placement;
    m.channel = req.channel;
    m.position = static_cast<int>(r + 1);
    m.propensity = 1;  // the application chose deterministically
    m.ts_ms = now;
    if (choice.items) {
      m.item_id = id;
      if (auto it = catalog.item_index.find(id); it != catalog.item_index.end())
        m.category = catalog.items[it->second].category;
    } else {
      m.offer_id = id;
      if (auto it = catalog.offer_index.find(id); it != catalog.offer_index.end()) {
        const Offer& o = catalog.offers[it->second];
        m.item_id = o.item;  // a purchase of it is the offer's conversion
        m.category = o.category;
      }
    }
    const int i = FindCandidate(c, id, choice.items);
    if (i < 0) continue;
    const size_t k = static_cast<size_t>(i);
    if (c.list[k].category) m.category = c.list[k].category;
    m.p_click = judgement.propensity[k];
    if (responses.active) {
      m.p_click = responses.model_p[k];
      m.segment = responses.segment;
      m.features.assign(responses.x(k), responses.x(k) + responses.dim);
    }
  }
  return out;
}

nlohmann::json ExperimentJson(const experiments::Assignment& a) {
  nlohmann::json j = {{"name", a.experiment_name()}, {"arm", a.arm_name()}};
  if (!a.layer().empty()) j["layer"] = a.layer();
  return j;
}

}  // namespace tailor
