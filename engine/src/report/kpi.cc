#include "report/kpi.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <set>
#include <string_view>
#include <vector>

#include "common/time.h"
#include "decision/trace.h"
#include "report/stats.h"

namespace tailor::report {
namespace {

using nlohmann::json;

constexpr int64_t kDayMs = 86'400'000;

// A double that JSON can carry (no NaN or infinity).
double Finite(double x) { return std::isfinite(x) ? x : 0.0; }

json Pair(double lo, double hi) { return json::array({Finite(lo), Finite(hi)}); }

double Rate(double num, double den) { return den > 0 ? num / den : 0.0; }

struct Totals {
  int64_t decisions = 0;
  int64_t impressions = 0;
  int64_t clicks = 0;
  int64_t conversions = 0;
  double revenue = 0;
  void Add(const Totals& o) {
    decisions += o.decisions;
    impressions += o.impressions;
    clicks += o.clicks;
    conversions += o.conversions;
    revenue += o.revenue;
  }
};

// Everything one arm (or placement) accumulates.
struct Arm {
  Totals totals;
  Moments revenue_per_customer;    // one value per customer
  RatioMoments revenue_per_imp;    // (revenue, impressions) per customer
  std::map<int64_t, Totals> days;  // by UTC day
  std::set<std::string> experiments, placements;
};

using Arms = std::map<std::string, Arm>;

// One customer's totals per group, flushed into the arms when the
// customer-ordered stream moves on.
using CustomerTotals = std::map<std::string, Totals>;

void Flush(CustomerTotals& c, Arms& arms) {
  for (auto& [key, t] : c) {
    Arm& a = arms[key];
    a.revenue_per_customer.Add(t.revenue);
    a.revenue_per_imp.Add(t.revenue, static_cast<double>(t.impressions));
  }
  c.clear();
}

std::string ArmKey(const CustomerDayKpi& r, bool one_experiment) {
  std::string key = r.arm.empty() ? "(none)" : r.arm;
  if (!one_experiment && !r.experiment.empty()) key = r.experiment + "/" + key;
  return key;
}

std::string_view LastPart(std::string_view key) {
  const size_t slash = key.rfind('/');
  return slash == std::string_view::npos ? key : key.substr(slash + 1);
}

std::string FindControl(const Arms& arms, const std::string& wanted) {
  if (!wanted.empty()) return arms.count(wanted) ? wanted : std::string();
  for (const char* name : {"control", "holdout"})
    for (const auto& [key, a] : arms)
      if (LastPart(key) == name) return key;
  return {};
}

json Compare(const Comparison& c) {
  return {{"diff", Finite(c.diff)}, {"ci", Pair(c.lo, c.hi)}, {"p", Finite(c.p)}};
}

json Uplift(const Arm& a, const Arm& ctl) {
  const Totals& t = a.totals;
  const Totals& c = ctl.totals;
  const Comparison ctr = TwoProportion(t.clicks, t.impressions, c.clicks, c.impressions);
  const Comparison rel = RelativeLift(t.clicks, t.impressions, c.clicks, c.impressions);
  json u = {{"ctr", Finite(ctr.diff)},
            {"ci", Pair(ctr.lo, ctr.hi)},
            {"p", Finite(ctr.p)},
            {"relative", Finite(rel.diff)},
            {"relative_ci", Pair(rel.lo, rel.hi)}};
  u["conversion_rate"] =
      Compare(TwoProportion(t.conversions, t.impressions, c.conversions, c.impressions));
  u["revenue_per_customer"] =
      Compare(MeanDifference(a.revenue_per_customer, ctl.revenue_per_customer));
  return u;
}

// Weekly revenue per customer of the arm (its customers over the window as
// the denominator, so the weeks add up to the window's figure) and its slope.
json Clv(const Arm& a, int64_t first_day, int64_t last_day) {
  const int64_t weeks = (last_day - first_day) / 7 + 1;
  std::vector<double> rev(static_cast<size_t>(std::max<int64_t>(weeks, 0)), 0.0);
  for (const auto& [day, t] : a.days) rev[static_cast<size_t>((day - first_day) / 7)] += t.revenue;
  const double customers = static_cast<double>(a.revenue_per_customer.n);
  json series = json::array();
  std::vector<double> ys;
  double cumulative = 0;
  for (size_t w = 0; w < rev.size(); ++w) {
    const double y = Rate(rev[w], customers);
    cumulative += y;
    ys.push_back(y);
    series.push_back(
        {{"week_start",
          format_iso8601_ms((first_day + 7 * static_cast<int64_t>(w)) * kDayMs).substr(0, 10)},
         {"revenue_per_customer", Finite(y)},
         {"cumulative", Finite(cumulative)}});
  }
  // A last partial week would read as a drop: the slope uses whole weeks
  // unless there is nothing else.
  const bool last_partial = (last_day - first_day + 1) % 7 != 0;
  if (last_partial && ys.size() > 2) ys.pop_back();
  const Interval slope = Slope(ys);
  return {{"revenue_per_customer", Finite(a.revenue_per_customer.Mean())},
          {"weekly", std::move(series)},
          {"slope_per_week", Finite(slope.value)},
          {"slope_ci", Pair(slope.lo, slope.hi)},
          {"weeks_in_slope", ys.size()}};
}

json ArmJson(const std::string& key, const Arm& a, const Arm* control, bool is_control,
             int64_t first_day, int64_t last_day) {
  const Totals& t = a.totals;
  const Interval ctr = Wilson(t.clicks, t.impressions);
  const Interval conv = Wilson(t.conversions, t.impressions);
  const Interval rpc = MeanInterval(a.revenue_per_customer);
  const Interval rpi = RatioInterval(a.revenue_per_imp);
  json j = {{"arm", key},
            {"customers", a.revenue_per_customer.n},
            {"decisions", t.decisions},
            {"impressions", t.impressions},
            {"clicks", t.clicks},
            {"ctr", Finite(ctr.value)},
            {"ctr_ci", Pair(ctr.lo, ctr.hi)},
            {"conversions", t.conversions},
            {"conversion_rate", Finite(conv.value)},
            {"conversion_ci", Pair(conv.lo, conv.hi)},
            {"revenue", Finite(t.revenue)},
            {"revenue_per_impression", Finite(rpi.value)},
            {"revenue_per_impression_ci", Pair(rpi.lo, rpi.hi)},
            {"revenue_per_customer", Finite(rpc.value)},
            {"revenue_ci", Pair(rpc.lo, rpc.hi)},
            {"control", is_control},
            {"experiments", a.experiments},
            {"placements", a.placements}};
  j["uplift"] = control && !is_control ? Uplift(a, *control) : json(nullptr);
  j["clv"] = Clv(a, first_day, last_day);
  return j;
}

// A window the user bounded is charted whole (days without decisions are
// flat), up to kMaxChartDays; an open end stops at the data.
constexpr int64_t kMaxChartDays = 731;
void ExtendToWindow(const KpiWindow& w, int64_t* first_day, int64_t* last_day) {
  if (w.since_ms > 0)
    *first_day = std::min(*first_day, std::max(w.since_ms / kDayMs, *last_day - kMaxChartDays));
  if (w.until_ms != INT64_MAX)
    *last_day =
        std::max(*last_day, std::min((w.until_ms - 1) / kDayMs, *first_day + kMaxChartDays));
}

// Cumulative figures per arm per day, and the cumulative CTR uplift against
// the control with its interval: what the HTML's time charts draw.
json Daily(const Arms& arms, const std::string& control, int64_t first_day, int64_t last_day) {
  json out = json::object();
  for (const auto& [key, a] : arms) {
    Totals cum, ctl_cum;
    json points = json::array();
    auto ctl_it = control.empty() || key == control ? arms.end() : arms.find(control);
    for (int64_t day = first_day; day <= last_day; ++day) {
      if (auto it = a.days.find(day); it != a.days.end()) cum.Add(it->second);
      if (ctl_it != arms.end())
        if (auto it = ctl_it->second.days.find(day); it != ctl_it->second.days.end())
          ctl_cum.Add(it->second);
      const Interval ctr = Wilson(cum.clicks, cum.impressions);
      json p = {{"day", format_iso8601_ms(day * kDayMs).substr(0, 10)},
                {"decisions", cum.decisions},
                {"impressions", cum.impressions},
                {"clicks", cum.clicks},
                {"conversions", cum.conversions},
                {"revenue", Finite(cum.revenue)},
                {"ctr", Finite(ctr.value)},
                {"ctr_ci", Pair(ctr.lo, ctr.hi)},
                {"conversion_rate", Finite(Rate(static_cast<double>(cum.conversions),
                                                static_cast<double>(cum.impressions)))},
                {"revenue_per_impression",
                 Finite(Rate(cum.revenue, static_cast<double>(cum.impressions)))}};
      if (ctl_it != arms.end() && cum.impressions > 0 && ctl_cum.impressions > 0) {
        const Comparison u =
            TwoProportion(cum.clicks, cum.impressions, ctl_cum.clicks, ctl_cum.impressions);
        p["uplift_ctr"] = Finite(u.diff);
        p["uplift_ci"] = Pair(u.lo, u.hi);
      }
      points.push_back(std::move(p));
    }
    out[key] = std::move(points);
  }
  return out;
}

// --- The trace: funnel, suppressions, rule effects -------------------------

struct OfferFunnel {
  int64_t eligible = 0;  // judged and allowed (shown or not chosen)
  int64_t chosen = 0;    // returned by the decision
  int64_t suppressed = 0;
  std::map<std::string, int64_t> suppressed_by;  // kind -> count
};

struct RuleEffect {
  int64_t vetoes = 0;
  int64_t levers = 0;  // candidates whose priority the rule changed
  int64_t boosts = 0;
  int64_t demotions = 0;
  double log_lever_sum = 0;
  int64_t shown_with_lever = 0;
  int64_t errors = 0;
};

struct TraceTotals {
  std::map<std::string, OfferFunnel> offers;
  std::map<std::string, RuleEffect> rules;
  std::map<std::pair<std::string, std::string>, int64_t> sources;  // (kind, name) -> vetoes
  int64_t unreadable = 0;
};

bool IsRuleError(std::string_view note) { return note.ends_with("(effect dropped)"); }

// "<rule>: x1.5 reason" -> (rule, 1.5); false for any other note.
bool ParseLever(std::string_view note, std::string* rule, double* factor) {
  const size_t at = note.find(": x");
  if (at == std::string_view::npos || at == 0) return false;
  const std::string num(note.substr(at + 3, 24));
  char* end = nullptr;
  const double f = std::strtod(num.c_str(), &end);
  if (end == num.c_str() || !std::isfinite(f) || f < 0) return false;
  rule->assign(note.substr(0, at));
  *factor = f;
  return true;
}

std::string_view RuleOfNote(std::string_view note) {
  const size_t at = note.find(": ");
  return at == std::string_view::npos ? note : note.substr(0, at);
}

void CountEntry(const json& e, TraceTotals& t) {
  const std::string status = e.value("status", "");
  const json* notes = nullptr;
  if (auto w = e.find("why"); w != e.end() && w->is_object())
    if (auto r = w->find("rules"); r != w->end() && r->is_array()) notes = &*r;
  const std::string offer = e.contains("offer") && e["offer"].is_string() ? e["offer"] : "";
  if (status == "suppressed") {
    // The veto is the last note that is not a rule error.
    VetoSource src{"engine", "unknown"};
    if (notes)
      for (auto it = notes->rbegin(); it != notes->rend(); ++it)
        if (it->is_string() && !IsRuleError(it->get_ref<const std::string&>())) {
          src = ClassifyVeto(it->get_ref<const std::string&>());
          break;
        }
    ++t.sources[{src.kind, src.name}];
    if (src.kind == "rule") ++t.rules[src.name].vetoes;
    if (!offer.empty()) {
      OfferFunnel& f = t.offers[offer];
      ++f.suppressed;
      ++f.suppressed_by[src.kind];
    }
  } else if (status == "shown" || status == "not chosen") {
    if (!offer.empty()) {
      OfferFunnel& f = t.offers[offer];
      ++f.eligible;
      if (status == "shown") ++f.chosen;
    }
    if (notes)
      for (const json& n : *notes) {
        if (!n.is_string()) continue;
        const std::string& s = n.get_ref<const std::string&>();
        std::string rule;
        double factor = 1;
        if (IsRuleError(s)) {
          ++t.rules[std::string(RuleOfNote(s))].errors;
        } else if (ParseLever(s, &rule, &factor)) {
          RuleEffect& r = t.rules[rule];
          ++r.levers;
          if (factor > 1) ++r.boosts;
          if (factor < 1) ++r.demotions;
          r.log_lever_sum += std::log(std::max(factor, 1e-6));
          if (status == "shown") ++r.shown_with_lever;
        }
      }
  }
}

bool ReadTraces(Store& store, const ReportOptions& opt, int64_t total, TraceTotals* t,
                std::string* err) {
  int64_t done = 0;
  const int64_t n = store.ForEachDecisionTrace(opt.window, [&](const DecisionTraceRow& row) {
    const std::optional<std::string> text = RenderTrace(row.trace_json);
    json trace = text ? json::parse(*text, nullptr, false) : json(json::value_t::discarded);
    if (trace.is_discarded() || !trace.is_object()) {
      ++t->unreadable;
    } else if (auto e = trace.find("entries"); e != trace.end() && e->is_array()) {
      for (const json& entry : *e)
        if (entry.is_object()) CountEntry(entry, *t);
    }
    if (opt.progress && ++done % 2048 == 0) opt.progress(done, total, "traces");
    return true;
  });
  if (n < 0) {
    *err = store.path() + ": cannot read the decision traces";
    return false;
  }
  return true;
}

json OffersJson(const std::vector<OfferKpi>& kpis, const TraceTotals& t) {
  std::map<std::string, const OfferKpi*> by_id;
  for (const OfferKpi& k : kpis) by_id[k.offer_id] = &k;
  std::set<std::string> ids;
  for (const auto& [id, f] : t.offers) ids.insert(id);
  for (const auto& [id, k] : by_id) ids.insert(id);
  json out = json::array();
  for (const std::string& id : ids) {
    static const OfferFunnel kNoFunnel;
    static const OfferKpi kNoKpi;
    auto fi = t.offers.find(id);
    const OfferFunnel& f = fi == t.offers.end() ? kNoFunnel : fi->second;
    auto ki = by_id.find(id);
    const OfferKpi& k = ki == by_id.end() ? kNoKpi : *ki->second;
    const Interval ctr = Wilson(k.clicks, k.impressions);
    json by = json::object();
    for (const char* kind : {"rule", "journey", "policy", "sensitive", "request", "engine"})
      by[kind] = 0;
    for (const auto& [kind, n] : f.suppressed_by) by[kind] = n;
    out.push_back({{"offer", id},
                   {"eligible", f.eligible},
                   {"chosen", f.chosen},
                   {"shown", k.impressions},
                   {"clicked", k.clicks},
                   {"converted", k.conversions},
                   {"revenue", Finite(k.revenue)},
                   {"ctr", Finite(ctr.value)},
                   {"ctr_ci", Pair(ctr.lo, ctr.hi)},
                   {"conversion_rate", Finite(Rate(static_cast<double>(k.conversions),
                                                   static_cast<double>(k.impressions)))},
                   {"suppressed", f.suppressed},
                   {"suppressed_by", std::move(by)}});
  }
  return out;
}

json RulesJson(const TraceTotals& t) {
  json out = json::array();
  for (const auto& [name, r] : t.rules)
    out.push_back(
        {{"rule", name},
         {"vetoes", r.vetoes},
         {"levers", r.levers},
         {"boosts", r.boosts},
         {"demotions", r.demotions},
         {"mean_lever", r.levers ? std::exp(r.log_lever_sum / static_cast<double>(r.levers)) : 1.0},
         {"shown_with_lever", r.shown_with_lever},
         {"errors", r.errors}});
  return out;
}

json SuppressionJson(const TraceTotals& t) {
  json out = json::array();
  for (const auto& [src, n] : t.sources)
    out.push_back({{"kind", src.first}, {"name", src.second}, {"count", n}});
  return out;
}

json SrmJson(const Arms& arms, const std::map<std::string, double>& shares) {
  std::vector<int64_t> observed;
  std::vector<double> expected_shares;
  json obs = json::object();
  for (const auto& [key, a] : arms) {
    observed.push_back(a.revenue_per_customer.n);
    obs[key] = a.revenue_per_customer.n;
    if (!shares.empty()) {
      auto it = shares.find(key);
      if (it == shares.end()) it = shares.find(std::string(LastPart(key)));
      expected_shares.push_back(it == shares.end() ? 0.0 : it->second);
    }
  }
  const Srm s = SampleRatioTest(observed, expected_shares);
  json exp = json::object();
  size_t i = 0;
  for (const auto& [key, a] : arms) exp[key] = Finite(s.expected[i++]);
  return {{"unit", "customers"},
          {"chi2", Finite(s.chi2)},
          {"df", s.df},
          {"p", Finite(s.p)},
          {"alpha", kSrmAlpha},
          {"flagged", s.p < kSrmAlpha},
          {"observed", std::move(obs)},
          {"expected", std::move(exp)},
          {"expected_shares", shares.empty() ? json("equal") : json(shares)}};
}

}  // namespace

VetoSource ClassifyVeto(std::string_view note) {
  auto between = [&](std::string_view prefix, char end) {
    std::string_view rest = note.substr(prefix.size());
    return std::string(rest.substr(0, rest.find(end)));
  };
  if (note.starts_with("suppressed by policy '"))
    return {"policy", between("suppressed by policy '", '\'')};
  if (note.starts_with("sensitive gate (")) return {"sensitive", between("sensitive gate (", ')')};
  if (note.starts_with("excluded by request")) return {"request", "request"};
  if (note.starts_with("journey ")) {
    std::string_view rest = note.substr(8);
    return {"journey", std::string(rest.substr(0, rest.find(", stage")))};
  }
  if (note.starts_with("rules: ")) return {"engine", "rules"};
  return {"rule", std::string(RuleOfNote(note))};
}

json BuildReport(Store& store, const ReportOptions& opt, std::string* err) {
  const int64_t total = store.CountDecisions(opt.window);
  if (total < 0) {
    *err = store.path() + ": cannot read decisions (is it a Tailor store?)";
    return {};
  }
  // One customer-ordered pass fills both groupings; the choice comes after.
  Arms by_arm, by_placement;
  CustomerTotals cust_arm, cust_placement;
  std::string customer;
  bool any_arm = false;
  int64_t done = 0, first_day = INT64_MAX, last_day = INT64_MIN;
  const bool one_experiment = !opt.window.experiment.empty();
  const int64_t rows = store.ForEachCustomerDayKpi(opt.window, [&](const CustomerDayKpi& r) {
    if (r.customer_id != customer) {
      Flush(cust_arm, by_arm);
      Flush(cust_placement, by_placement);
      customer = r.customer_id;
    }
    any_arm = any_arm || !r.arm.empty();
    const Totals t{r.decisions, r.impressions, r.clicks, r.conversions, r.revenue};
    for (auto [arms, cust, key] : {std::tuple{&by_arm, &cust_arm, ArmKey(r, one_experiment)},
                                   std::tuple{&by_placement, &cust_placement,
                                              r.placement.empty() ? "(none)" : r.placement}}) {
      Arm& a = (*arms)[key];
      a.totals.Add(t);
      a.days[r.day].Add(t);
      if (!r.experiment.empty()) a.experiments.insert(r.experiment);
      a.placements.insert(r.placement);
      (*cust)[key].Add(t);
    }
    first_day = std::min(first_day, r.day);
    last_day = std::max(last_day, r.day);
    done += r.decisions;
    if (opt.progress && (done & 1023) < r.decisions) opt.progress(done, total, "decisions");
    return true;
  });
  if (rows < 0) {
    *err = store.path() + ": cannot read the decision log";
    return {};
  }
  Flush(cust_arm, by_arm);
  Flush(cust_placement, by_placement);
  if (opt.progress) opt.progress(done, total, "decisions");

  const bool use_arm = opt.by == ReportOptions::GroupBy::kArm ||
                       (opt.by == ReportOptions::GroupBy::kAuto && any_arm);
  const Arms& arms = use_arm ? by_arm : by_placement;
  const std::string control = FindControl(arms, opt.control);
  if (!opt.control.empty() && control.empty()) {
    std::string known;
    for (const auto& [key, a] : arms) known += (known.empty() ? "" : ", ") + key;
    *err = "--control: no arm '" + opt.control +
           "' in the window (arms: " + (known.empty() ? "none" : known) + ")";
    return {};
  }
  if (arms.empty()) first_day = last_day = opt.window.since_ms / kDayMs;
  ExtendToWindow(opt.window, &first_day, &last_day);

  json report = json::object();
  report["store"] = store.path();
  report["group_by"] = use_arm ? "arm" : "placement";
  report["experiment"] = opt.window.experiment;
  report["mode"] = opt.window.mode.empty() ? std::string("all") : opt.window.mode;
  report["since"] = format_iso8601_ms(first_day * kDayMs);
  report["until"] = format_iso8601_ms((last_day + 1) * kDayMs);
  report["control"] = control.empty() ? json(nullptr) : json(control);
  report["decisions"] = total;
  json arms_json = json::array();
  const Arm* ctl = control.empty() ? nullptr : &arms.at(control);
  for (const auto& [key, a] : arms)
    arms_json.push_back(ArmJson(key, a, ctl, key == control, first_day, last_day));
  report["arms"] = std::move(arms_json);
  report["srm"] = SrmJson(arms, opt.expected_shares);
  report["daily"] = Daily(arms, control, first_day, last_day);

  TraceTotals traces;
  if (!ReadTraces(store, opt, total, &traces, err)) return {};
  if (opt.progress) opt.progress(total, total, "traces");
  report["offers"] = OffersJson(store.OfferKpis(opt.window), traces);
  report["rules"] = RulesJson(traces);
  report["suppression"] = SuppressionJson(traces);
  report["unreadable_traces"] = traces.unreadable;
  return report;
}

}  // namespace tailor::report
