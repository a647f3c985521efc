// The engine's gate for sensitive offers and items (tailor.yaml `sensitive:`).
//
// Sensitive candidates (e.g. pregnancy products: the lesson of the retailer
// that mailed baby offers to a teenager before her family knew) reach only a
// personalised customer who set the configured consent flag to true and whose
// `age` attribute is a number >= min_age. The gate fails closed: consent or
// age missing, of the wrong type or unparseable, an anonymous request, a
// customer who refused personalisation, or an unknown customer on an
// outbound step all refuse. It runs in C++ before journeys and rules, on
// every decide and every outbound journey step, so a rule that fails, a Lua
// state that cannot be built or a rule's lever can neither skip nor undo it;
// rules may only add conditions.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "config/config.h"
#include "store/store.h"

namespace tailor {

// Whether the customer's consent allows personalisation: refused only by an
// explicit "personalization": false (decide and outbound steps alike).
bool AllowsPersonalisation(const Customer& customer);

// Immutable once built; one per snapshot, shared by every worker.
class SensitiveGate {
 public:
  // Finds the topic of every offer and item once. An offer is sensitive when
  // its tags carry config.tag, or when it promotes a sensitive item; an item
  // when its attributes carry config.tag (any value but null or false; true
  // makes the tag its topic) or attributes.tags names it (as a key or as an
  // element of a list). Unparseable item attributes count as sensitive.
  SensitiveGate(SensitiveConfig config, const std::vector<Offer>& offers,
                const std::vector<Item>& items);

  const SensitiveConfig& config() const { return config_; }

  // The topic that makes offer / item `index` sensitive ("pregnancy"), or
  // null when it is not. Index as in the vectors given to the constructor.
  const std::string* OfferTopic(size_t index) const;
  const std::string* ItemTopic(size_t index) const;

  // Why this customer may not see sensitive candidates ("" when they may).
  // customer: null when the request is anonymous; personalised: the request
  // is personalised (a known customer who did not refuse personalisation).
  std::string Refusal(const Customer* customer, bool personalised) const;

  // For an outbound step: why it may not go to this customer ("" when it
  // may). customer: the stored row, null when there is none. An offer id
  // that is not in the catalog is refused: its topic cannot be known.
  std::string OutboundRefusal(const std::string& offer_id, const Customer* customer) const;

  // The `why` line of a refused candidate: "sensitive gate (pregnancy): ...".
  static std::string Note(const std::string& topic, const std::string& refusal);

 private:
  SensitiveConfig config_;
  std::vector<std::string> offer_topic_, item_topic_;  // "" = not sensitive
  std::unordered_map<std::string, size_t> offer_index_;
};

// One request's use of the gate: the customer's verdict is worked out once,
// on the first sensitive candidate. Not thread-safe; lives for one decide.
class SensitiveCheck {
 public:
  // gate must outlive this; customer may be null (anonymous).
  SensitiveCheck(const SensitiveGate& gate, const Customer* customer, bool personalised)
      : gate_(gate), customer_(customer), personalised_(personalised) {}

  // The note that vetoes this candidate, or "" when it may be shown.
  // offer_index / item_index as in the catalog (-1 when not that kind).
  std::string Veto(int offer_index, int item_index);
  size_t vetoes() const { return vetoes_; }

 private:
  const SensitiveGate& gate_;
  const Customer* customer_;
  bool personalised_;
  std::optional<std::string> refusal_;
  size_t vetoes_ = 0;
};

}  // namespace tailor
