#include "learning/features.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "tailor/plugin.h"

namespace tailor::learning {
namespace {

struct TypeWeight {
  std::string_view type;
  double weight;
};
// A purchase says most about taste, a view least.
constexpr double kPurchaseWeight = 3.0;
constexpr TypeWeight kRecentWeights[] = {
    {"add_to_cart", 2.0}, {"click", 1.0}, {"offer_click", 1.0}, {"view", 0.25}};

size_t ChannelSlot(std::string_view channel) {
  if (channel == "web") return 0;
  if (channel == "app") return 1;
  if (channel == "email") return 2;
  return 3;
}

float BucketValue(const nlohmann::json& bucket) {
  if (!bucket.is_string()) return 0;
  const std::string& b = bucket.get_ref<const std::string&>();
  if (b == "high") return 1.0f;
  if (b == "medium") return 0.5f;
  return 0.0f;
}

void AddWeight(std::vector<std::pair<std::string, double>>* into, std::string_view category,
               double w) {
  for (auto& [c, x] : *into) {
    if (c == category) {
      x += w;
      return;
    }
  }
  into->emplace_back(std::string(category), w);
}

}  // namespace

std::vector<std::string> FeatureLayout::Names() const {
  std::vector<std::string> n = {"bias",          "blend",       "affinity_share", "affinity_log",
                                "affinity_none", "channel_web", "channel_app",    "channel_email",
                                "channel_other", "hour_night",  "hour_morning",   "hour_afternoon",
                                "hour_evening",  "weekend",     "discount",       "value"};
  for (size_t i = 0; i < kDnaSlots; ++i) n.push_back("dna_" + std::to_string(i));
  for (const std::string& p : plugins_) {
    n.push_back(p);
    n.push_back(p + "_abstained");
  }
  return n;
}

size_t FeatureLayout::DnaSlot(std::string_view trait) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : trait) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return static_cast<size_t>(h % kDnaSlots);
}

double DecisionFeatures::CategoryWeight(std::string_view category) const {
  if (category.empty()) return 0;
  for (const auto& [c, w] : category_weight)
    if (c == category) return w;
  return 0;
}

std::pair<int, int> HourWeekday(int64_t now_ms) {
  int64_t secs = now_ms / 1000;
  return {static_cast<int>((secs / 3600) % 24), static_cast<int>(((secs / 86400) + 4) % 7)};
}

DecisionFeatures BuildDecisionFeatures(const Profile* profile, const Catalog& catalog,
                                       std::string_view channel, int hour, int weekday,
                                       const nlohmann::json* dna) {
  DecisionFeatures d;
  d.channel_slot = ChannelSlot(channel);
  hour = ((hour % 24) + 24) % 24;
  d.hour_slot = static_cast<size_t>(hour / 6);
  d.weekend = weekday == 0 || weekday == 6;
  if (dna && dna->is_object()) {
    for (auto it = dna->begin(); it != dna->end(); ++it)
      d.dna[FeatureLayout::DnaSlot(it.key())] += BucketValue(it.value());
  }
  if (!profile) return d;
  auto add_item = [&](std::string_view item, double w) {
    auto at = catalog.item_index.find(std::string(item));
    if (at == catalog.item_index.end()) return;
    const std::string& category = catalog.items[at->second].category;
    if (category.empty()) return;
    AddWeight(&d.category_weight, category, w);
    d.total_weight += w;
  };
  // Purchased items over the whole held history (few, and the strongest
  // signal), each distinct item once: ForEachItem may repeat an item, and
  // counting repeats with history.Count costs ~1 us an item.
  static thread_local std::vector<std::string_view> items;
  items.clear();
  profile->history.ForEachItem("purchase", [&](std::string_view item, int64_t) {
    items.push_back(item);
    return true;
  });
  std::sort(items.begin(), items.end());
  items.erase(std::unique(items.begin(), items.end()), items.end());
  for (std::string_view item : items) add_item(item, kPurchaseWeight);
  // Everything else from the recent events (views dominate the history and
  // say little each; the newest ones say most).
  for (const Event& e : profile->recent) {
    if (e.item_id.empty() || e.type == "purchase") continue;
    for (const TypeWeight& tw : kRecentWeights) {
      if (e.type == tw.type) {
        add_item(e.item_id, tw.weight);
        break;
      }
    }
  }
  return d;
}

void CandidateFeatures(const FeatureLayout& layout, const DecisionFeatures& d,
                       const CandidateInput& c, float* out) {
  std::fill(out, out + layout.size(), 0.0f);
  out[FeatureLayout::kBias] = 1.0f;
  out[FeatureLayout::kBlend] = static_cast<float>(c.blend);
  double w = d.CategoryWeight(c.category);
  out[FeatureLayout::kAffinityShare] =
      d.total_weight > 0 ? static_cast<float>(w / d.total_weight) : 0.0f;
  out[FeatureLayout::kAffinityLog] = static_cast<float>(std::log1p(w));
  out[FeatureLayout::kAffinityNone] = d.total_weight > 0 ? 0.0f : 1.0f;
  out[FeatureLayout::kChannel + d.channel_slot] = 1.0f;
  out[FeatureLayout::kHour + d.hour_slot] = 1.0f;
  out[FeatureLayout::kWeekend] = d.weekend ? 1.0f : 0.0f;
  out[FeatureLayout::kDiscount] = static_cast<float>(c.discount);
  out[FeatureLayout::kValue] = static_cast<float>(c.value);
  std::copy(d.dna, d.dna + FeatureLayout::kDnaSlots, out + FeatureLayout::kDna);
  if (!c.plugin_scores) {
    for (size_t k = 0; k < layout.plugins().size(); ++k) out[layout.plugin_abstain(k)] = 1.0f;
    return;
  }
  for (size_t k = 0; k < layout.plugins().size(); ++k) {
    float s = c.plugin_scores[k * c.stride];
    // A plugin that failed this request has no opinion either.
    bool failed = c.plugin_ok && !(*c.plugin_ok)[k];
    if (failed || s == TAILOR_SCORE_ABSTAIN || !std::isfinite(s)) {
      out[layout.plugin_abstain(k)] = 1.0f;
    } else {
      out[layout.plugin_score(k)] = s;
    }
  }
}

std::string_view OfferCategory(const Offer& offer, const Catalog& catalog) {
  if (!offer.category.empty()) return offer.category;
  if (offer.item.empty()) return {};
  auto at = catalog.item_index.find(offer.item);
  return at == catalog.item_index.end() ? std::string_view{}
                                        : std::string_view(catalog.items[at->second].category);
}

std::string SegmentKey(std::string_view placement, std::string_view channel,
                       const nlohmann::json* dna, const std::vector<std::string>& traits) {
  std::string key;
  key.reserve(64);
  key.append(placement);
  key += '|';
  if (channel.empty())
    key += '-';
  else
    key.append(channel);
  const bool has_dna = dna && dna->is_object();
  auto append = [&](std::string_view trait, const nlohmann::json* bucket) {
    key += '|';
    key.append(trait);
    key += '=';
    key += bucket && bucket->is_string() ? bucket->get_ref<const std::string&>() : "none";
  };
  if (traits.empty()) {
    if (!has_dna) return key;
    // nlohmann::json objects iterate in key order.
    for (auto it = dna->begin(); it != dna->end(); ++it) append(it.key(), &it.value());
    return key;
  }
  for (const std::string& t : traits) {
    const nlohmann::json* b = nullptr;
    if (has_dna) {
      auto it = dna->find(t);
      if (it != dna->end()) b = &*it;
    }
    append(t, b);
  }
  return key;
}

}  // namespace tailor::learning
