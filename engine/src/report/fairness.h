// `tailor report --fairness` (issue 14.5): per protected attribute and group,
// over the decisions in [since_ms, until_ms):
//   offer_rate      shown offers per decision
//   avg_discount    mean discount of the shown offers that carried one
//   conversion_rate conversions per shown offer
// and, per metric, the disparity ratio max group / min group, marked as a
// breach against the configured cap (pricing.max_disparity, default 1.25).
// Groups: the attribute's value in customers.attributes; age_band is derived
// from the numeric `age` as <25, 25-34, 35-49, 50+ (pricing::AgeBand).
// Customers without the attribute form the group "unknown", shown but left
// out of the ratios.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace tailor {
class Store;
}

namespace tailor::report {

// The cap the breach marks compare to (pricing.max_disparity when the
// caller has a config; this default otherwise).
constexpr double kDefaultMaxDisparity = 1.25;

// JSON: {"since","until","max_disparity","attributes":[{"attribute",
// "groups":[{"group","customers","decisions","impressions","offer_rate",
// "discounted","avg_discount","conversions","conversion_rate"}],
// "disparity":{"offer_rate":{"ratio","max_group","min_group","breach"},
// "avg_discount":{...},"conversion_rate":{...}}}]}
nlohmann::json Fairness(Store& store, int64_t since_ms, int64_t until_ms,
                        const std::vector<std::string>& protected_attrs);
// The same against a cap of the caller's (a config's pricing.max_disparity).
nlohmann::json Fairness(Store& store, int64_t since_ms, int64_t until_ms,
                        const std::vector<std::string>& protected_attrs, double max_disparity);

// An HTML fragment (no <html>, no scripts, no external resources): per
// attribute a table and inline SVG bars of the average discount per group,
// breaches marked.
std::string FairnessHtml(const nlohmann::json& fairness);

}  // namespace tailor::report
