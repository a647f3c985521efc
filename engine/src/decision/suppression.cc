#include "decision/suppression.h"

#include <algorithm>

#include "common/time.h"

namespace tailor {
namespace {

constexpr int64_t kDayMs = 86'400'000;

bool Listed(const std::vector<std::string>& list, std::string_view s) {
  return list.empty() || std::find(list.begin(), list.end(), s) != list.end();
}

}  // namespace

std::shared_ptr<const Suppression> Suppression::Build(std::vector<SuppressionPolicy> policies,
                                                      const Catalog& catalog,
                                                      std::vector<std::string>* errors) {
  const size_t before = errors->size();
  for (size_t i = 0; i < policies.size(); ++i) {
    for (const std::string& o : policies[i].offers) {
      if (catalog.offer_index.count(o)) continue;
      std::string known;
      for (const Offer& k : catalog.offers) known += (known.empty() ? "" : ", ") + k.id;
      errors->push_back(policies[i].offers_where + ": suppression[" + std::to_string(i) +
                        "].offers: unknown offer '" + o + "' (known: " + known + ")");
    }
  }
  if (errors->size() != before) return nullptr;
  return std::make_shared<const Suppression>(std::move(policies));
}

Suppression::Suppression(std::vector<SuppressionPolicy> policies) : policies_(std::move(policies)) {
  for (const SuppressionPolicy& p : policies_) counters_.push_back("suppression." + p.name);
}

bool Suppression::Covers(const SuppressionPolicy& p, const CandidateRef& c,
                         std::string_view placement) {
  // An items list names items; an offers list offers: neither covers the other kind.
  if (!p.offers.empty() && (c.offer_id.empty() || !Listed(p.offers, c.offer_id))) return false;
  if (!p.items.empty() && (c.item_id.empty() || !Listed(p.items, c.item_id))) return false;
  return Listed(p.categories, c.category) && Listed(p.placements, placement);
}

std::optional<int64_t> Suppression::Crossed(const SuppressionPolicy& p, const EventHistory& h,
                                            std::string_view id, int64_t since_ms, int64_t now_ms) {
  const int64_t within_ms = p.within_days * kDayMs;
  // Events that can still matter: a crossing event since since_ms and the
  // events up to W days before it.
  int64_t from = since_ms - within_ms;
  const char* type = "dismiss";
  static thread_local std::vector<int64_t> times, clicks;
  if (p.trigger == SuppressionPolicy::Trigger::kImpressionsWithoutClick) {
    type = "impression";
    // Only impressions after the last click (at or before now) count.
    for (const char* click : {"click", "offer_click"}) {
      h.Times(click, id, from, now_ms, &clicks);
      if (!clicks.empty()) from = std::max(from, clicks.back() + 1);
    }
  }
  // Cheap first: most candidates have fewer events than the threshold.
  if (h.Count(type, id, from) < p.threshold) return std::nullopt;
  h.Times(type, id, from, now_ms, &times);
  const auto n = static_cast<size_t>(p.threshold);
  // Newest first: the latest crossing gives the latest end of suppression.
  for (size_t j = times.size(); j-- >= n;) {
    if (times[j] < since_ms) break;
    if (times[j] - times[j + 1 - n] <= within_ms) return times[j];
  }
  return std::nullopt;
}

std::optional<Suppression::Verdict> Suppression::Veto(const Profile& profile, const CandidateRef& c,
                                                      std::string_view placement,
                                                      int64_t now_ms) const {
  // Events name the offer for an offer, the item for an item.
  const std::string_view id = c.offer_id.empty() ? c.item_id : c.offer_id;
  if (id.empty()) return std::nullopt;
  for (size_t i = 0; i < policies_.size(); ++i) {
    const SuppressionPolicy& p = policies_[i];
    if (!Covers(p, c, placement)) continue;
    const int64_t suppress_ms = p.suppress_days * kDayMs;
    auto at = Crossed(p, profile.history, id, now_ms - suppress_ms + 1, now_ms);
    if (!at) continue;
    Verdict v;
    v.policy = i;
    v.until_ms = *at + suppress_ms;
    const bool dismissals = p.trigger == SuppressionPolicy::Trigger::kDismissals;
    v.note = "suppressed by policy '" + p.name + "': " + std::to_string(p.threshold) +
             (dismissals ? (p.threshold == 1 ? " dismissal" : " dismissals")
                         : (p.threshold == 1 ? " impression without a click"
                                             : " impressions without a click")) +
             " within " + std::to_string(p.within_days) + (p.within_days == 1 ? " day" : " days") +
             ", until " + format_iso8601_ms(v.until_ms);
    return v;
  }
  return std::nullopt;
}

std::string SuppressionCheck::Veto(const CandidateRef& c) {
  if (!profile_ || s_.empty()) return {};
  auto v = s_.Veto(*profile_, c, placement_, now_ms_);
  if (!v) return {};
  if (vetoes_.empty()) vetoes_.assign(s_.policies().size(), 0);
  ++vetoes_[v->policy];
  return std::move(v->note);
}

RequestFilter::RequestFilter(const DecideRequest& req) {
  auto take = [](const std::vector<std::string>& from, std::vector<std::string_view>* to) {
    to->assign(from.begin(), from.end());
    std::sort(to->begin(), to->end());
  };
  take(req.exclude, &exclude_);
  take(req.include_categories, &include_categories_);
  take(req.exclude_categories, &exclude_categories_);
  active_ = !exclude_.empty() || !include_categories_.empty() || !exclude_categories_.empty();
}

bool RequestFilter::In(const std::vector<std::string_view>& sorted, std::string_view s) {
  return std::binary_search(sorted.begin(), sorted.end(), s);
}

std::string RequestFilter::Veto(const CandidateRef& c) const {
  if (!active_) return {};
  if (!c.offer_id.empty() && In(exclude_, c.offer_id))
    return "excluded by request: exclude names offer '" + std::string(c.offer_id) + "'";
  if (!c.item_id.empty() && In(exclude_, c.item_id))
    return "excluded by request: exclude names item '" + std::string(c.item_id) + "'";
  if (!c.category.empty() && In(exclude_categories_, c.category))
    return "excluded by request: category '" + std::string(c.category) +
           "' is in exclude_categories";
  if (!include_categories_.empty() && !In(include_categories_, c.category))
    return c.category.empty() ? "excluded by request: no category, and include_categories is set"
                              : "excluded by request: category '" + std::string(c.category) +
                                    "' is not in include_categories";
  return {};
}

}  // namespace tailor
