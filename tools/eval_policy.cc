// `tailor eval policy`: off-policy evaluation of a candidate configuration on
// the decisions a logging policy made (learning/ope.h for the estimators).
//
// The replay, as of each logged decision's time:
// 1. The logged store is copied (SQLite backup) into a temporary file and the
//    copy rewound to the first evaluated decision: everything from then on
//    (events, decisions, impressions, outcomes, journey states entered) is
//    forgotten. The logged store itself is opened read-only.
// 2. An engine is built in-process from the candidate config over the copy
//    (plugins train on the copy at start, as a tailord started then would).
// 3. For each logged decision, oldest first: the logged events before its time
//    are ingested (profiles, plugins' online state, journeys move as they did
//    in production), then the logged request is decided with its logged time
//    and `record: false`, so the candidate's own choice leaves no trace.
//    No profile ever holds an event from after the decision it is used for.
//
// Positions: top-1. The action is the offer shown at position 1 (none: the
// empty action), its logged propensity the one logged with it, and the
// rewards are that impression's joined outcomes: clicked (ctr), converted
// (conversion: conversions per decision) and the conversion value (revenue
// per decision). The candidate's weight is 1/propensity when its position-1
// pick is the logged one, else 0; a stochastic candidate contributes its
// sampled pick (unbiased for its probabilities, learning/ope.h).
//
// The direct model for DR is part 1's response posteriors
// (learning/response_stats.h) per offer, fed prequentially: at each decision
// it has seen only the logged impressions and outcomes from before it.
// q(offer) = P(click) for ctr, P(click) P(convert | click) for conversion and
// P(click) P(convert | click) x value per conversion for revenue.
#include <stdlib.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "commands.h"
#include "common/paths.h"
#include "common/time.h"
#include "config/config.h"
#include "decision/engine.h"
#include "learning/ope.h"
#include "learning/response_stats.h"
#include "metrics/metrics.h"
#include "plugin_host/host.h"
#include "progress.h"
#include "runtime.h"
#include "store/store.h"

namespace tailor::cli {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

struct PolicyArgs {
  std::string store, candidate, since, until, placement, candidate_placement, json_out;
  std::string plugin_dir;
  bool keep_copy = false;
};

// One logged decision with what its position-1 impression earned.
struct Logged {
  DecisionRecord record;
  std::string offer;  // shown at position 1; '' : nothing shown
  double propensity = 1;
  Impression impression;
  bool clicked = false, converted = false;
  double value = 0;
  // Shown, but without an impression row: a decision that was not
  // personalised (no consent) records no impressions and joins no outcomes.
  bool unlogged = false;
};

const char* const kMetrics[] = {"ctr", "conversion", "revenue"};

std::string Key(const std::string& decision, int position) {
  return decision + "#" + std::to_string(position);
}

int64_t ParseTime(const std::string& text, const char* what) {
  if (text.empty()) return 0;
  auto t = parse_iso8601_ms(text);
  if (!t) Fail(std::string("eval policy: ") + what + " '" + text + "' is not an ISO 8601 time", 2);
  return *t;
}

// The logged decisions of the period with their position-1 impressions and
// the outcomes joined to them.
std::vector<Logged> ReadLog(Store& store, const PolicyArgs& a, int64_t since, int64_t until,
                            size_t* shadow) {
  std::vector<Logged> log;
  store.ForEachDecision(since, until, a.placement, [&](const DecisionRecord& d) {
    // A shadow decision's served action was the application's, not this
    // policy's: its propensities describe no shown offer.
    if (d.mode == "shadow") {
      ++*shadow;
      return true;
    }
    Logged l;
    l.record = d;
    log.push_back(std::move(l));
    return true;
  });
  if (log.empty()) return log;
  Progress bar("impressions");
  std::unordered_map<std::string, size_t> by_key;
  for (size_t i = 0; i < log.size(); ++i) {
    for (const Impression& m : store.ImpressionsOf(log[i].record.id)) {
      if (m.position != 1 || !m.shown) continue;
      log[i].offer = m.offer_id.empty() ? m.item_id : m.offer_id;
      log[i].propensity = m.propensity;
      log[i].impression = m;
      by_key[Key(m.decision_id, 1)] = i;
    }
    if (log[i].offer.empty()) {
      json r = json::parse(log[i].record.response_json, nullptr, false);
      log[i].unlogged =
          r.is_object() && r.contains("offers") && r["offers"].is_array() && !r["offers"].empty();
    }
    if (i % 512 == 0)
      bar.Update(static_cast<int64_t>(i), static_cast<int64_t>(log.size()), "decisions");
  }
  bar.Done("");
  store.ForEachOutcome(log.front().record.ts_ms, [&](const Outcome& o) {
    auto it = by_key.find(Key(o.impression.decision_id, o.impression.position));
    if (it == by_key.end()) return true;
    Logged& l = log[it->second];
    if (o.kind == Outcome::Kind::kClick) l.clicked = true;
    if (o.kind == Outcome::Kind::kConversion) {
      l.converted = true;
      l.value += o.value;
    }
    return true;
  });
  return log;
}

// The engine stack over the rewound copy, like Runtime::Open but with a store
// that need not survive power loss (it is deleted afterwards).
struct Replay {
  EngineConfig config;
  std::unique_ptr<Store> store;
  Metrics metrics;
  std::unique_ptr<PluginHost> plugins;
  std::unique_ptr<Engine> engine;
};

std::unique_ptr<Replay> OpenReplay(const PolicyArgs& a, const std::string& copy) {
  auto r = std::make_unique<Replay>();
  std::vector<std::string> errors;
  fs::path cfg_file = a.candidate;
  if (fs::is_directory(cfg_file)) cfg_file /= "tailor.yaml";
  auto cfg = LoadConfig(cfg_file.string(), a.plugin_dir.empty() ? DefaultPluginDir() : a.plugin_dir,
                        &errors);
  if (!cfg) {
    for (const auto& e : errors) std::fprintf(stderr, "%s\n", e.c_str());
    Fail("eval policy: the candidate config " + cfg_file.string() + " does not load", 2);
  }
  r->config = std::move(*cfg);
  r->config.store.path = copy;
  Store::Options so;
  so.path = copy;
  so.synchronous_full = false;
  std::string err;
  r->store = Store::Open(so, &err);
  if (!r->store) Fail("eval policy: " + err);
  const std::string data_dir = copy + ".models";
  fs::create_directories(data_dir);
  r->plugins = std::make_unique<PluginHost>(r->store.get(), data_dir);
  r->plugins->LoadAll(r->config.plugins);
  for (const auto& f : r->plugins->failures())
    std::fprintf(stderr, "eval policy: plugin %s not loaded: %s\n", f.name.c_str(),
                 f.error.c_str());
  r->engine = std::make_unique<Engine>(r->config, r->store.get(), r->plugins.get(), &r->metrics);
  if (Status s = r->engine->LoadCatalog(); !s.ok()) Fail("eval policy: " + s.message());
  return r;
}

DecideRequest RequestOf(const Logged& l, const std::string& placement) {
  json rj = json::parse(l.record.request_json, nullptr, false);
  if (!rj.is_object()) rj = json::object();
  DecideRequest req;
  req.id = l.record.id;
  req.customer = rj.value("customer", l.record.customer_id);
  req.channel = rj.value("channel", l.record.channel);
  req.placement = placement.empty() ? rj.value("placement", l.record.placement) : placement;
  req.limit = rj.value("limit", 1);
  if (rj.contains("context") && rj["context"].is_object()) req.context = rj["context"];
  auto strings = [&](const char* key) {
    std::vector<std::string> out;
    if (rj.contains(key) && rj[key].is_array())
      for (const json& s : rj[key])
        if (s.is_string()) out.push_back(s.get<std::string>());
    return out;
  };
  req.exclude = strings("exclude");
  req.include_categories = strings("include_categories");
  req.exclude_categories = strings("exclude_categories");
  req.now_ms = l.record.ts_ms;
  return req;
}

// The direct model's three rewards for one offer at now_ms.
struct Q {
  double ctr = 0, conversion = 0, revenue = 0;
};

class DirectModel {
 public:
  explicit DirectModel(const Catalog& catalog) : catalog_(catalog), stats_(Options()) {}
  void Observe(const Impression& m) {
    Impression c = m;
    c.segment.clear();  // per offer: the logger's segments need not be the candidate's
    stats_.Observe(c);
    ++impressions_;
  }
  void Observe(const Outcome& o) {
    Outcome c = o;
    c.impression.segment.clear();
    clicks_ += o.kind == Outcome::Kind::kClick && o.first_of_kind;
    stats_.Observe(c);
  }
  Q Of(const std::string& offer, int64_t now_ms) const {
    if (offer.empty()) return {};
    auto it = catalog_.offer_index.find(offer);
    const Offer* o = it == catalog_.offer_index.end() ? nullptr : &catalog_.offers[it->second];
    // The prior mean of an offer not seen yet: the click rate seen so far.
    const double base = (clicks_ + 1) / (impressions_ + 20);
    learning::ResponseEstimate e =
        stats_.Estimate(offer, o ? o->category : "", "", base, o ? o->value : 0, now_ms);
    Q q;
    q.ctr = e.p_click;
    q.conversion = e.p_click * e.p_convert;
    q.revenue = q.conversion * e.value_per_conversion;
    return q;
  }

 private:
  static learning::ResponseOptions Options() {
    learning::ResponseOptions o;
    o.half_life_days = 3650;  // an evaluation window's worth, undecayed
    return o;
  }
  const Catalog& catalog_;
  learning::ResponseStats stats_;
  double impressions_ = 0, clicks_ = 0;
};

// A replay step of the direct model: a logged impression or outcome, at the
// time it became known.
struct ModelUpdate {
  int64_t ts = 0;
  const Impression* impression = nullptr;
  Outcome outcome;
};

double Reward(const Logged& l, int metric) {
  if (metric == 0) return l.clicked ? 1 : 0;
  if (metric == 1) return l.converted ? 1 : 0;
  return l.value;
}
double QOf(const Q& q, int metric) {
  return metric == 0 ? q.ctr : metric == 1 ? q.conversion : q.revenue;
}

void RunPolicy(const PolicyArgs& a) {
  const int64_t since = ParseTime(a.since, "--since");
  const int64_t until = ParseTime(a.until, "--until");
  if (fs::exists(a.store) == false) Fail("eval policy: no store at " + a.store, 2);

  // 1. The log, read-only.
  size_t shadow = 0;
  std::vector<Logged> log;
  std::vector<Outcome> outcomes;
  std::vector<Event> events;
  char tmpl[] = "/tmp/tailor-ope-XXXXXX";
  if (!mkdtemp(tmpl)) Fail("eval policy: cannot create a temporary directory");
  const std::string work = tmpl;
  struct Cleanup {
    std::string dir;
    bool keep;
    ~Cleanup() {
      std::error_code ec;
      if (!keep) fs::remove_all(dir, ec);
    }
  } cleanup{work, a.keep_copy};
  const std::string copy = work + "/replay.db";
  if (a.keep_copy) std::fprintf(stderr, "eval policy: the replay copy is %s\n", copy.c_str());
  {
    Store::Options so;
    so.path = a.store;
    so.start_writer = false;
    so.read_only = true;
    std::string err;
    auto store = Store::Open(so, &err);
    if (!store) Fail("eval policy: " + err, 2);
    log = ReadLog(*store, a, since, until, &shadow);
    if (log.empty())
      Fail("eval policy: no live decisions in " + a.store +
           (a.placement.empty() ? "" : " on placement " + a.placement) + " in the period");
    store->ForEachOutcome(log.front().record.ts_ms, [&](const Outcome& o) {
      outcomes.push_back(o);
      return true;
    });
    store->ForEachEvent(log.front().record.ts_ms, [&](const Event& e) {
      events.push_back(e);
      return true;
    });
    if (Status s = store->BackupTo(copy); !s.ok()) Fail("eval policy: " + s.message());
  }
  std::stable_sort(events.begin(), events.end(),
                   [](const Event& x, const Event& y) { return x.ts_ms < y.ts_ms; });
  {
    Store::Options so;
    so.path = copy;
    so.start_writer = false;
    so.synchronous_full = false;
    std::string err;
    auto store = Store::Open(so, &err);
    if (!store) Fail("eval policy: " + err);
    if (Status s = store->RewindTo(log.front().record.ts_ms); !s.ok())
      Fail("eval policy: " + s.message());
  }
  std::fprintf(stderr, "eval policy: %zu decisions from %s to %s; %zu later events to replay\n",
               log.size(), format_iso8601_ms(log.front().record.ts_ms).c_str(),
               format_iso8601_ms(log.back().record.ts_ms).c_str(), events.size());

  // 2. The candidate over the rewound copy.
  std::unique_ptr<Replay> rp = OpenReplay(a, copy);
  auto catalog = rp->engine->catalog();
  DirectModel model(*catalog);
  std::vector<ModelUpdate> updates;
  for (const Logged& l : log)
    if (!l.offer.empty()) updates.push_back(ModelUpdate{l.record.ts_ms, &l.impression, {}});
  for (const Outcome& o : outcomes) updates.push_back(ModelUpdate{o.ts_ms, nullptr, o});
  std::stable_sort(updates.begin(), updates.end(),
                   [](const ModelUpdate& x, const ModelUpdate& y) { return x.ts < y.ts; });

  // 3. Replay, oldest first.
  std::vector<std::vector<learning::OpeSample>> samples(3);
  std::map<std::string, int64_t> candidate_picks, logged_picks;
  std::set<std::string> logger_showed;
  for (const Logged& l : log)
    if (!l.offer.empty() && l.propensity > 0) logger_showed.insert(l.offer);
  size_t next_event = 0, next_update = 0, errors = 0, unsupported = 0, no_propensity = 0;
  size_t agree = 0, unlogged = 0;
  double logged_sum[3] = {0, 0, 0};
  std::map<std::string, int64_t> unsupported_offers;
  std::string first_error;
  Progress bar("replay");
  for (size_t i = 0; i < log.size(); ++i) {
    const Logged& l = log[i];
    const int64_t t = l.record.ts_ms;
    if (l.unlogged) {
      ++unlogged;
      continue;
    }
    std::vector<Event> batch;
    while (next_event < events.size() && events[next_event].ts_ms < t)
      batch.push_back(events[next_event++]);
    if (!batch.empty()) rp->engine->IngestEvents(std::move(batch));
    while (next_update < updates.size() && updates[next_update].ts < t) {
      const ModelUpdate& u = updates[next_update++];
      if (u.impression)
        model.Observe(*u.impression);
      else
        model.Observe(u.outcome);
    }
    DecideOptions opts;
    opts.record = false;
    auto result = rp->engine->Decide(RequestOf(l, a.candidate_placement), opts);
    if (auto* e = std::get_if<ApiError>(&result)) {
      if (errors++ == 0) first_error = e->field + ": " + e->message;
      continue;
    }
    const Decision& d = std::get<Decision>(result);
    std::string pick;
    if (!d.offers.empty() && d.offers[0].is_object())
      pick = d.offers[0].value("offer", d.offers[0].value("item", ""));
    ++candidate_picks[pick.empty() ? "(none)" : pick];
    ++logged_picks[l.offer.empty() ? "(none)" : l.offer];
    if (!pick.empty() && !logger_showed.count(pick)) {
      ++unsupported;
      ++unsupported_offers[pick];
    }
    if (!l.offer.empty() && !(l.propensity > 0)) {
      ++no_propensity;
      continue;
    }
    const double mu = l.offer.empty() ? 1.0 : l.propensity;
    const bool match = pick == l.offer;
    agree += match;
    const Q q_logged = model.Of(l.offer, t), q_cand = model.Of(pick, t);
    for (int m = 0; m < 3; ++m) {
      learning::OpeSample s;
      s.weight = match ? 1.0 / mu : 0.0;
      s.reward = Reward(l, m);
      s.dm_logged = QOf(q_logged, m);
      s.dm_candidate = QOf(q_cand, m);
      samples[static_cast<size_t>(m)].push_back(s);
      logged_sum[m] += s.reward;
    }
    if (i % 256 == 0)
      bar.Update(static_cast<int64_t>(i), static_cast<int64_t>(log.size()), "decisions");
  }
  bar.Update(static_cast<int64_t>(log.size()), static_cast<int64_t>(log.size()), "decisions");
  bar.Done("");

  // 4. Estimates and warnings.
  json warnings = json::array();
  json metrics = json::array();
  const size_t n = samples[0].size();
  if (n == 0) Fail("eval policy: no decision could be replayed (" + first_error + ")");
  learning::OpeResult results[3];
  for (int m = 0; m < 3; ++m) {
    results[m] = learning::Evaluate(samples[static_cast<size_t>(m)]);
    const learning::OpeResult& r = results[m];
    metrics.push_back({{"metric", kMetrics[m]},
                       {"estimates",
                        {{"ips", learning::OpeEstimateJson(r.ips)},
                         {"snips", learning::OpeEstimateJson(r.snips)},
                         {"dr", learning::OpeEstimateJson(r.dr)}}},
                       {"ess", r.ess},
                       {"matched_events", r.matched_events},
                       {"decisions", r.decisions},
                       {"logged_value", logged_sum[m] / static_cast<double>(n)}});
  }
  const double ess = results[0].ess;
  if (learning::PoorOverlap(ess, n)) {
    char buf[200];
    std::snprintf(buf, sizeof buf,
                  "poor overlap: effective sample size %.1f of %zu decisions (below %.0f%% or "
                  "%.0f); the intervals understate the error",
                  ess, n, 100 * learning::kMinEssFraction, learning::kMinEss);
    warnings.push_back(buf);
  }
  for (int m = 0; m < 3; ++m)
    if (results[m].matched_events < learning::kMinEvents)
      warnings.push_back(
          std::string(kMetrics[m]) + ": only " + std::to_string(results[m].matched_events) +
          " decisions where the candidate agreed with the logged pick had a "
          "non-zero reward (below " +
          std::to_string(learning::kMinEvents) + "): its normal interval is unreliable");
  if (unsupported > 0) {
    std::string names;
    for (const auto& [o, c] : unsupported_offers)
      names += (names.empty() ? "" : ", ") + o + " (" + std::to_string(c) + ")";
    warnings.push_back(
        "the candidate picked offers the logging policy never showed with a "
        "positive propensity in " +
        std::to_string(unsupported) + " decisions: " + names +
        "; their value is invisible to IPS and SNIPS");
  }
  if (unlogged > 0)
    warnings.push_back(std::to_string(unlogged) +
                       " decisions showed an offer but logged no impression (not personalised: "
                       "no consent), so no outcome was joined to them; left out");
  if (no_propensity > 0)
    warnings.push_back(std::to_string(no_propensity) +
                       " logged decisions have no positive propensity and were left out");
  if (errors > 0)
    warnings.push_back(std::to_string(errors) + " decisions failed to replay and were left out (" +
                       first_error + ")");
  if (shadow > 0) warnings.push_back(std::to_string(shadow) + " shadow decisions were left out");
  // 4 standard errors: a false alarm about once in 16,000 evaluations.
  if (results[0].matched > 0 && std::abs(results[0].weight_mean - 1) > 4 * results[0].weight_se)
    warnings.push_back("the mean importance weight is " + std::to_string(results[0].weight_mean) +
                       " (+- " + std::to_string(results[0].weight_se) +
                       "), not 1: the logged propensities may be wrong, or the logging policy "
                       "did not show every offer the candidate picks");

  json picks = json::object();
  for (const auto& [o, c] : candidate_picks) picks[o] = c;
  json out = {
      {"metrics", metrics},
      {"warnings", warnings},
      {"candidate",
       {{"config", a.candidate}, {"placement", a.candidate_placement}, {"picks", picks}}},
      {"logged",
       {{"store", a.store},
        {"placement", a.placement},
        {"from", format_iso8601_ms(log.front().record.ts_ms)},
        {"to", format_iso8601_ms(log.back().record.ts_ms)},
        {"decisions", log.size()}}},
      {"replay",
       {{"evaluated", n},
        {"agreement", static_cast<double>(agree) / static_cast<double>(n)},
        {"events_replayed", next_event},
        {"unlogged", unlogged},
        {"errors", errors}}},
      {"method",
       {{"positions", "top-1: the offer at position 1, its logged propensity and its outcomes"},
        {"direct_model", "response posteriors per offer, prequential"},
        {"interval", "95% normal: CLT (ips, dr), delta method (snips)"}}}};

  std::printf("%zu decisions, candidate agrees with the logged pick in %.1f%%, ESS %.1f\n\n", n,
              100.0 * static_cast<double>(agree) / static_cast<double>(n), ess);
  std::printf("%-11s %9s  %-28s %-28s %-28s\n", "metric", "logged", "IPS [95% CI]",
              "SNIPS [95% CI]", "DR [95% CI]");
  for (int m = 0; m < 3; ++m) {
    const learning::OpeResult& r = results[m];
    auto cell = [](const learning::OpeEstimate& e) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.4f [%.4f, %.4f]", e.value, e.lo, e.hi);
      return std::string(buf);
    };
    std::printf("%-11s %9.4f  %-28s %-28s %-28s\n", kMetrics[m],
                logged_sum[m] / static_cast<double>(n), cell(r.ips).c_str(), cell(r.snips).c_str(),
                cell(r.dr).c_str());
  }
  for (const json& w : warnings) std::printf("\nwarning: %s\n", w.get<std::string>().c_str());
  if (!a.json_out.empty()) {
    std::ofstream f(a.json_out);
    f << out.dump(2) << "\n";
    if (!f) Fail("eval policy: cannot write " + a.json_out, 2);
  }
}

}  // namespace

void RegisterEvalPolicy(CLI::App& eval) {
  auto a = std::make_shared<PolicyArgs>();
  CLI::App* c = eval.add_subcommand(
      "policy",
      "Off-policy evaluation: a candidate config's CTR, conversion and revenue per decision "
      "on the logged decisions (IPS, SNIPS, DR)");
  c->add_option("--store", a->store, "the logged store (tailord or tailor simulate); read only")
      ->required();
  c->add_option("--candidate", a->candidate, "the candidate's config directory (or tailor.yaml)")
      ->required();
  c->add_option("--since", a->since, "only decisions at or after this ISO 8601 time");
  c->add_option("--until", a->until, "only decisions before this ISO 8601 time");
  c->add_option("--placement", a->placement, "only decisions logged on this placement");
  c->add_option("--candidate-placement", a->candidate_placement,
                "decide the logged requests on this placement of the candidate config "
                "(default: the logged placement)");
  c->add_option("--plugin-dir", a->plugin_dir, "plugin directory");
  c->add_flag("--keep-copy", a->keep_copy, "keep the rewound replay copy (its path on stderr)");
  c->add_option("--json", a->json_out, "write the estimates as JSON here");
  c->callback([a] { RunPolicy(*a); });
}

}  // namespace tailor::cli
