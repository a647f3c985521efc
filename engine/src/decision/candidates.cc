// Stage 1: the candidates a placement may show.
#include <algorithm>

#include "decision/stages.h"

namespace tailor {
namespace {

const char* NullIfEmpty(const std::string& s) { return s.empty() ? nullptr : s.c_str(); }

// An empty list allows everything.
bool Allows(const std::vector<std::string>& v, const std::string& s) {
  return v.empty() || std::find(v.begin(), v.end(), s) != v.end();
}

// Whether the request's filters leave this candidate out (then recorded).
bool Excluded(const RequestFilter& filter, const tailor_candidate& c, Candidates* out) {
  if (!filter.active()) return false;
  std::string note = filter.Veto(CandidateRef{
      c.offer_id ? c.offer_id : "", c.item_id ? c.item_id : "", c.category ? c.category : ""});
  if (note.empty()) return false;
  if (out->excluded.size() < kTraceSuppressed) out->excluded.push_back({c, std::move(note)});
  ++out->excluded_total;
  return true;
}

void CollectOffers(const Catalog& cat, const PlacementConfig& placement, const DecideRequest& req,
                   const RequestFilter& filter, int64_t now, Candidates* out) {
  for (size_t oi = 0; oi < cat.offers.size(); ++oi) {
    const Offer& o = cat.offers[oi];
    if (now < o.valid_from_ms || now > o.valid_until_ms) continue;
    if (!Allows(o.placements, req.placement) || !Allows(o.channels, req.channel)) continue;
    // An offer that promotes an item is also about that item's category.
    const std::string* category = &o.category;
    if (category->empty() && !o.item.empty())
      if (auto it = cat.item_index.find(o.item); it != cat.item_index.end())
        category = &cat.items[it->second].category;
    const tailor_candidate c{o.id.c_str(), NullIfEmpty(o.item), NullIfEmpty(*category)};
    if (Excluded(filter, c, out)) continue;
    out->list.push_back(c);
    out->offer_index.push_back(static_cast<int>(oi));
    out->item_index.push_back(-1);
    out->values.push_back(o.value);
    double C = placement.weight;
    if (auto w = o.channel_weights.find(req.channel); w != o.channel_weights.end()) C *= w->second;
    out->context.push_back(C);
  }
}

void CollectItems(const Catalog& cat, const PlacementConfig& placement, const DecideRequest& req,
                  const RequestFilter& filter, Candidates* out) {
  std::string category_filter;
  if (auto c = req.context.find("category"); c != req.context.end() && c->is_string())
    category_filter = c->get<std::string>();
  for (size_t i = 0; i < cat.items.size() && out->size() < placement.max_candidates; ++i) {
    const Item& it = cat.items[i];
    if (!category_filter.empty() && it.category != category_filter) continue;
    // Before the max_candidates cap: a filter never leaves the placement short.
    const tailor_candidate c{nullptr, it.id.c_str(), NullIfEmpty(it.category)};
    if (Excluded(filter, c, out)) continue;
    out->list.push_back(c);
    out->offer_index.push_back(-1);
    out->item_index.push_back(static_cast<int>(i));
    out->values.push_back(cat.item_value[i]);
    out->context.push_back(placement.weight);
  }
}

}  // namespace

void Candidates::Clear() {
  list.clear();
  offer_index.clear();
  item_index.clear();
  values.clear();
  context.clear();
  excluded.clear();
  excluded_total = 0;
}

void CollectCandidates(const Catalog& catalog, const PlacementConfig& placement,
                       const DecideRequest& req, int64_t now_ms, Candidates* out) {
  out->Clear();
  const RequestFilter filter(req);
  if (placement.kind == PlacementConfig::Kind::kOffers)
    CollectOffers(catalog, placement, req, filter, now_ms, out);
  else
    CollectItems(catalog, placement, req, filter, out);
}

}  // namespace tailor
