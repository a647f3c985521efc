// The simulator's TRUE response model (docs/simulate.md): how a simulated demo
// customer responds to an offer shown on a banner, computed from the demo
// world's hidden traits. `tailor simulate` draws clicks, conversions and
// dismissals from it; its `oracle` arm ranks by it. The engine never sees it:
// it only sees the events drawn from it.
//
// Everything here is pure and deterministic (no clock, no global state), so
// the unit tests pin its shape.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tailor::sim {

// What the model needs to know about a customer: the demo world's hidden
// traits (ingest::DemoCustomerTruth), with the categories named.
struct TrueCustomer {
  std::string id;
  std::vector<std::string> categories;  // parallel to category_weight
  std::vector<double> category_weight;
  double deal_seeker = 0;  // 0..1
  double night_owl = 0;    // 0..1
  double big_spender = 0;  // 0..1
  double sessions_per_week = 0;
  // Protected attributes from the store's customer row (the discount
  // scenario tallies discounts by them; the response model never reads them).
  std::string age_band = "unknown";  // pricing::AgeBand of the attribute `age`
  std::string gender = "unknown";
};

// What the model needs to know about an offer (config/offers.yaml).
struct TrueOffer {
  std::string id;
  std::string category;  // empty: promotes content or an item, not a category
  double value = 0;      // business value of one conversion
  // The discount shown: the midpoint of the offer's discount range (0 if
  // none), or in the discount scenario the discount the arm gave.
  double discount = 0;
};

// The circumstances of one impression.
struct Exposure {
  int position = 1;    // 1-based rank on screen
  int hour = 12;       // 0..23, UTC
  double fatigue = 0;  // decayed count of earlier impressions of this offer (FatigueAfter)
};

struct Response {
  double p_click = 0;         // P(click | shown)
  double p_convert = 0;       // P(conversion | click)
  double p_dismiss = 0;       // P(dismiss | shown, not clicked)
  double expected_value = 0;  // p_click * p_convert * value
};

// The model's constants, in one place so the documentation can quote them.
struct ModelConstants {
  // P(click) = sigmoid(z) x position factor x fatigue factor, with
  // z = click_bias + click_affinity a + click_deal deal_seeker d
  //     + click_value (big_spender - click_value_pivot) v + night term.
  static constexpr double kClickBias = -4.5;
  static constexpr double kClickAffinity = 3.2;
  static constexpr double kClickDeal = 4.0;
  static constexpr double kClickValue = 1.2;
  static constexpr double kClickValuePivot = 0.35;
  static constexpr double kNightOwlBoost = 0.8;    // at night, x night_owl
  static constexpr double kNightOthersDrop = 0.4;  // at night, x (1 - night_owl)
  static constexpr double kPositionDecay = 0.6;    // factor 1 / (1 + 0.6 (position - 1))
  static constexpr double kFatigueFactor = 0.7;    // factor 0.7 ^ fatigue
  static constexpr double kFatigueHalfLifeHours = 24;
  // P(convert | click) = sigmoid(conv_bias + conv_affinity a + conv_deal
  //     deal_seeker d - conv_price (1 - big_spender) v).
  static constexpr double kConvBias = -2.0;
  static constexpr double kConvAffinity = 1.5;
  static constexpr double kConvDeal = 2.0;
  static constexpr double kConvPrice = 1.5;
  // P(dismiss | not clicked) = dismiss_base + dismiss_mismatch (1 - a).
  static constexpr double kDismissBase = 0.02;
  static constexpr double kDismissMismatch = 0.2;
  // Offers that promote no category: this affinity for everyone.
  static constexpr double kNoCategoryAffinity = 0.25;
  static constexpr double kValueScale = 150;  // v = min(1, value / 150)
};

// The customer's affinity a for a category: its weight over their largest
// weight, in (0, 1]; kNoCategoryAffinity for an empty or unknown category.
double Affinity(const TrueCustomer& c, const std::string& category);

// Hours 22:00-02:59 UTC are night (the demo world's night-owl hours).
bool IsNight(int hour);

// The true response of c to offer o shown in circumstances x.
Response TrueResponse(const TrueCustomer& c, const TrueOffer& o, const Exposure& x);

// Fatigue decays with a half-life of kFatigueHalfLifeHours: the fatigue
// `elapsed_ms` after a value of `fatigue`, before the next impression adds 1.
double FatigueDecay(double fatigue, int64_t elapsed_ms);

// The oracle: indexes of the (at most k) offers with the highest true expected
// value for c in circumstances x (fatigue[i] for offers[i], empty = none),
// best first; ties keep the offers' order.
std::vector<size_t> OracleTopK(const TrueCustomer& c, const std::vector<TrueOffer>& offers,
                               int hour, const std::vector<double>& fatigue, size_t k);

// --- The visit process ------------------------------------------------------

// A deterministic random stream (splitmix64); std:: distributions differ
// between standard libraries and a seed must give the same run everywhere.
class Rng {
 public:
  Rng(uint64_t seed, uint64_t stream, uint64_t index);
  uint64_t Next();
  double Uniform();  // [0, 1)
  bool Chance(double p) { return Uniform() < p; }
  int Poisson(double lambda);
  // Index drawn with probability proportional to w[i].
  size_t Weighted(const double* w, size_t n);

 private:
  uint64_t state_;
};

// Visits per day are Poisson with mean visit_scale x sessions_per_week / 7.
double VisitsPerDay(const TrueCustomer& c, double visit_scale);

// The hour of a visit, drawn as the demo world draws its sessions' hours:
// night owls mostly 22:00-03:00, everyone else mostly 07:00-21:00.
int VisitHour(const TrueCustomer& c, Rng& rng);

// A stable 64-bit hash of a string (FNV-1a), for assigning customers to arms.
uint64_t StableHash(const std::string& s, uint64_t seed);

}  // namespace tailor::sim
