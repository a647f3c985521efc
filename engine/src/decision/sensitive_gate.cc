#include "decision/sensitive_gate.h"

#include <cmath>
#include <cstdlib>

#include <nlohmann/json.hpp>

#include "model/consent.h"

namespace tailor {
namespace {

using nlohmann::json;

// The topic an item's attributes give it under `tag`, "" when none.
std::string ItemTopicOf(const std::string& tag, const std::string& attributes_json) {
  if (attributes_json.empty()) return {};
  json attrs = json::parse(attributes_json, nullptr, false);
  if (attrs.is_discarded() || !attrs.is_object()) {
    // What cannot be read cannot be cleared: treat it as sensitive.
    return attrs.is_discarded() ? tag : std::string();
  }
  auto topic_of = [&](const json& v) -> std::string {
    if (v.is_null() || (v.is_boolean() && !v.get<bool>())) return {};
    if (v.is_string() && !v.get<std::string>().empty()) return v.get<std::string>();
    return tag;  // true, a number, an empty string, a structure: sensitive all the same
  };
  if (auto it = attrs.find(tag); it != attrs.end())
    if (std::string t = topic_of(*it); !t.empty()) return t;
  if (auto tags = attrs.find("tags"); tags != attrs.end()) {
    if (tags->is_object()) {
      if (auto it = tags->find(tag); it != tags->end()) return topic_of(*it);
    } else if (tags->is_array()) {
      for (const json& t : *tags)
        if (t.is_string() && t.get<std::string>() == tag) return tag;
    }
  }
  return {};
}

// The customer's age when it is a finite number (or a string that is one).
std::optional<double> AgeOf(const json& attrs) {
  auto it = attrs.find("age");
  if (it == attrs.end()) return std::nullopt;
  double age = 0;
  if (it->is_number()) {
    age = it->get<double>();
  } else if (it->is_string()) {
    const std::string& s = it->get_ref<const std::string&>();
    char* end = nullptr;
    age = std::strtod(s.c_str(), &end);
    if (s.empty() || end != s.c_str() + s.size()) return std::nullopt;
  } else {
    return std::nullopt;
  }
  if (!std::isfinite(age)) return std::nullopt;
  return age;
}

}  // namespace

bool AllowsPersonalisation(const Customer& customer) {
  return ParseConsent(customer.consent_json).personalization;
}

SensitiveGate::SensitiveGate(SensitiveConfig config, const std::vector<Offer>& offers,
                             const std::vector<Item>& items)
    : config_(std::move(config)) {
  std::unordered_map<std::string, size_t> item_index;
  item_topic_.reserve(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    item_index[items[i].id] = i;
    item_topic_.push_back(ItemTopicOf(config_.tag, items[i].attributes_json));
  }
  offer_topic_.reserve(offers.size());
  for (size_t i = 0; i < offers.size(); ++i) {
    const Offer& o = offers[i];
    offer_index_[o.id] = i;
    std::string topic;
    if (auto it = o.tags.find(config_.tag); it != o.tags.end())
      topic = it->second.empty() ? config_.tag : it->second;
    else if (auto item = item_index.find(o.item); !o.item.empty() && item != item_index.end())
      topic = item_topic_[item->second];
    offer_topic_.push_back(std::move(topic));
  }
}

const std::string* SensitiveGate::OfferTopic(size_t index) const {
  if (index >= offer_topic_.size() || offer_topic_[index].empty()) return nullptr;
  return &offer_topic_[index];
}

const std::string* SensitiveGate::ItemTopic(size_t index) const {
  if (index >= item_topic_.size() || item_topic_[index].empty()) return nullptr;
  return &item_topic_[index];
}

std::string SensitiveGate::Refusal(const Customer* customer, bool personalised) const {
  if (customer == nullptr || !personalised) return "customer unknown or not personalised";
  json consent = json::parse(customer->consent_json, nullptr, false);
  const json* flag = nullptr;
  if (consent.is_object())
    if (auto it = consent.find(config_.consent); it != consent.end()) flag = &*it;
  if (flag == nullptr || !flag->is_boolean() || !flag->get<bool>())
    return "no explicit consent '" + config_.consent + "'";
  if (config_.min_age <= 0) return {};
  json attrs = json::parse(customer->attributes_json, nullptr, false);
  std::optional<double> age = attrs.is_object() ? AgeOf(attrs) : std::nullopt;
  if (!age) return "age unknown";
  if (*age < config_.min_age) return "under " + std::to_string(config_.min_age);
  return {};
}

std::string SensitiveGate::OutboundRefusal(const std::string& offer_id,
                                           const Customer* customer) const {
  if (offer_id.empty()) return {};
  auto it = offer_index_.find(offer_id);
  if (it == offer_index_.end())
    return Note(config_.tag, "offer '" + offer_id + "' is not in the catalog");
  const std::string* topic = OfferTopic(it->second);
  if (topic == nullptr) return {};
  const bool personalised = customer != nullptr && AllowsPersonalisation(*customer);
  std::string refusal = Refusal(customer, personalised);
  return refusal.empty() ? refusal : Note(*topic, refusal);
}

std::string SensitiveGate::Note(const std::string& topic, const std::string& refusal) {
  return "sensitive gate (" + topic + "): " + refusal;
}

std::string SensitiveCheck::Veto(int offer_index, int item_index) {
  const std::string* topic = offer_index >= 0  ? gate_.OfferTopic(static_cast<size_t>(offer_index))
                             : item_index >= 0 ? gate_.ItemTopic(static_cast<size_t>(item_index))
                                               : nullptr;
  if (topic == nullptr) return {};
  if (!refusal_) refusal_ = gate_.Refusal(customer_, personalised_);
  if (refusal_->empty()) return {};
  ++vetoes_;
  return SensitiveGate::Note(*topic, *refusal_);
}

}  // namespace tailor
