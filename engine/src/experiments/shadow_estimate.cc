#include "experiments/shadow_estimate.h"

#include <algorithm>
#include <map>
#include <string>

namespace tailor::experiments {
namespace {

struct Totals {
  int64_t decisions = 0, agree = 0, served = 0, picks = 0, clicks = 0, conversions = 0;
  double revenue = 0, tailor_clicks = 0, tailor_conversions = 0, tailor_value = 0;
  double served_p_click = 0;
  int64_t agree_top_clicks = 0, other_top_clicks = 0;
};

double Ratio(double a, double b) { return b > 0 ? a / b : 0.0; }

}  // namespace

nlohmann::json ShadowSummary(Store& store, int64_t since_ms, int64_t until_ms) {
  std::map<std::string, Totals> by_placement;
  int64_t total = 0;
  store.ForEachShadowDecision(since_ms, until_ms, [&](const ShadowDecisionRow& row) {
    Totals& t = by_placement[row.placement];
    ++t.decisions;
    ++total;
    const bool agree = !row.served_top.empty() && row.served_top == row.tailor_top;
    t.agree += agree;
    (agree ? t.agree_top_clicks : t.other_top_clicks) += row.top_clicks;
    t.served_p_click += row.served_p_click;
    t.served += row.served;
    t.picks += row.picks;
    t.clicks += row.clicks;
    t.conversions += row.conversions;
    t.revenue += row.revenue;
    t.tailor_clicks += row.tailor_clicks;
    t.tailor_conversions += row.tailor_conversions;
    t.tailor_value += row.tailor_value;
    return true;
  });
  nlohmann::json placements = nlohmann::json::object();
  for (const auto& [name, t] : by_placement) {
    const double n = static_cast<double>(t.decisions);
    const double served_ctr = Ratio(static_cast<double>(t.clicks), static_cast<double>(t.served));
    const double model_ctr = Ratio(t.served_p_click, static_cast<double>(t.served));
    const double tailor_ctr = Ratio(t.tailor_clicks, static_cast<double>(t.picks));
    // How far the model's P was from what the served offers really drew:
    // Tailor's modelled CTR scaled by it is the calibrated estimate.
    const double calibration = model_ctr > 0 ? served_ctr / model_ctr : 1.0;
    const int64_t disagree = t.decisions - t.agree;
    placements[name] = {
        {"decisions", t.decisions},
        {"agreement", Ratio(static_cast<double>(t.agree), n)},
        {"served",
         {{"impressions", t.served},
          {"clicks", t.clicks},
          {"conversions", t.conversions},
          {"ctr", served_ctr},
          {"model_ctr", model_ctr},
          {"calibration", calibration},
          {"conversion_rate",
           Ratio(static_cast<double>(t.conversions), static_cast<double>(t.served))},
          {"revenue_per_decision", Ratio(t.revenue, n)}}},
        {"tailor",
         {{"picks", t.picks},
          {"ctr", tailor_ctr},
          {"calibrated_ctr", std::min(1.0, tailor_ctr * calibration)},
          {"conversion_rate", Ratio(t.tailor_conversions, static_cast<double>(t.picks))},
          {"value_per_decision", Ratio(t.tailor_value, n)}}},
        // Observed: the click rate at position 1 when the application's top
        // was Tailor's top pick, and when it was not.
        {"top_agreed",
         {{"decisions", t.agree},
          {"clicks", t.agree_top_clicks},
          {"ctr", Ratio(static_cast<double>(t.agree_top_clicks), static_cast<double>(t.agree))}}},
        {"top_disagreed",
         {{"decisions", disagree},
          {"clicks", t.other_top_clicks},
          {"ctr", Ratio(static_cast<double>(t.other_top_clicks), static_cast<double>(disagree))}}}};
  }
  return {{"placements", std::move(placements)}, {"decisions", total}};
}

}  // namespace tailor::experiments
