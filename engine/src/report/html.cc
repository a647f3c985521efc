#include "report/html.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string_view>
#include <vector>

namespace tailor::report {
namespace {

using nlohmann::json;

// Tableau-10: distinct, colour-blind friendlier than a rainbow.
constexpr const char* kPalette[] = {"#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2",
                                    "#B279A2", "#FF9DA6", "#9D755D", "#EECA3B", "#BAB0AC"};

std::string Color(size_t i) { return kPalette[i % (sizeof kPalette / sizeof *kPalette)]; }

std::string Fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string Int(int64_t v) {
  const std::string digits = std::to_string(v < 0 ? -v : v);
  std::string s = v < 0 ? "-" : "";
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) s += ',';
    s += digits[i];
  }
  return s;
}

int64_t I(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<int64_t>() : 0;
}
double D(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : 0.0;
}
std::string S(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// A rate as a percentage with enough digits for small rates.
std::string Pct(double r) {
  const double a = std::fabs(r * 100);
  return Fmt(a >= 10 ? "%.1f%%" : a >= 1 ? "%.2f%%" : "%.3f%%", r * 100);
}
std::string Pp(double d) { return Fmt("%+.2f pp", d * 100); }
std::string Money(double v) { return Fmt(std::fabs(v) >= 100 ? "%.0f" : "%.2f", v); }
std::string PValue(double p) { return p < 0.0001 ? "&lt;0.0001" : Fmt("%.4f", p); }

enum class Axis { kPercent, kPoints, kMoney };

std::string Tick(double v, Axis axis, double step) {
  switch (axis) {
    case Axis::kPercent:
      return Fmt(step * 100 >= 1 ? "%.0f%%" : step * 100 >= 0.1 ? "%.1f%%" : "%.2f%%", v * 100);
    case Axis::kPoints:
      return Fmt(step * 100 >= 1     ? "%+.0f pp"
                 : step * 100 >= 0.1 ? "%+.1f pp"
                                     : "%+.2f pp",
                 v * 100);
    case Axis::kMoney:
      return Fmt(step >= 1 ? "%.0f" : step >= 0.1 ? "%.1f" : "%.2f", v);
  }
  return "";
}

double NiceStep(double range, int target) {
  if (!(range > 0)) return 1;
  const double raw = range / target;
  const double mag = std::pow(10, std::floor(std::log10(raw)));
  const double f = raw / mag;
  return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
}

struct Series {
  std::string name;
  std::string color;
  std::vector<double> y, lo, hi;  // lo/hi empty: no band
  bool dashed = false;
};

// Plot frame shared by the charts: the viewBox and the plot area inside it.
struct Frame {
  double w = 1100, h = 330, left = 70, right = 190, top = 18, bottom = 42;
  double pw() const { return w - left - right; }
  double ph() const { return h - top - bottom; }
};

std::string SvgOpen(const Frame& f, const std::string& label) {
  return "<svg class=\"chart\" role=\"img\" aria-label=\"" + HtmlEscape(label) +
         "\" viewBox=\"0 0 " + Fmt("%.0f", f.w) + " " + Fmt("%.0f", f.h) +
         "\" preserveAspectRatio=\"xMidYMid meet\" xmlns=\"http://www.w3.org/2000/svg\">";
}

// Y gridlines with labels; returns the scale's [lo, hi].
std::pair<double, double> YAxis(const Frame& f, double lo, double hi, Axis axis, bool zero,
                                std::string* out) {
  if (zero) {
    lo = std::min(lo, 0.0);
    hi = std::max(hi, 0.0);
  }
  if (!(hi > lo)) {
    hi = lo + (lo == 0 ? 0.01 : std::fabs(lo) * 0.1);
  }
  const double pad = (hi - lo) * 0.06;
  if (!(zero && lo == 0)) lo -= pad;
  hi += pad;
  const double step = NiceStep(hi - lo, 5);
  lo = std::floor(lo / step) * step;
  hi = std::ceil(hi / step) * step;
  for (double v = lo; v <= hi + step * 1e-6; v += step) {
    const double y = f.top + f.ph() * (1 - (v - lo) / (hi - lo));
    const bool axis_line = zero && std::fabs(v) < step * 1e-6;
    *out += "<line x1=\"" + Fmt("%.1f", f.left) + "\" x2=\"" + Fmt("%.1f", f.left + f.pw()) +
            "\" y1=\"" + Fmt("%.1f", y) + "\" y2=\"" + Fmt("%.1f", y) + "\" class=\"" +
            (axis_line ? "zero" : "grid") + "\"/>";
    *out += "<text x=\"" + Fmt("%.1f", f.left - 8) + "\" y=\"" + Fmt("%.1f", y + 4) +
            "\" class=\"tick\" text-anchor=\"end\">" +
            Tick(std::fabs(v) < step * 1e-6 ? 0 : v, axis, step) + "</text>";
  }
  return {lo, hi};
}

std::string XLabels(const Frame& f, const std::vector<std::string>& xs) {
  std::string out;
  const size_t n = xs.size();
  if (n == 0) return out;
  const size_t every = std::max<size_t>(1, (n + 7) / 8);
  for (size_t i = 0; i < n; i += every) {
    const double x =
        f.left +
        (n == 1 ? f.pw() / 2 : f.pw() * static_cast<double>(i) / static_cast<double>(n - 1));
    out += "<text x=\"" + Fmt("%.1f", x) + "\" y=\"" + Fmt("%.1f", f.top + f.ph() + 20) +
           "\" class=\"tick\" text-anchor=\"middle\">" + HtmlEscape(xs[i].substr(5)) + "</text>";
  }
  return out;
}

std::string Legend(const Frame& f, const std::vector<Series>& series) {
  std::string out;
  for (size_t i = 0; i < series.size(); ++i) {
    const double y = f.top + 10 + 22 * static_cast<double>(i);
    const double x = f.left + f.pw() + 18;
    out += "<line x1=\"" + Fmt("%.1f", x) + "\" x2=\"" + Fmt("%.1f", x + 22) + "\" y1=\"" +
           Fmt("%.1f", y) + "\" y2=\"" + Fmt("%.1f", y) + "\" stroke=\"" + series[i].color +
           "\" stroke-width=\"3\"" + (series[i].dashed ? " stroke-dasharray=\"6 4\"" : "") +
           "/><text x=\"" + Fmt("%.1f", x + 30) + "\" y=\"" + Fmt("%.1f", y + 4) +
           "\" class=\"legend\">" + HtmlEscape(series[i].name) + "</text>";
  }
  return out;
}

// Lines over days with optional shaded interval bands.
std::string LineChart(const std::string& label, const std::vector<std::string>& xs,
                      const std::vector<Series>& series, Axis axis, bool zero) {
  Frame f;
  double lo = INFINITY, hi = -INFINITY;
  for (const Series& s : series)
    for (size_t i = 0; i < s.y.size(); ++i) {
      lo = std::min({lo, s.y[i], s.lo.empty() ? s.y[i] : s.lo[i]});
      hi = std::max({hi, s.y[i], s.hi.empty() ? s.y[i] : s.hi[i]});
    }
  if (!std::isfinite(lo)) lo = hi = 0;
  std::string out = SvgOpen(f, label);
  const auto [ylo, yhi] = YAxis(f, lo, hi, axis, zero, &out);
  const size_t n = xs.size();
  auto X = [&](size_t i) {
    return f.left +
           (n <= 1 ? f.pw() / 2 : f.pw() * static_cast<double>(i) / static_cast<double>(n - 1));
  };
  auto Y = [&, ylo = ylo, yhi = yhi](double v) {
    return f.top + f.ph() * (1 - (v - ylo) / (yhi - ylo));
  };
  for (const Series& s : series) {
    if (s.lo.empty() || s.y.empty()) continue;
    std::string pts;
    for (size_t i = 0; i < s.y.size(); ++i) pts += Fmt("%.1f,", X(i)) + Fmt("%.1f ", Y(s.hi[i]));
    for (size_t i = s.y.size(); i-- > 0;) pts += Fmt("%.1f,", X(i)) + Fmt("%.1f ", Y(s.lo[i]));
    out += "<polygon class=\"band\" points=\"" + pts + "\" fill=\"" + s.color + "\"/>";
  }
  for (const Series& s : series) {
    if (s.y.empty()) continue;
    std::string pts;
    for (size_t i = 0; i < s.y.size(); ++i) pts += Fmt("%.1f,", X(i)) + Fmt("%.1f ", Y(s.y[i]));
    out += "<polyline class=\"line\" points=\"" + pts + "\" stroke=\"" + s.color + "\"" +
           (s.dashed ? " stroke-dasharray=\"6 4\"" : "") + "><title>" + HtmlEscape(s.name) +
           "</title></polyline>";
    const size_t last = s.y.size() - 1;
    out += "<circle cx=\"" + Fmt("%.1f", X(last)) + "\" cy=\"" + Fmt("%.1f", Y(s.y[last])) +
           "\" r=\"4\" fill=\"" + s.color + "\"><title>" + HtmlEscape(s.name) + ": " +
           Tick(s.y[last], axis, axis == Axis::kMoney ? 0.01 : 0.0001) + "</title></circle>";
  }
  out += XLabels(f, xs) + Legend(f, series) + "</svg>";
  return out;
}

// Point estimates with interval whiskers, one row per arm.
std::string ForestPlot(const std::string& label, const std::vector<std::string>& names,
                       const std::vector<std::string>& colors, const std::vector<double>& v,
                       const std::vector<double>& lo, const std::vector<double>& hi,
                       const std::vector<std::string>& notes) {
  Frame f;
  f.h = 60 + 44 * static_cast<double>(names.size());
  f.left = 190;
  f.right = 220;
  double mn = 0, mx = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    mn = std::min({mn, lo[i], v[i]});
    mx = std::max({mx, hi[i], v[i]});
  }
  std::string out = SvgOpen(f, label);
  const double step = NiceStep(mx - mn > 0 ? mx - mn : 0.1, 6);
  const double a = std::floor(mn / step) * step - (mn == 0 ? 0 : 0);
  const double b = std::ceil(mx / step) * step + (mx - mn > 0 ? 0 : step);
  auto X = [&](double x) { return f.left + f.pw() * (x - a) / (b - a); };
  for (double t = a; t <= b + step * 1e-6; t += step) {
    const bool z = std::fabs(t) < step * 1e-6;
    out += "<line y1=\"" + Fmt("%.1f", f.top) + "\" y2=\"" + Fmt("%.1f", f.top + f.ph()) +
           "\" x1=\"" + Fmt("%.1f", X(t)) + "\" x2=\"" + Fmt("%.1f", X(t)) + "\" class=\"" +
           (z ? "zero" : "grid") + "\"/><text x=\"" + Fmt("%.1f", X(t)) + "\" y=\"" +
           Fmt("%.1f", f.top + f.ph() + 20) + "\" class=\"tick\" text-anchor=\"middle\">" +
           Fmt("%+.0f%%", z ? 0 : t * 100) + "</text>";
  }
  for (size_t i = 0; i < names.size(); ++i) {
    const double y = f.top + 26 + 44 * static_cast<double>(i);
    out += "<text x=\"" + Fmt("%.1f", f.left - 12) + "\" y=\"" + Fmt("%.1f", y + 5) +
           "\" class=\"label\" text-anchor=\"end\">" + HtmlEscape(names[i]) + "</text>";
    out += "<line class=\"whisker\" x1=\"" + Fmt("%.1f", X(lo[i])) + "\" x2=\"" +
           Fmt("%.1f", X(hi[i])) + "\" y1=\"" + Fmt("%.1f", y) + "\" y2=\"" + Fmt("%.1f", y) +
           "\" stroke=\"" + colors[i] + "\"/>";
    out += "<rect x=\"" + Fmt("%.1f", X(lo[i])) + "\" y=\"" + Fmt("%.1f", y - 9) + "\" width=\"" +
           Fmt("%.1f", std::max(1.0, X(hi[i]) - X(lo[i]))) +
           "\" height=\"18\" rx=\"4\" class=\"band\" fill=\"" + colors[i] + "\"/>";
    out += "<circle cx=\"" + Fmt("%.1f", X(v[i])) + "\" cy=\"" + Fmt("%.1f", y) +
           "\" r=\"7\" fill=\"" + colors[i] + "\"><title>" + HtmlEscape(names[i]) + ": " +
           Fmt("%+.1f%%", v[i] * 100) + " [" + Fmt("%+.1f%%", lo[i] * 100) + ", " +
           Fmt("%+.1f%%", hi[i] * 100) + "]</title></circle>";
    out += "<text x=\"" + Fmt("%.1f", f.left + f.pw() + 14) + "\" y=\"" + Fmt("%.1f", y + 5) +
           "\" class=\"legend\">" + notes[i] + "</text>";
  }
  out += "</svg>";
  return out;
}

// Grouped bars: weekly revenue per customer per arm.
std::string WeeklyBars(const std::string& label, const std::vector<std::string>& weeks,
                       const std::vector<Series>& series) {
  Frame f;
  f.h = 300;
  double mx = 0;
  for (const Series& s : series)
    for (double y : s.y) mx = std::max(mx, y);
  std::string out = SvgOpen(f, label);
  const auto [ylo, yhi] = YAxis(f, 0, mx, Axis::kMoney, true, &out);
  const size_t n = std::max<size_t>(weeks.size(), 1);
  const double group = f.pw() / static_cast<double>(n);
  const double bar =
      std::min(28.0, group * 0.8 / static_cast<double>(std::max<size_t>(series.size(), 1)));
  for (size_t w = 0; w < weeks.size(); ++w) {
    const double gx = f.left + group * static_cast<double>(w) +
                      (group - bar * static_cast<double>(series.size())) / 2;
    for (size_t s = 0; s < series.size(); ++s) {
      const double v = w < series[s].y.size() ? series[s].y[w] : 0;
      const double y = f.top + f.ph() * (1 - (v - ylo) / (yhi - ylo));
      out += "<rect x=\"" + Fmt("%.1f", gx + bar * static_cast<double>(s)) + "\" y=\"" +
             Fmt("%.1f", y) + "\" width=\"" + Fmt("%.1f", bar - 2) + "\" height=\"" +
             Fmt("%.1f", f.top + f.ph() - y) + "\" rx=\"2\" fill=\"" + series[s].color +
             "\"><title>" + HtmlEscape(series[s].name) + ", week of " + HtmlEscape(weeks[w]) +
             ": " + Money(v) + " per customer</title></rect>";
    }
    out += "<text x=\"" + Fmt("%.1f", f.left + group * (static_cast<double>(w) + 0.5)) + "\" y=\"" +
           Fmt("%.1f", f.top + f.ph() + 20) + "\" class=\"tick\" text-anchor=\"middle\">" +
           HtmlEscape(weeks[w].substr(5)) + "</text>";
  }
  out += Legend(f, series) + "</svg>";
  return out;
}

// The funnel of all offers together: one trapezoid per stage.
std::string FunnelChart(const std::vector<std::pair<std::string, int64_t>>& stages) {
  Frame f;
  f.h = 90 + 64.0 * static_cast<double>(stages.size());
  std::string out = SvgOpen(f, "offer funnel");
  const double top_n = stages.empty() ? 1 : std::max<double>(1, stages[0].second);
  const double cx = f.w / 2 - 60, maxw = 640, rowh = 58;
  for (size_t i = 0; i < stages.size(); ++i) {
    // Width by the square root: clicks are a few percent of impressions and
    // would vanish on a linear scale; the labels carry the exact figures.
    const double w0 = maxw * std::sqrt(static_cast<double>(stages[i].second) / top_n);
    const double w1 = i + 1 < stages.size()
                          ? maxw * std::sqrt(static_cast<double>(stages[i + 1].second) / top_n)
                          : w0;
    const double y = f.top + 14 + rowh * static_cast<double>(i);
    out += "<polygon points=\"" + Fmt("%.1f,", cx - w0 / 2) + Fmt("%.1f ", y) +
           Fmt("%.1f,", cx + w0 / 2) + Fmt("%.1f ", y) + Fmt("%.1f,", cx + std::max(w1, 4.0) / 2) +
           Fmt("%.1f ", y + rowh - 6) + Fmt("%.1f,", cx - std::max(w1, 4.0) / 2) +
           Fmt("%.1f", y + rowh - 6) + "\" fill=\"" + Color(0) + "\" fill-opacity=\"" +
           Fmt("%.2f", 0.95 - 0.14 * static_cast<double>(i)) + "\"><title>" +
           HtmlEscape(stages[i].first) + ": " + Int(stages[i].second) + "</title></polygon>";
    out += "<text x=\"" + Fmt("%.1f", cx + maxw / 2 + 24) + "\" y=\"" + Fmt("%.1f", y + rowh / 2) +
           "\" class=\"label\">" + HtmlEscape(stages[i].first) + "</text><text x=\"" +
           Fmt("%.1f", cx + maxw / 2 + 24) + "\" y=\"" + Fmt("%.1f", y + rowh / 2 + 18) +
           "\" class=\"tick\">" + Int(stages[i].second) +
           (i > 0 && stages[i - 1].second > 0 ? " · " +
                                                    Pct(static_cast<double>(stages[i].second) /
                                                        static_cast<double>(stages[i - 1].second)) +
                                                    " of " + HtmlEscape(stages[i - 1].first)
                                              : std::string()) +
           "</text>";
  }
  out += "</svg>";
  return out;
}

// A horizontal bar inside a table cell, scaled to the column's maximum.
std::string CellBar(double v, double max, const std::string& color) {
  const double w = max > 0 ? 100 * v / max : 0;
  return "<svg class=\"cellbar\" viewBox=\"0 0 100 8\" preserveAspectRatio=\"none\"><rect "
         "width=\"" +
         Fmt("%.1f", std::max(w, v > 0 ? 1.0 : 0.0)) + "\" height=\"8\" rx=\"2\" fill=\"" + color +
         "\"/></svg>";
}

const char* kStyle = R"css(
:root{--ink:#1f2933;--muted:#616e7c;--line:#e4e7eb;--bg:#f5f7fa;--card:#fff;--good:#2f855a;--bad:#c53030;--accent:#4C78A8}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 -apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--ink);background:var(--bg)}
header{background:linear-gradient(120deg,#243b53,#4C78A8);color:#fff;padding:28px 40px 22px}
header h1{margin:0 0 6px;font-size:26px;font-weight:600;letter-spacing:.2px}
header .meta{opacity:.85;font-size:13px}
main{max-width:1240px;margin:0 auto;padding:24px 40px 48px}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:20px 24px;margin:0 0 22px;box-shadow:0 1px 2px rgba(16,24,40,.04)}
h2{font-size:17px;margin:0 0 4px;font-weight:600}
p.sub{margin:0 0 14px;color:var(--muted);font-size:13px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(220px,1fr));gap:14px;margin-bottom:22px}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:14px 16px;border-top:4px solid var(--c)}
.card .name{font-weight:600;font-size:15px}.card .big{font-size:26px;font-weight:600;margin:4px 0 0}
.card .small{color:var(--muted);font-size:12px}
.up{color:var(--good);font-weight:600}.down{color:var(--bad);font-weight:600}.flat{color:var(--muted)}
.banner{border-radius:10px;padding:12px 18px;margin:0 0 22px;font-weight:500}
.banner.ok{background:#e6f4ea;color:#1e4620;border:1px solid #b7dfc0}
.banner.alert{background:#fdecea;color:#7b1d1d;border:1px solid #f5c2c0}
table{border-collapse:collapse;width:100%;font-size:12.5px}
.scroll{overflow-x:auto}
th,td{padding:6px 7px;border-bottom:1px solid var(--line);text-align:right;white-space:nowrap}
th{color:var(--muted);font-weight:600;font-size:11px;text-transform:uppercase;letter-spacing:.3px}
th:first-child,td:first-child{text-align:left}
tbody tr:nth-child(even){background:#fafbfc}
td .ci{color:var(--muted);font-size:11px;display:block}
.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:8px;vertical-align:middle}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:11px;font-weight:600}
.badge.sig{background:#e6f4ea;color:var(--good)}.badge.neg{background:#fdecea;color:var(--bad)}.badge.ns{background:#eef2f6;color:var(--muted)}
.badge.ctl{background:#e8eef7;color:#243b53}
svg.chart{width:100%;height:auto;display:block}
svg.cellbar{width:90px;height:8px;vertical-align:middle;margin-left:6px}
svg .grid{stroke:#edf0f3;stroke-width:1}svg .zero{stroke:#9aa5b1;stroke-width:1.2}
svg .tick{fill:#7b8794;font-size:12px}svg .legend{fill:#323f4b;font-size:13px}svg .label{fill:#323f4b;font-size:13px;font-weight:600}
svg .line{fill:none;stroke-width:2.5;stroke-linejoin:round}svg .band{fill-opacity:.16;stroke:none}
svg .whisker{stroke-width:2}
.two{display:grid;grid-template-columns:1fr 1fr;gap:22px}
footer{color:var(--muted);font-size:12px;text-align:center;padding:8px 0 30px}
)css";

std::string ArmName(const json& a) { return S(a, "arm"); }

std::string Cards(const json& arms) {
  std::string out = "<div class=\"cards\">";
  size_t i = 0;
  for (const json& a : arms) {
    const json& u = a["uplift"];
    std::string uplift = "<span class=\"badge ctl\">control</span>";
    if (u.is_object()) {
      const double rel = D(u, "relative"), p = D(u, "p");
      const char* cls = p < 0.05 ? (D(u, "ctr") > 0 ? "up" : "down") : "flat";
      uplift = std::string("<span class=\"") + cls + "\">" + Fmt("%+.1f%%", rel * 100) +
               " CTR</span> vs control (p " + PValue(p) + ")";
    } else if (!a.value("control", false)) {
      uplift = "<span class=\"flat\">no control to compare</span>";
    }
    out += "<div class=\"card\" style=\"--c:" + Color(i++) + "\"><div class=\"name\">" +
           HtmlEscape(ArmName(a)) + "</div><div class=\"big\">" + Pct(D(a, "ctr")) +
           "</div><div class=\"small\">click-through · " + Int(I(a, "impressions")) +
           " impressions</div><div class=\"small\">" + Money(D(a, "revenue_per_customer")) +
           " revenue per customer</div><div class=\"small\">" + uplift + "</div></div>";
  }
  return out + "</div>";
}

std::string SrmBanner(const json& srm) {
  const bool flagged = srm.value("flagged", false);
  std::string detail = "χ² = " + Fmt("%.2f", D(srm, "chi2")) + ", df " +
                       std::to_string(I(srm, "df")) + ", p = " + PValue(D(srm, "p"));
  if (flagged)
    return "<div class=\"banner alert\" id=\"srm\">⚠ Sample ratio mismatch: the arms' customer "
           "counts do not match the expected split (" +
           detail +
           "). The assignment or the logging is broken; do not trust the uplift figures "
           "until it is explained.</div>";
  return "<div class=\"banner ok\" id=\"srm\">✓ Traffic split as expected (" + detail +
         "; flagged below p = 0.001).</div>";
}

std::string ArmTable(const json& arms) {
  std::string out =
      "<table><thead><tr><th>Arm</th><th>Customers</th><th>Decisions</th><th>Impressions</th>"
      "<th>Clicks</th><th>CTR</th><th>Conversions</th><th>Conv. rate</th><th>Rev / impr.</th>"
      "<th>Rev / customer</th><th>CTR uplift</th><th>p</th></tr></thead><tbody>";
  size_t i = 0;
  for (const json& a : arms) {
    auto ci = [&](const char* key, bool pct) {
      const json& c = a[key];
      return "<span class=\"ci\">" + (pct ? Pct(c[0]) : Money(c[0])) + " – " +
             (pct ? Pct(c[1]) : Money(c[1])) + "</span>";
    };
    const json& u = a["uplift"];
    std::string up = "<span class=\"badge ctl\">control</span>", p;
    if (u.is_object()) {
      const double pv = D(u, "p");
      const char* badge = pv >= 0.05 ? "ns" : D(u, "ctr") > 0 ? "sig" : "neg";
      up = std::string("<span class=\"badge ") + badge + "\">" + Pp(D(u, "ctr")) +
           "</span><span class=\"ci\">" + Pp(u["ci"][0]) + " – " + Pp(u["ci"][1]) + "</span>";
      p = PValue(pv);
    } else if (!a.value("control", false)) {
      up = "–";
    }
    out += "<tr><td><span class=\"swatch\" style=\"background:" + Color(i++) + "\"></span>" +
           HtmlEscape(ArmName(a)) + "</td><td>" + Int(I(a, "customers")) + "</td><td>" +
           Int(I(a, "decisions")) + "</td><td>" + Int(I(a, "impressions")) + "</td><td>" +
           Int(I(a, "clicks")) + "</td><td>" + Pct(D(a, "ctr")) + ci("ctr_ci", true) + "</td><td>" +
           Int(I(a, "conversions")) + "</td><td>" + Pct(D(a, "conversion_rate")) +
           ci("conversion_ci", true) + "</td><td>" + Money(D(a, "revenue_per_impression")) +
           ci("revenue_per_impression_ci", false) + "</td><td>" +
           Money(D(a, "revenue_per_customer")) + ci("revenue_ci", false) + "</td><td>" + up +
           "</td><td>" + p + "</td></tr>";
  }
  return out + "</tbody></table>";
}

std::vector<double> Column(const json& points, const char* key, int index = -1) {
  std::vector<double> out;
  for (const json& p : points) {
    auto it = p.find(key);
    if (it == p.end()) {
      out.push_back(NAN);
      continue;
    }
    out.push_back(index < 0 ? it->get<double>() : (*it)[static_cast<size_t>(index)].get<double>());
  }
  return out;
}

std::string TimeCharts(const json& report, int* charts) {
  const json& daily = report["daily"];
  const json& arms = report["arms"];
  std::vector<std::string> days;
  if (!arms.empty() && daily.contains(ArmName(arms[0])))
    for (const json& p : daily[ArmName(arms[0])]) days.push_back(S(p, "day"));
  std::vector<Series> ctr, rpi, uplift;
  size_t i = 0;
  for (const json& a : arms) {
    const std::string name = ArmName(a);
    const json& pts = daily[name];
    const bool ctl = a.value("control", false);
    ctr.push_back({name, Color(i), Column(pts, "ctr"), Column(pts, "ctr_ci", 0),
                   Column(pts, "ctr_ci", 1), ctl});
    rpi.push_back({name, Color(i), Column(pts, "revenue_per_impression"), {}, {}, ctl});
    if (a["uplift"].is_object()) {
      // Days before both arms had impressions carry no uplift: start later.
      Series s{name, Color(i), {}, {}, {}, false};
      std::vector<double> y = Column(pts, "uplift_ctr"), lo = Column(pts, "uplift_ci", 0),
                          hi = Column(pts, "uplift_ci", 1);
      for (size_t k = 0; k < y.size(); ++k)
        if (!std::isnan(y[k])) {
          s.y.push_back(y[k]);
          s.lo.push_back(lo[k]);
          s.hi.push_back(hi[k]);
        }
      uplift.push_back(std::move(s));
    }
    ++i;
  }
  std::string out =
      "<section id=\"cumulative\"><h2>Cumulative click-through rate</h2><p class=\"sub\">Clicks "
      "÷ impressions from the first day to each day, per arm; the shaded band is the 95% "
      "Wilson interval. The control is dashed.</p>" +
      LineChart("cumulative CTR per arm", days, ctr, Axis::kPercent, false) + "</section>";
  ++*charts;
  if (!uplift.empty()) {
    // Align the uplift series on the last days (they may start later).
    std::vector<std::string> udays = days;
    size_t longest = 0;
    for (const Series& s : uplift) longest = std::max(longest, s.y.size());
    if (longest < udays.size()) udays.erase(udays.begin(), udays.end() - longest);
    for (Series& s : uplift)
      while (s.y.size() < longest) {
        s.y.insert(s.y.begin(), s.y.front());
        s.lo.insert(s.lo.begin(), s.lo.front());
        s.hi.insert(s.hi.begin(), s.hi.front());
      }
    out += "<section id=\"uplift\"><h2>CTR uplift against " + HtmlEscape(S(report, "control")) +
           "</h2><p class=\"sub\">Cumulative difference in click-through rate, percentage "
           "points, with its 95% interval (Newcombe). Where the band leaves zero the "
           "difference is significant.</p>" +
           LineChart("cumulative CTR uplift", udays, uplift, Axis::kPoints, true) + "</section>";
    ++*charts;
  }
  out +=
      "<section id=\"revenue\"><h2>Cumulative revenue per impression</h2><p "
      "class=\"sub\">Conversion value ÷ impressions from the first day to each day.</p>" +
      LineChart("cumulative revenue per impression", days, rpi, Axis::kMoney, true) + "</section>";
  ++*charts;
  return out;
}

std::string UpliftForest(const json& report, int* charts) {
  std::vector<std::string> names, colors, notes;
  std::vector<double> v, lo, hi;
  size_t i = 0;
  for (const json& a : report["arms"]) {
    const json& u = a["uplift"];
    if (u.is_object()) {
      names.push_back(ArmName(a));
      colors.push_back(Color(i));
      v.push_back(D(u, "relative"));
      lo.push_back(u["relative_ci"][0]);
      hi.push_back(u["relative_ci"][1]);
      notes.push_back(Fmt("%+.1f%%", D(u, "relative") * 100) + " · p " + PValue(D(u, "p")));
    }
    ++i;
  }
  if (names.empty()) return "";
  ++*charts;
  return "<section id=\"forest\"><h2>Relative CTR lift over " + HtmlEscape(S(report, "control")) +
         "</h2><p class=\"sub\">Each arm's CTR ÷ the control's − 1, with the 95% interval "
         "(delta method on the log ratio).</p>" +
         ForestPlot("relative CTR lift", names, colors, v, lo, hi, notes) + "</section>";
}

std::string ClvChart(const json& report, int* charts) {
  std::vector<std::string> weeks;
  std::vector<Series> series;
  std::string rows;
  size_t i = 0;
  for (const json& a : report["arms"]) {
    const json& clv = a["clv"];
    Series s{ArmName(a), Color(i++), {}, {}, {}, false};
    if (weeks.empty())
      for (const json& w : clv["weekly"]) weeks.push_back(S(w, "week_start"));
    for (const json& w : clv["weekly"]) s.y.push_back(D(w, "revenue_per_customer"));
    const double slope = D(clv, "slope_per_week");
    rows += "<tr><td><span class=\"swatch\" style=\"background:" + s.color + "\"></span>" +
            HtmlEscape(s.name) + "</td><td>" + Money(D(clv, "revenue_per_customer")) + "</td><td>" +
            Fmt("%+.3f", slope) + "<span class=\"ci\">" +
            Fmt("%+.3f", clv["slope_ci"][0].get<double>()) + " – " +
            Fmt("%+.3f", clv["slope_ci"][1].get<double>()) + "</span></td><td>" +
            std::to_string(I(clv, "weeks_in_slope")) + "</td></tr>";
    series.push_back(std::move(s));
  }
  ++*charts;
  return "<section id=\"clv\"><h2>Customer value (lifetime value proxy)</h2><p "
         "class=\"sub\">Revenue per customer of each arm, week by week (the weeks add up to "
         "the window's revenue per customer), and its trend.</p>" +
         WeeklyBars("weekly revenue per customer", weeks, series) +
         "<table><thead><tr><th>Arm</th><th>Revenue / customer</th><th>Trend per "
         "week</th><th>Weeks in trend</th></tr></thead><tbody>" +
         rows + "</tbody></table></section>";
}

std::string Funnel(const json& report, int* charts) {
  const json& offers = report["offers"];
  int64_t eligible = 0, chosen = 0, shown = 0, clicked = 0, converted = 0;
  int64_t max_eligible = 0, max_shown = 0;
  for (const json& o : offers) {
    eligible += I(o, "eligible");
    chosen += I(o, "chosen");
    shown += I(o, "shown");
    clicked += I(o, "clicked");
    converted += I(o, "converted");
    max_eligible = std::max(max_eligible, I(o, "eligible"));
    max_shown = std::max(max_shown, I(o, "shown"));
  }
  ++*charts;
  std::string out =
      "<section id=\"funnel\"><h2>Offer funnel</h2><p class=\"sub\">All offers together: "
      "eligible (allowed by rules, journeys, policies and consent) → chosen by Tailor → shown "
      "→ clicked → converted. Widths are by square root so the later stages stay "
      "visible.</p>" +
      FunnelChart({{"eligible", eligible},
                   {"chosen", chosen},
                   {"shown", shown},
                   {"clicked", clicked},
                   {"converted", converted}});
  // Offers by impressions, the busiest first.
  std::vector<const json*> sorted;
  for (const json& o : offers) sorted.push_back(&o);
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const json* a, const json* b) { return I(*a, "shown") > I(*b, "shown"); });
  out +=
      "<div "
      "class=\"scroll\"><table><thead><tr><th>Offer</th><th>Eligible</th><th>Chosen</th><th>Shown</"
      "th>"
      "<th>Clicked</th><th>CTR</th><th>Converted</th><th>Revenue</th><th>Suppressed</th><th>by "
      "rule</th><th>journey</th><th>policy</th><th>other</th></tr></thead><tbody>";
  for (const json* o : sorted) {
    const json& by = (*o)["suppressed_by"];
    const int64_t other = I(by, "sensitive") + I(by, "request") + I(by, "engine");
    out += "<tr><td>" + HtmlEscape(S(*o, "offer")) + "</td><td>" + Int(I(*o, "eligible")) +
           CellBar(static_cast<double>(I(*o, "eligible")), static_cast<double>(max_eligible),
                   Color(4)) +
           "</td><td>" + Int(I(*o, "chosen")) + "</td><td>" + Int(I(*o, "shown")) +
           CellBar(static_cast<double>(I(*o, "shown")), static_cast<double>(max_shown), Color(0)) +
           "</td><td>" + Int(I(*o, "clicked")) + "</td><td>" + Pct(D(*o, "ctr")) + "</td><td>" +
           Int(I(*o, "converted")) + "</td><td>" + Money(D(*o, "revenue")) + "</td><td>" +
           Int(I(*o, "suppressed")) + "</td><td>" + Int(I(by, "rule")) + "</td><td>" +
           Int(I(by, "journey")) + "</td><td>" + Int(I(by, "policy")) + "</td><td>" + Int(other) +
           "</td></tr>";
  }
  return out + "</tbody></table></div></section>";
}

std::string RulesSection(const json& report) {
  std::string out =
      "<section id=\"rules\"><h2>Rules, journeys and policies</h2><p class=\"sub\">From the "
      "decision log, so the figures survive reloads and restarts. A lever multiplies an "
      "offer's priority; the mean is geometric.</p><div class=\"two\"><div><table><thead><tr>"
      "<th>Rule</th><th>Vetoes</th><th>Levers</th><th>Boosts</th><th>Demotions</th><th>Mean "
      "lever</th><th>Shown with lever</th><th>Errors</th></tr></thead><tbody>";
  for (const json& r : report["rules"])
    out += "<tr><td>" + HtmlEscape(S(r, "rule")) + "</td><td>" + Int(I(r, "vetoes")) + "</td><td>" +
           Int(I(r, "levers")) + "</td><td>" + Int(I(r, "boosts")) + "</td><td>" +
           Int(I(r, "demotions")) + "</td><td>×" + Fmt("%.3g", D(r, "mean_lever")) + "</td><td>" +
           Int(I(r, "shown_with_lever")) + "</td><td>" + Int(I(r, "errors")) + "</td></tr>";
  if (report["rules"].empty())
    out += "<tr><td colspan=\"8\">No rule acted in the window.</td></tr>";
  out +=
      "</tbody></table></div><div><table><thead><tr><th>Suppressed by</th><th>Kind</th>"
      "<th>Candidates</th></tr></thead><tbody>";
  int64_t max = 0;
  for (const json& s : report["suppression"]) max = std::max(max, I(s, "count"));
  for (const json& s : report["suppression"])
    out += "<tr><td>" + HtmlEscape(S(s, "name")) + "</td><td>" + HtmlEscape(S(s, "kind")) +
           "</td><td>" + Int(I(s, "count")) +
           CellBar(static_cast<double>(I(s, "count")), static_cast<double>(max), Color(3)) +
           "</td></tr>";
  if (report["suppression"].empty())
    out += "<tr><td colspan=\"3\">Nothing was suppressed in the window.</td></tr>";
  return out + "</tbody></table></div></div></section>";
}

}  // namespace

std::string HtmlEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string RenderHtml(const json& report, const std::string& extra_sections) {
  int charts = 0;
  const json& arms = report["arms"];
  std::string body;
  body += Cards(arms);
  body += SrmBanner(report["srm"]);
  body +=
      "<section id=\"arms\"><h2>Arms</h2><p class=\"sub\">Rates per shown impression with "
      "95% Wilson intervals; revenue per customer with its normal interval over customers; "
      "uplift is the difference from the control in percentage points (Newcombe interval, "
      "two-proportion z-test).</p><div class=\"scroll\">" +
      ArmTable(arms) + "</div></section>";
  if (!arms.empty()) {
    body += TimeCharts(report, &charts);
    body += UpliftForest(report, &charts);
    body += ClvChart(report, &charts);
  }
  body += Funnel(report, &charts);
  body += RulesSection(report);
  body += extra_sections;

  const std::string title = "Tailor KPI report";
  std::string meta = HtmlEscape(S(report, "since").substr(0, 10)) + " → " +
                     HtmlEscape(S(report, "until").substr(0, 10)) + " · " +
                     Int(I(report, "decisions")) + " decisions · grouped by " +
                     HtmlEscape(S(report, "group_by"));
  if (!S(report, "experiment").empty())
    meta += " · experiment " + HtmlEscape(S(report, "experiment"));
  if (!S(report, "control").empty()) meta += " · control " + HtmlEscape(S(report, "control"));
  return "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta "
         "name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>" +
         title + "</title><style>" + kStyle + "</style></head><body><header><h1>" + title +
         "</h1><div class=\"meta\">" + meta + "</div><div class=\"meta\">" +
         HtmlEscape(S(report, "store")) + "</div></header><main>" + body +
         "</main><footer>Made by <code>tailor report</code> · one self-contained file: no "
         "scripts or styles are fetched.</footer><script>document.documentElement.dataset."
         "rendered = String(document.querySelectorAll('svg.chart').length);</script>"
         "</body></html>\n";
}

std::string ShadowHtml(const json& estimate) {
  std::string h =
      "<section class=\"shadow\">\n<h2>Shadow mode: what Tailor would have done</h2>\n<p>The "
      "application served its own choice; Tailor logged its picks. <b>served</b> is observed; "
      "<b>Tailor (model)</b> is the mean P(click) of Tailor's picks, <b>calibrated</b> that "
      "scaled by how the model's P compared with what the served offers drew. The last two "
      "columns are observed clicks at position 1 when the application's top was, or was not, "
      "Tailor's top pick.</p>\n<table>\n<thead><tr><th>placement</th><th>decisions</th>"
      "<th>agreement</th><th>served CTR</th><th>model CTR of served</th><th>Tailor CTR "
      "(model)</th><th>Tailor CTR (calibrated)</th><th>top CTR, agreed</th><th>top CTR, "
      "not agreed</th></tr></thead>\n<tbody>\n";
  auto it = estimate.find("placements");
  if (it != estimate.end() && it->is_object())
    for (const auto& [name, p] : it->items()) {
      const json& served = p["served"];
      const json& tailor = p["tailor"];
      h += "<tr><td>" + HtmlEscape(name) + "</td><td>" + Int(I(p, "decisions")) + "</td><td>" +
           Pct(D(p, "agreement")) + "</td><td>" + Pct(D(served, "ctr")) + "</td><td>" +
           Pct(D(served, "model_ctr")) + "</td><td>" + Pct(D(tailor, "ctr")) + "</td><td>" +
           Pct(D(tailor, "calibrated_ctr")) + "</td><td>" + Pct(D(p["top_agreed"], "ctr")) + " (" +
           Int(I(p["top_agreed"], "decisions")) + ")</td><td>" + Pct(D(p["top_disagreed"], "ctr")) +
           " (" + Int(I(p["top_disagreed"], "decisions")) + ")</td></tr>\n";
    }
  return h + "</tbody>\n</table>\n</section>\n";
}

}  // namespace tailor::report
