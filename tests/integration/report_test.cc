// `tailor report` end to end: a store written through Store with known
// counts, so the JSON figures are asserted exactly; a broken split that the
// SRM check must flag; a `tailor simulate --store` store it must read; and
// the HTML rendered in headless Chromium without console errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "common/time.h"
#include "report/stats.h"
#include "store/store.h"
#include "support/tailord.h"
#include "support/temp_dir.h"

namespace tailor::testing {
namespace {

using nlohmann::json;

constexpr int64_t kDay = 86'400'000;
const int64_t kStart = *parse_iso8601_ms("2026-03-02T00:00:00Z");

// Every decision's trace: o1 shown, o2 eligible with a rule's lever, o3
// vetoed by a rule, o4 suppressed by a contact policy.
const char* kTrace = R"({"candidates":4,"suppressed":2,"entries":[
 {"status":"suppressed","offer":"o3","why":{"rules":["stock_guard: out of stock"]}},
 {"status":"suppressed","offer":"o4","why":{"rules":["suppressed by policy 'tired': 3 impressions without a click within 7 days, until 2026-03-09T00:00:00.000Z"]}},
 {"status":"shown","rank":1,"offer":"o1","why":{"priority":0.3}},
 {"status":"not chosen","offer":"o2","why":{"rules":["journey welcome, stage awareness","boost_new: x1.5 new customer"]}}]})";

struct Writer {
  Store& store;
  int seq = 0;
  // One decision with one shown impression of o1; clicked/converted as asked.
  void Decide(const std::string& experiment, const std::string& arm, const std::string& customer,
              int64_t ts, bool clicked, double conversion, const std::string& mode = "live") {
    DecisionRecord d;
    d.id = "d" + std::to_string(++seq);
    d.customer_id = customer;
    d.channel = "web";
    d.placement = "home";
    d.ts_ms = ts;
    d.request_json = "{}";
    d.response_json = "{}";
    d.trace_json = kTrace;
    d.experiment = experiment;
    d.arm = arm;
    d.mode = mode;
    Impression imp;
    imp.decision_id = d.id;
    imp.customer_id = customer;
    imp.placement = "home";
    imp.channel = "web";
    imp.offer_id = "o1";
    imp.position = 1;
    imp.ts_ms = ts;
    imp.experiment = experiment;
    imp.arm = arm;
    store.LogDecision(std::move(d));
    store.LogImpressions({imp});
    if (clicked) {
      Outcome o{Outcome::Kind::kClick, imp, "click", 0, ts + 1000};
      store.LogOutcome(o);
      store.LogOutcome(o);  // a second click on the same impression counts once
    }
    if (conversion > 0)
      store.LogOutcome({Outcome::Kind::kConversion, imp, "purchase", conversion, ts + 2000});
  }
};

// exp1: control and tailor, 100 customers each, two decisions each (days 0
// and 1); control: 20 clicks, 5 conversions of 10; tailor: 40 clicks, 10
// conversions of 10. Outside the window or the mode: 7 late control
// decisions (day 9) and 10 shadow decisions. exp2: 1000 vs 800 customers.
void WriteKnownStore(const std::string& path) {
  std::string err;
  Store::Options o;
  o.path = path;
  o.synchronous_full = false;
  auto store = Store::Open(o, &err);
  ASSERT_TRUE(store) << err;
  Writer w{*store};
  for (int c = 0; c < 100; ++c) {
    const std::string cc = "c" + std::to_string(c), tc = "t" + std::to_string(c);
    w.Decide("exp1", "control", cc, kStart + 3600'000 + c, c < 20, c < 5 ? 10 : 0);
    w.Decide("exp1", "control", cc, kStart + kDay + 3600'000 + c, false, 0);
    w.Decide("exp1", "tailor", tc, kStart + 7200'000 + c, c < 40, c < 10 ? 10 : 0);
    w.Decide("exp1", "tailor", tc, kStart + kDay + 7200'000 + c, false, 0);
  }
  for (int c = 0; c < 7; ++c)
    w.Decide("exp1", "control", "c" + std::to_string(c), kStart + 9 * kDay, true, 99);
  for (int c = 0; c < 10; ++c)
    w.Decide("exp1", "tailor", "t" + std::to_string(c), kStart + 3 * 3600'000, true, 99, "shadow");
  for (int c = 0; c < 1800; ++c)
    w.Decide("exp2", c < 1000 ? "a" : "b", "x" + std::to_string(c), kStart + 1000 + c, false, 0);
  store->Flush();
}

json RunReport(const TempDir& dir, const std::string& store, const std::string& args,
               std::string* stdout_text = nullptr) {
  const std::string out = dir.file("r.json"), html = dir.file("r.html"), log = dir.file("r.log");
  const int rc = Shell(
      TailorBin() + " report --store " + store + " " + args + " --json " + out + " --html " + html,
      log);
  if (stdout_text) *stdout_text = ReadFile(log);
  EXPECT_EQ(rc, 0) << ReadFile(log);
  if (rc != 0) return json();
  return json::parse(ReadFile(out), nullptr, false);
}

const json& ArmNamed(const json& r, const std::string& name) {
  for (const json& a : r["arms"])
    if (a["arm"] == name) return a;
  static const json kNone;
  ADD_FAILURE() << "no arm " << name << " in " << r["arms"].dump();
  return kNone;
}

TEST(Report, KnownCountsGiveExactFigures) {
  TempDir dir;
  const std::string store = dir.file("known.db");
  WriteKnownStore(store);
  std::string printed;
  const json r = RunReport(dir, store,
                           "--experiment exp1 --since 2026-03-02T00:00:00Z --until "
                           "2026-03-05T00:00:00Z",
                           &printed);
  ASSERT_TRUE(r.is_object());
  EXPECT_EQ(r["group_by"], "arm");
  EXPECT_EQ(r["control"], "control");  // found by name
  ASSERT_EQ(r["arms"].size(), 2u);

  const json& c = ArmNamed(r, "control");
  EXPECT_EQ(c["customers"], 100);
  EXPECT_EQ(c["decisions"], 200);  // the 7 late decisions are outside --until
  EXPECT_EQ(c["impressions"], 200);
  EXPECT_EQ(c["clicks"], 20);  // the second click on an impression counts once
  EXPECT_EQ(c["conversions"], 5);
  EXPECT_DOUBLE_EQ(c["ctr"].get<double>(), 0.1);
  EXPECT_DOUBLE_EQ(c["conversion_rate"].get<double>(), 0.025);
  EXPECT_DOUBLE_EQ(c["revenue_per_customer"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(c["revenue_per_impression"].get<double>(), 0.25);
  EXPECT_TRUE(c["uplift"].is_null());
  EXPECT_TRUE(c["control"].get<bool>());

  const json& t = ArmNamed(r, "tailor");
  EXPECT_EQ(t["decisions"], 200);  // the 10 shadow decisions are not live
  EXPECT_EQ(t["impressions"], 200);
  EXPECT_EQ(t["clicks"], 40);
  EXPECT_EQ(t["conversions"], 10);
  EXPECT_DOUBLE_EQ(t["ctr"].get<double>(), 0.2);
  EXPECT_DOUBLE_EQ(t["revenue_per_customer"].get<double>(), 1.0);
  // Wilson for 40/200 by hand: centre (p + z²/2n)/(1 + z²/n), half-width
  // z/(1 + z²/n) · sqrt(p(1-p)/n + z²/4n²) with z = 1.959964.
  {
    const double z = 1.959964, n = 200, p = 0.2, z2 = z * z;
    const double centre = (p + z2 / (2 * n)) / (1 + z2 / n);
    const double half = z / (1 + z2 / n) * std::sqrt(p * (1 - p) / n + z2 / (4 * n * n));
    EXPECT_NEAR(t["ctr_ci"][0].get<double>(), centre - half, 1e-6);
    EXPECT_NEAR(t["ctr_ci"][1].get<double>(), centre + half, 1e-6);
    EXPECT_NEAR(t["ctr_ci"][0].get<double>(), 0.15045, 1e-4);
    EXPECT_NEAR(t["ctr_ci"][1].get<double>(), 0.26086, 1e-4);
  }
  // Uplift: +10 pp; pooled z = 0.1 / sqrt(0.15 · 0.85 · 2/200) = 2.8006.
  const json& u = t["uplift"];
  ASSERT_TRUE(u.is_object());
  EXPECT_NEAR(u["ctr"].get<double>(), 0.1, 1e-12);
  EXPECT_NEAR(u["p"].get<double>(), 0.0051, 1e-4);
  EXPECT_GT(u["ci"][0].get<double>(), 0);
  EXPECT_LT(u["ci"][1].get<double>(), 0.2);
  EXPECT_NEAR(u["relative"].get<double>(), 1.0, 1e-12);
  EXPECT_NEAR(u["revenue_per_customer"]["diff"].get<double>(), 0.5, 1e-12);

  // An even split: no mismatch.
  EXPECT_NEAR(r["srm"]["chi2"].get<double>(), 0, 1e-12);
  EXPECT_FALSE(r["srm"]["flagged"].get<bool>());

  // CLV proxy: the weekly series adds up to revenue per customer.
  double weekly = 0;
  for (const json& w : t["clv"]["weekly"]) weekly += w["revenue_per_customer"].get<double>();
  EXPECT_NEAR(weekly, 1.0, 1e-12);
  // Daily cumulative points: day 0 holds all of the tailor arm's clicks.
  ASSERT_EQ(r["daily"]["tailor"].size(), 3u);
  EXPECT_EQ(r["daily"]["tailor"][0]["impressions"], 100);
  EXPECT_EQ(r["daily"]["tailor"][0]["clicks"], 40);
  EXPECT_EQ(r["daily"]["tailor"][1]["impressions"], 200);

  // The funnel and the rules, from the 400 live decisions' traces.
  std::map<std::string, json> offers;
  for (const json& o : r["offers"]) offers[o["offer"]] = o;
  ASSERT_EQ(offers.size(), 4u) << r["offers"].dump();
  EXPECT_EQ(offers["o1"]["eligible"], 400);
  EXPECT_EQ(offers["o1"]["chosen"], 400);
  EXPECT_EQ(offers["o1"]["shown"], 400);
  EXPECT_EQ(offers["o1"]["clicked"], 60);
  EXPECT_EQ(offers["o1"]["converted"], 15);
  EXPECT_DOUBLE_EQ(offers["o1"]["revenue"].get<double>(), 150);
  EXPECT_EQ(offers["o2"]["eligible"], 400);
  EXPECT_EQ(offers["o2"]["shown"], 0);
  EXPECT_EQ(offers["o3"]["suppressed_by"]["rule"], 400);
  EXPECT_EQ(offers["o4"]["suppressed_by"]["policy"], 400);
  std::map<std::string, json> rules;
  for (const json& x : r["rules"]) rules[x["rule"]] = x;
  EXPECT_EQ(rules["stock_guard"]["vetoes"], 400);
  EXPECT_EQ(rules["boost_new"]["levers"], 400);
  EXPECT_EQ(rules["boost_new"]["boosts"], 400);
  EXPECT_NEAR(rules["boost_new"]["mean_lever"].get<double>(), 1.5, 1e-9);
  EXPECT_EQ(rules.count("welcome"), 0u);  // a journey's note is no rule

  // The headline table names both arms and the split's verdict.
  EXPECT_NE(printed.find("tailor"), std::string::npos) << printed;
  EXPECT_NE(printed.find("(ok)"), std::string::npos) << printed;
}

TEST(Report, SampleRatioMismatchIsFlagged) {
  TempDir dir;
  const std::string store = dir.file("srm.db");
  WriteKnownStore(store);
  std::string printed;
  const json r = RunReport(dir, store, "--experiment exp2", &printed);
  ASSERT_TRUE(r.is_object());
  EXPECT_NEAR(r["srm"]["chi2"].get<double>(), 200.0 / 9.0, 1e-9);
  EXPECT_LT(r["srm"]["p"].get<double>(), 0.001);
  EXPECT_TRUE(r["srm"]["flagged"].get<bool>());
  EXPECT_NE(printed.find("SAMPLE RATIO MISMATCH"), std::string::npos) << printed;
  EXPECT_TRUE(r["control"].is_null());  // neither a nor b is a control
  // Told the split is 5:4, the same counts are fine.
  const json fine = RunReport(dir, store, "--experiment exp2 --expect a=5,b=4");
  ASSERT_TRUE(fine.is_object());
  EXPECT_FALSE(fine["srm"]["flagged"].get<bool>());
  EXPECT_NEAR(fine["srm"]["chi2"].get<double>(), 0, 1e-9);
}

TEST(Report, RefusesAControlThatIsNoArm) {
  TempDir dir;
  const std::string store = dir.file("c.db");
  WriteKnownStore(store);
  const std::string log = dir.file("c.log");
  EXPECT_NE(Shell(TailorBin() + " report --store " + store +
                      " --experiment exp1 --control nope --json " + dir.file("c.json"),
                  log),
            0);
  EXPECT_NE(ReadFile(log).find("--control: no arm 'nope'"), std::string::npos) << ReadFile(log);
}

// --- Headless Chromium -------------------------------------------------------

std::string FindChromium() {
  for (const char* name : {"chromium", "chromium-browser", "google-chrome"})
    if (std::system(("command -v " + std::string(name) + " >/dev/null 2>&1").c_str()) == 0)
      return name;
  return "";
}

struct Rendered {
  int rc = -1;
  std::string dom, log;
};

Rendered Render(const TempDir& dir, const std::string& html) {
  Rendered out;
  const std::string chromium = FindChromium();
  if (chromium.empty()) return out;
  const std::string dom = dir.file("dom.html"), log = dir.file("chromium.log");
  out.rc =
      std::system((chromium +
                   " --headless --disable-gpu --no-sandbox --no-first-run "
                   "--enable-logging=stderr --v=0 --user-data-dir=" +
                   dir.file("profile") + " --dump-dom file://" + html + " >" + dom + " 2>" + log)
                      .c_str());
  out.dom = ReadFile(dom);
  out.log = ReadFile(log);
  return out;
}

// Console messages as Chromium logs them: "...:CONSOLE(line)] "text", source: ...".
bool HasConsoleError(const std::string& log) {
  return log.find(":CONSOLE") != std::string::npos || log.find("Uncaught") != std::string::npos;
}

std::unique_ptr<Store> OpenForWriting(const std::string& path) {
  std::string err;
  Store::Options o;
  o.path = path;
  o.synchronous_full = false;
  auto store = Store::Open(o, &err);
  EXPECT_TRUE(store) << err;
  return store;
}

// 100 shadow decisions: the application served o1 (logged P(click) 0.1);
// Tailor's top was o1 in the first 40 (P 0.1) and o2 in the other 60 (P 0.3).
// Observed clicks on the served o1: 10 of the 40, 6 of the 60.
TEST(Report, ShadowEstimatesWhatTailorsPicksWouldHaveAchieved) {
  TempDir dir;
  const std::string path = dir.file("shadow.db");
  {
    auto store = OpenForWriting(path);
    ASSERT_TRUE(store);
    for (int c = 0; c < 100; ++c) {
      const bool agree = c < 40;
      DecisionRecord d;
      d.id = "s" + std::to_string(c);
      d.customer_id = "c" + std::to_string(c);
      d.channel = "web";
      d.placement = "home";
      d.ts_ms = kStart + c;
      d.request_json = d.response_json = "{}";
      d.trace_json = kTrace;
      d.mode = "shadow";
      ShadowPick pick;
      pick.position = 1;
      pick.offer_id = agree ? "o1" : "o2";
      pick.p_click = agree ? 0.1 : 0.3;
      pick.value = 10;
      d.shadow_picks = {pick};
      Impression imp;
      imp.decision_id = d.id;
      imp.customer_id = d.customer_id;
      imp.placement = "home";
      imp.offer_id = "o1";
      imp.position = 1;
      imp.p_click = 0.1;
      imp.ts_ms = d.ts_ms;
      store->LogDecision(std::move(d));
      store->LogImpressions({imp});
      if (agree ? c < 10 : c < 46)
        store->LogOutcome({Outcome::Kind::kClick, imp, "click", 0, imp.ts_ms + 1000});
    }
    store->Flush();
  }
  std::string printed;
  const json r = RunReport(dir, path, "--shadow", &printed);
  ASSERT_TRUE(r.is_object());
  EXPECT_EQ(r["mode"], "shadow");
  const json& p = r["shadow_estimate"]["placements"]["home"];
  ASSERT_TRUE(p.is_object()) << r["shadow_estimate"].dump();
  EXPECT_EQ(p["decisions"], 100);
  EXPECT_NEAR(p["agreement"].get<double>(), 0.4, 1e-12);
  EXPECT_NEAR(p["served"]["ctr"].get<double>(), 0.16, 1e-12);
  EXPECT_NEAR(p["served"]["model_ctr"].get<double>(), 0.1, 1e-12);
  EXPECT_NEAR(p["served"]["calibration"].get<double>(), 1.6, 1e-9);
  EXPECT_NEAR(p["tailor"]["ctr"].get<double>(), 0.22, 1e-12);  // (40 x 0.1 + 60 x 0.3) / 100
  EXPECT_NEAR(p["tailor"]["calibrated_ctr"].get<double>(), 0.352, 1e-9);
  EXPECT_EQ(p["top_agreed"]["decisions"], 40);
  EXPECT_NEAR(p["top_agreed"]["ctr"].get<double>(), 0.25, 1e-12);
  EXPECT_EQ(p["top_disagreed"]["decisions"], 60);
  EXPECT_NEAR(p["top_disagreed"]["ctr"].get<double>(), 0.1, 1e-12);
  EXPECT_NE(printed.find("shadow mode"), std::string::npos) << printed;
  EXPECT_NE(ReadFile(dir.file("r.html")).find("what Tailor would have done"), std::string::npos);
  // Without --shadow the live report has none of it.
  const json live = RunReport(dir, path, "");
  EXPECT_FALSE(live.contains("shadow_estimate"));
  EXPECT_EQ(live["decisions"], 0);
}

// Customers by gender: f shown offers at 20 % off, m at 10 %: a disparity of
// 2 in the average discount, a breach against 1.25 and none against 2.5.
TEST(Report, FairnessMarksADisparityAboveTheCap) {
  TempDir dir;
  const std::string path = dir.file("fair.db");
  {
    auto store = OpenForWriting(path);
    ASSERT_TRUE(store);
    for (int c = 0; c < 80; ++c) {
      const bool f = c % 2 == 0;
      Customer cu;
      cu.id = "c" + std::to_string(c);
      cu.attributes_json = std::string("{\"gender\":\"") + (f ? "f" : "m") +
                           "\",\"age\":" + std::to_string(c < 40 ? 30 : 60) + "}";
      ASSERT_TRUE(store->UpsertCustomer(cu).ok());
      DecisionRecord d;
      d.id = "d" + std::to_string(c);
      d.customer_id = cu.id;
      d.channel = "web";
      d.placement = "deals";
      d.ts_ms = kStart + c;
      d.request_json = d.response_json = "{}";
      d.trace_json = kTrace;
      Impression imp;
      imp.decision_id = d.id;
      imp.customer_id = cu.id;
      imp.placement = "deals";
      imp.offer_id = "o1";
      imp.position = 1;
      imp.ts_ms = d.ts_ms;
      imp.discount = f ? 0.2 : 0.1;
      store->LogDecision(std::move(d));
      store->LogImpressions({imp});
    }
    store->Flush();
  }
  auto disparity = [](const json& r, const std::string& attr) {
    for (const json& a : r["fairness"]["attributes"])
      if (a["attribute"] == attr) return a["disparity"]["avg_discount"];
    ADD_FAILURE() << "no " << attr << " in " << r["fairness"].dump();
    return json();
  };
  const json r = RunReport(dir, path, "--fairness --protected gender,age_band");
  ASSERT_TRUE(r.contains("fairness")) << r.dump();
  const json g = disparity(r, "gender");
  EXPECT_NEAR(g["ratio"].get<double>(), 2.0, 1e-9);
  EXPECT_EQ(g["max_group"], "f");
  EXPECT_EQ(g["min_group"], "m");
  EXPECT_TRUE(g["breach"].get<bool>());
  // Age bands 25-34 and 50+ got the same mix of f and m: no disparity.
  const json a = disparity(r, "age_band");
  EXPECT_NEAR(a["ratio"].get<double>(), 1.0, 1e-9);
  EXPECT_FALSE(a["breach"].get<bool>());
  EXPECT_NE(ReadFile(dir.file("r.html")).find("Fairness across protected groups"),
            std::string::npos);
  // A looser cap: the same ratio is no breach.
  const json loose = RunReport(dir, path, "--fairness --protected gender --max-disparity 2.5");
  EXPECT_FALSE(disparity(loose, "gender")["breach"].get<bool>());
  EXPECT_NEAR(loose["fairness"]["max_disparity"].get<double>(), 2.5, 1e-12);
}

TEST(Report, HtmlRendersInHeadlessChromiumWithoutConsoleErrors) {
  ASSERT_FALSE(FindChromium().empty())
      << "chromium is not installed: the report's HTML is checked in headless Chromium. "
         "Install it with tools/install-deps.sh (Debian package `chromium`).";
  TempDir dir;
  const std::string store = dir.file("known.db");
  WriteKnownStore(store);
  ASSERT_TRUE(RunReport(dir, store, "--experiment exp1").is_object());
  const std::string html = ReadFile(dir.file("r.html"));
  // Self-contained: nothing to fetch.
  EXPECT_EQ(html.find("http://"), html.find("http://www.w3.org/2000/svg"));
  EXPECT_EQ(html.find("https://"), std::string::npos);
  EXPECT_EQ(html.find("<link"), std::string::npos);
  EXPECT_EQ(html.find("src="), std::string::npos);

  const Rendered page = Render(dir, dir.file("r.html"));
  ASSERT_EQ(page.rc, 0) << page.log;
  EXPECT_FALSE(HasConsoleError(page.log)) << page.log;
  // The inline script ran and counted the charts: cumulative CTR, uplift,
  // revenue, the forest plot, customer value and the funnel.
  EXPECT_NE(page.dom.find("data-rendered=\"6\""), std::string::npos) << page.dom.substr(0, 400);
  for (const char* id : {"id=\"cumulative\"", "id=\"uplift\"", "id=\"forest\"", "id=\"clv\"",
                         "id=\"funnel\"", "id=\"rules\"", "id=\"srm\""})
    EXPECT_NE(page.dom.find(id), std::string::npos) << id;
  EXPECT_NE(page.dom.find("<polyline"), std::string::npos);
  EXPECT_NE(page.dom.find("class=\"band\""), std::string::npos);

  // The check can fail: a page whose script throws is caught.
  const std::string broken = dir.file("broken.html");
  WriteFile(broken, "<!DOCTYPE html><html><body><script>null.x = 1;</script></body></html>");
  const Rendered bad = Render(dir, broken);
  EXPECT_TRUE(HasConsoleError(bad.log)) << bad.log;
}

// The report reads what `tailor simulate --store` leaves: arms are
// placements there (sim_random, sim_popularity, sim_tailor, ...).
TEST(Report, ReadsASimulatedStore) {
  TempDir dir;
  const std::string store = dir.file("sim.db"), log = dir.file("sim.log");
  const std::string sim = TailorBin() +
                          " simulate --days 2 --customers 150 --items 100 --history-days 30"
                          " --seed 5 --new-offer-day 0 --store " +
                          store + " --config " + TAILOR_SOURCE_DIR + "/config --plugin-dir " +
                          TAILOR_PLUGIN_DIR + " --json " + dir.file("sim.json");
  ASSERT_EQ(Shell(sim, log), 0) << ReadFile(log);
  const json r = RunReport(dir, store, "--control sim_random");
  ASSERT_TRUE(r.is_object());
  EXPECT_EQ(r["group_by"], "placement");
  EXPECT_EQ(r["control"], "sim_random");
  int64_t decisions = 0;
  for (const json& a : r["arms"]) {
    decisions += a["decisions"].get<int64_t>();
    EXPECT_GE(a["ctr_ci"][1].get<double>(), a["ctr"].get<double>());
    if (a["arm"] != "sim_random") {
      EXPECT_TRUE(a["uplift"].is_object()) << a.dump();
    }
  }
  EXPECT_GT(decisions, 0);
  EXPECT_EQ(decisions, r["decisions"].get<int64_t>());
  EXPECT_FALSE(r["offers"].empty());
}

}  // namespace
}  // namespace tailor::testing
