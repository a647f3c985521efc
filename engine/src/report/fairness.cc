#include "report/fairness.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "common/time.h"
#include "pricing/pricing.h"
#include "report/html.h"
#include "store/store.h"

namespace tailor::report {
namespace {

using nlohmann::json;

struct Group {
  int64_t customers = 0, decisions = 0, impressions = 0, discounted = 0, conversions = 0;
  double discount_sum = 0;
};

double Div(double a, double b) { return b > 0 ? a / b : 0; }

// max / min of one metric over the groups with decisions (unknown left out,
// pricing::MaxOverMin); a zero min beside a positive max is an unbounded
// ratio (null) and a breach.
json Disparity(const json& groups, const std::string& metric, double cap) {
  std::vector<pricing::GroupMean> means;
  for (const json& g : groups)
    means.push_back({g["group"].get_ref<const std::string&>(), g[metric].get<double>(),
                     g["decisions"].get<int64_t>()});
  const pricing::Disparity d = pricing::MaxOverMin(means, 1);
  json out = {{"max_group", d.max_group}, {"min_group", d.min_group}};
  if (std::isinf(d.ratio)) {
    out["ratio"] = nullptr;
    out["breach"] = true;
  } else {
    out["ratio"] = d.ratio;
    out["breach"] = d.ratio > cap;
  }
  return out;
}

std::string Num(double x, const char* fmt = "%.3f") {
  char buf[48];
  std::snprintf(buf, sizeof buf, fmt, x);
  return buf;
}

std::string RatioCell(const json& d) {
  std::string s = d["ratio"].is_null() ? "&infin;" : Num(d["ratio"].get<double>(), "%.2f");
  if (d["breach"].get<bool>()) s = "<strong style=\"color:#b00020\">" + s + " breach</strong>";
  return s;
}

}  // namespace

json Fairness(Store& store, int64_t since_ms, int64_t until_ms,
              const std::vector<std::string>& protected_attrs) {
  return Fairness(store, since_ms, until_ms, protected_attrs, kDefaultMaxDisparity);
}

json Fairness(Store& store, int64_t since_ms, int64_t until_ms,
              const std::vector<std::string>& protected_attrs, double max_disparity) {
  const std::vector<Store::CustomerExposure> rows = store.ExposureByCustomer(since_ms, until_ms);
  std::vector<json> attributes(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    attributes[i] = json::parse(rows[i].attributes_json, nullptr, false);
    if (!attributes[i].is_object()) attributes[i] = json::object();
  }
  json out = {{"since", format_iso8601_ms(since_ms)},
              {"until", format_iso8601_ms(until_ms)},
              {"max_disparity", max_disparity},
              {"customers", rows.size()},
              {"attributes", json::array()}};
  for (const std::string& attr : protected_attrs) {
    std::map<std::string, Group> groups;
    for (size_t i = 0; i < rows.size(); ++i) {
      Group& g = groups[pricing::GroupOf(attributes[i], attr)];
      const Store::CustomerExposure& r = rows[i];
      ++g.customers;
      g.decisions += r.decisions;
      g.impressions += r.impressions;
      g.discounted += r.discounted;
      g.discount_sum += r.discount_sum;
      g.conversions += r.conversions;
    }
    json gs = json::array();
    for (const auto& [name, g] : groups) {
      gs.push_back({{"group", name},
                    {"customers", g.customers},
                    {"decisions", g.decisions},
                    {"impressions", g.impressions},
                    {"offer_rate",
                     Div(static_cast<double>(g.impressions), static_cast<double>(g.decisions))},
                    {"discounted", g.discounted},
                    {"avg_discount", Div(g.discount_sum, static_cast<double>(g.discounted))},
                    {"conversions", g.conversions},
                    {"conversion_rate",
                     Div(static_cast<double>(g.conversions), static_cast<double>(g.impressions))}});
    }
    json disparity = json::object();
    for (const char* m : {"offer_rate", "avg_discount", "conversion_rate"})
      disparity[m] = Disparity(gs, m, max_disparity);
    out["attributes"].push_back({{"attribute", attr}, {"groups", gs}, {"disparity", disparity}});
  }
  return out;
}

std::string FairnessHtml(const json& fairness) {
  std::string h = "<section class=\"fairness\">\n<h2>Fairness across protected groups</h2>\n";
  const double cap = fairness.value("max_disparity", kDefaultMaxDisparity);
  h += "<p>Decisions from " + HtmlEscape(fairness.value("since", "")) + " to " +
       HtmlEscape(fairness.value("until", "")) + "; disparity = largest group / smallest group, " +
       "a breach above " + Num(cap, "%.2f") + ".</p>\n";
  for (const json& a : fairness.value("attributes", json::array())) {
    const std::string attr = a.value("attribute", "");
    h += "<h3>" + HtmlEscape(attr) +
         "</h3>\n<table>\n<thead><tr><th>group</th><th>customers</th>"
         "<th>decisions</th><th>offer rate</th><th>avg discount</th><th>conversion rate</th>"
         "</tr></thead>\n<tbody>\n";
    double top = 0;
    for (const json& g : a["groups"]) top = std::max(top, g["avg_discount"].get<double>());
    for (const json& g : a["groups"]) {
      h += "<tr><td>" + HtmlEscape(g["group"].get<std::string>()) + "</td><td>" +
           std::to_string(g["customers"].get<int64_t>()) + "</td><td>" +
           std::to_string(g["decisions"].get<int64_t>()) + "</td><td>" +
           Num(g["offer_rate"].get<double>()) + "</td><td>" +
           Num(100 * g["avg_discount"].get<double>(), "%.1f%%") + "</td><td>" +
           Num(100 * g["conversion_rate"].get<double>(), "%.2f%%") + "</td></tr>\n";
    }
    const json& d = a["disparity"];
    h += "<tr><th>disparity</th><td></td><td></td><td>" + RatioCell(d["offer_rate"]) + "</td><td>" +
         RatioCell(d["avg_discount"]) + "</td><td>" + RatioCell(d["conversion_rate"]) +
         "</td></tr>\n</tbody>\n</table>\n";
    // Bars of the average discount per group.
    const size_t n = a["groups"].size();
    const int row = 22, width = 420, label = 90;
    h += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(width + label + 60) +
         "\" height=\"" + std::to_string(static_cast<int>(n) * row + 24) + "\" role=\"img\" " +
         "aria-label=\"average discount by " + HtmlEscape(attr) + "\">\n";
    int y = 4;
    for (const json& g : a["groups"]) {
      const double v = g["avg_discount"].get<double>();
      const int w = top > 0 ? static_cast<int>(width * v / top) : 0;
      const bool high =
          d["avg_discount"]["breach"].get<bool>() && g["group"] == d["avg_discount"]["max_group"];
      h += "<text x=\"0\" y=\"" + std::to_string(y + 14) + "\" font-size=\"12\">" +
           HtmlEscape(g["group"].get<std::string>()) + "</text><rect x=\"" + std::to_string(label) +
           "\" y=\"" + std::to_string(y) + "\" width=\"" + std::to_string(w) +
           "\" height=\"16\" fill=\"" + (high ? "#b00020" : "#4a7bd0") + "\"/><text x=\"" +
           std::to_string(label + w + 4) + "\" y=\"" + std::to_string(y + 13) +
           "\" font-size=\"11\">" + Num(100 * v, "%.1f%%") + "</text>\n";
      y += row;
    }
    h += "</svg>\n";
  }
  h += "</section>\n";
  return h;
}

}  // namespace tailor::report
