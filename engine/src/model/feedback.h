// The feedback contract's data (Rank -> Reward): what a decision showed, with
// the probability that its policy would have shown it there, and the
// responses later joined to it. Shared by decision/ (which makes impressions),
// feedback/ (which stores and joins them), learning/ (which learns from the
// outcomes) and the store.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tailor {

// One shown candidate of one decision.
struct Impression {
  std::string decision_id;
  std::string customer_id;
  std::string placement;
  std::string channel;
  std::string offer_id;  // empty for items
  std::string item_id;   // the item shown, or the item an offer promotes
  std::string category;
  int position = 0;         // 1-based rank shown
  double propensity = 1.0;  // P(this policy shows this candidate at this position)
  bool explore = false;     // picked by exploration, not by the greedy order
  double p_click = 0;       // the calibrated P the decision used
  // The response model's key and features at decision time, so that a
  // response later updates exactly what the decision used.
  std::string segment;
  std::vector<float> features;
  int64_t ts_ms = 0;
  // False while a placement with `impressions: explicit` waits for the app's
  // `impression` event naming this decision; only shown impressions are
  // attributed outcomes by the window.
  bool shown = true;
  std::string experiment;  // the decision's experiment and arm ('' outside one)
  std::string arm;
  double discount = 0;  // the discount the offer was shown with (0: none)
};

// A response joined to the impression it answers.
struct Outcome {
  enum class Kind { kClick, kConversion, kDismiss };
  Kind kind = Kind::kClick;
  Impression impression;   // the decision's impression it was attributed to
  std::string event_type;  // as sent: click, purchase, conversion, dismiss, ...
  double value = 0;        // conversion value, when sent
  int64_t ts_ms = 0;
  bool by_decision_id = false;  // joined by the event's decision id, not by the window
  int64_t event_seq = 0;        // the event's seq in the store's log (0: not known)
  // The first outcome of this kind for this impression: a second click on
  // the same shown offer is still stored, but learning may count it once.
  bool first_of_kind = true;
};

// The kind as stored and explained: "click", "conversion", "dismiss".
inline const char* OutcomeKindName(Outcome::Kind k) {
  switch (k) {
    case Outcome::Kind::kClick:
      return "click";
    case Outcome::Kind::kConversion:
      return "conversion";
    case Outcome::Kind::kDismiss:
      return "dismiss";
  }
  return "click";
}

// The inverse of OutcomeKindName; anything else reads as a click.
inline Outcome::Kind ParseOutcomeKind(std::string_view name) {
  if (name == "conversion") return Outcome::Kind::kConversion;
  if (name == "dismiss") return Outcome::Kind::kDismiss;
  return Outcome::Kind::kClick;
}

}  // namespace tailor
